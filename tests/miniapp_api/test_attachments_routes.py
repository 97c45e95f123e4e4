"""Attachments through HTTP: multipart upload, the type read from the bytes, 413 over the limit,
names sanitised, served only to those who may see the submission (and to reviewers)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from PIL import Image

from forms.models import Attachment
from miniapp_api.settings import Settings
from tests.conftest import LiveServer, serve_app
from tests.miniapp_api.filing_helpers import SHOP, filed, person_token, reviewer_token
from tests.miniapp_api.test_mp_grants import fresh_id
from tests.miniapp_api.test_mp_realname import auth


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def upload_path(sid: int) -> str:
    return f"/api/v1/mp/submissions/{sid}/attachments"


async def test_upload_and_download_with_access_checks(live: LiveServer, settings: Settings) -> None:
    chen = await person_token(live)
    sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    data = png_bytes()
    r = await live.http.post(
        upload_path(sid),
        files={"file": ("../../etc/合同扫描件.pdf", data, "application/pdf")},
        headers=auth(chen),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    # The bytes decide the type, not the name or the header the client sent.
    assert body["content_type"] == "image/png"
    assert "/" not in body["name"]
    assert ".." not in body["name"]
    assert body["name"].endswith(".png")
    assert body["size"] == len(data)
    stored = await Attachment.get(id=body["attachment_id"])
    on_disk = [p.read_bytes() for p in Path(settings.attachments_path).rglob(stored.sha256)]  # noqa: ASYNC240
    assert on_disk == [data]

    url = f"{upload_path(sid)}/{body['attachment_id']}"
    r = await live.http.get(url, headers=auth(chen))
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment;")
    stranger = await person_token(live, ("陌生人丙", fresh_id()))
    assert (await live.http.get(url, headers=auth(stranger))).status_code == 404
    assert (await live.http.get(url)).status_code == 401
    staff = await reviewer_token(live)
    r = await live.http.get(
        f"/api/v1/staff/submissions/{sid}/attachments/{body['attachment_id']}", headers=auth(staff)
    )
    assert r.status_code == 200
    assert r.content == data
    detail = (await live.http.get(f"/api/v1/mp/submissions/{sid}", headers=auth(chen))).json()
    assert [a["attachment_id"] for a in detail["attachments"]] == [body["attachment_id"]]
    # Another person cannot attach to it either.
    r = await live.http.post(
        upload_path(sid), files={"file": ("a.png", data, "image/png")}, headers=auth(stranger)
    )
    assert r.status_code == 404


async def test_disguised_and_empty_files_are_refused(live: LiveServer) -> None:
    chen = await person_token(live)
    sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
    for name, content in (
        ("invoice.pdf", b"<html><script>alert(1)</script></html>"),
        ("photo.jpg", b"MZ\x90\x00" + b"\x00" * 100),
        ("empty.pdf", b""),
    ):
        r = await live.http.post(
            upload_path(sid), files={"file": (name, content, "application/pdf")}, headers=auth(chen)
        )
        assert r.status_code == 422, (name, r.text)
        assert "file" in r.json()["error"]["fields"]
    r = await live.http.post(upload_path(sid), data={"x": "1"}, headers=auth(chen))
    assert r.status_code == 400
    assert await Attachment.filter(submission_id=sid).count() == 0


async def test_a_file_over_the_limit_is_413(settings: Settings) -> None:
    small = dataclasses.replace(settings, attachment_max_bytes=2048)
    async with serve_app(small) as live:
        chen = await person_token(live)
        sid = (await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP))["id"]
        big = png_bytes() + b"\x00" * 4096
        r = await live.http.post(
            upload_path(sid), files={"file": ("big.png", big, "image/png")}, headers=auth(chen)
        )
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
