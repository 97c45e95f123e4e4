"""Attachments of a submission: upload (multipart ``file``) and download after an access check.

The type is read from the bytes (PDF, JPEG, PNG only), never from the name or the header the
client sent; the name is sanitised and sealed; the bytes are stored once per content, outside
``static/``, and only ever served through these routes.
"""

from __future__ import annotations

from urllib.parse import quote

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json, raw

from auth import audit
from forms.attachments import AttachmentRejected, AttachmentStore, check_upload, sanitize_name
from forms.models import Attachment, Submission
from miniapp_api import filing
from miniapp_api.callers import keyring, mp_caller
from miniapp_api.errors import ApiError, BadRequest, NotFound
from miniapp_api.openapi_docs import ATTACHMENT_TYPES, BINARY, UPLOAD, doc
from miniapp_api.routes.submissions import own, readable

bp = Blueprint("mp_attachments", url_prefix="/mp")

# While the applicant may still change what the office decides on.
UPLOAD_STATUSES = ("pending_internal", "submitted", "returned")
MAX_PER_SUBMISSION = 20


def store_of(request: Request) -> AttachmentStore:
    return AttachmentStore(request.app.ctx.settings.attachments_path)


@bp.post("/submissions/<submission_id:int>/attachments", name="attachment_upload")
@doc(
    "Attach a PDF, JPEG or PNG file (multipart field `file`)",
    "forms",
    auth="person",
    body=UPLOAD,
    body_media="multipart/form-data",
    ok=201,
    errors=(409,),
)
async def upload(request: Request, submission_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    submission = await own(caller, submission_id)
    max_bytes: int = request.app.ctx.settings.attachment_max_bytes
    if len(request.body) > max_bytes + 64 * 1024:  # the multipart framing around the file
        raise _too_large(max_bytes)
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise BadRequest("请以 multipart/form-data 上传，文件字段名为 file")
    upload = request.files.get("file") if request.files else None
    if upload is None:
        raise BadRequest("缺少文件字段 file")
    if submission.status not in UPLOAD_STATUSES:
        raise ApiError(409, "ILLEGAL_TRANSITION", "文书当前状态下不能再添加附件")
    if await Attachment.filter(submission_id=submission.id).count() >= MAX_PER_SUBMISSION:
        raise ApiError(409, "TOO_MANY_ATTACHMENTS", f"每份文书最多 {MAX_PER_SUBMISSION} 个附件")
    try:
        content_type = check_upload(upload.body, max_bytes=max_bytes)
    except AttachmentRejected as exc:
        if exc.code == "TOO_LARGE":
            raise _too_large(max_bytes) from exc
        raise ApiError(422, exc.code, exc.message, fields={"file": exc.message}) from exc
    name = sanitize_name(upload.name, content_type)
    digest = await store_of(request).put(upload.body)
    ring = keyring(request)
    attachment = await Attachment.create(
        submission=submission,
        sha256=digest,
        name_sealed="",
        size=len(upload.body),
        content_type=content_type,
        uploaded_by_kind=caller.actor.kind,
        uploaded_by_id=str(caller.actor.id),
    )
    attachment.name_sealed = ring.seal(
        name, table="submission_attachment", column="name", row_id=attachment.id
    )
    await attachment.save(update_fields=["name_sealed"])
    await audit.record(
        "attachment.upload",
        caller.actor,
        target=f"submission:{submission.id}:attachment:{attachment.id}",
        details={"content_type": content_type, "size": attachment.size},
    )
    return json(filing.attachment_view(attachment, name), status=201)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "PAYLOAD_TOO_LARGE", f"文件过大（上限 {max_bytes // (1024 * 1024)} MB）")


async def serve_attachment(
    request: Request, submission: Submission, attachment_id: int
) -> HTTPResponse:
    """The file, for a caller already allowed to see ``submission``."""
    attachment = await Attachment.get_or_none(id=attachment_id, submission_id=submission.id)
    if attachment is None:
        raise NotFound("找不到该附件")
    name = keyring(request).open(
        attachment.name_sealed, table="submission_attachment", column="name", row_id=attachment.id
    )
    try:
        data = await store_of(request).read(attachment.sha256)
    except FileNotFoundError as exc:
        raise ApiError(503, "ATTACHMENT_UNAVAILABLE", "附件暂时无法读取，请稍后再试") from exc
    return raw(
        data,
        content_type=attachment.content_type,
        headers={
            # RFC 6266/5987: the sanitised name, UTF-8, never interpreted as a path.
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@bp.get("/submissions/<submission_id:int>/attachments/<attachment_id:int>", name="attachment_get")
@doc(
    "Download an attachment of a submission I may see",
    "forms",
    auth="person",
    answer=BINARY,
    media=ATTACHMENT_TYPES,
)
async def download(request: Request, submission_id: int, attachment_id: int) -> HTTPResponse:
    caller = await mp_caller(request)
    submission = await readable(caller, submission_id)
    return await serve_attachment(request, submission, attachment_id)
