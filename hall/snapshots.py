"""Camera snapshots: checked to be JPEGs, stored under their SHA-256 outside static/, kept for a
retention period, and readable only through short-lived signed URLs."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import io
import os
from datetime import datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from hall.models import CameraSnapshot

MAX_SNAPSHOT_BYTES = 500 * 1024
# A signed URL lives at most this long (the issue: ≤ 5 minutes).
URL_TTL_SECONDS = 300
# Signed URLs expire on multiples of this, so a worker can reuse one rendering of the live status
# for this long and every URL in it still has at least URL_TTL_SECONDS - URL_STEP_SECONDS to live.
URL_STEP_SECONDS = 10


class SnapshotRejected(Exception):
    """The snapshot cannot be taken: ``status`` 413 (too large) or 422 (not a JPEG)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_snapshot(encoded: str) -> bytes:
    """The JPEG bytes of a base64 snapshot, checked: size, JPEG markers, and Pillow reading it
    as a JPEG (headers and structure only; pixels are not decoded)."""
    # Base64 is 4/3 of the bytes: refuse what cannot fit before decoding anything.
    if len(encoded) > (MAX_SNAPSHOT_BYTES + 2) // 3 * 4 + 4:
        raise SnapshotRejected(413, f"快照过大（上限 {MAX_SNAPSHOT_BYTES // 1024} KB）")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnapshotRejected(422, "快照不是合法的 base64") from exc
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotRejected(413, f"快照过大（上限 {MAX_SNAPSHOT_BYTES // 1024} KB）")
    if not (data.startswith(b"\xff\xd8\xff") and data.endswith(b"\xff\xd9")):
        raise SnapshotRejected(422, "快照不是 JPEG 图片")
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SnapshotRejected(422, "快照不是 JPEG 图片") from exc
    return data


def snapshot_path(directory: Path, sha256: str) -> Path:
    return directory / sha256[:2] / f"{sha256}.jpg"


def _write_file(directory: Path, sha256: str, data: bytes) -> None:
    path = snapshot_path(directory, sha256)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


async def store_snapshot(
    directory: Path, device_id: str, data: bytes, taken_at: datetime
) -> CameraSnapshot:
    """Keep the bytes (once per content) and record the snapshot."""
    sha256 = hashlib.sha256(data).hexdigest()
    await asyncio.to_thread(_write_file, directory, sha256, data)
    return await CameraSnapshot.create(
        device_id=device_id, sha256=sha256, size=len(data), taken_at=taken_at
    )


async def read_snapshot(directory: Path, hall_id: str, snapshot_id: int) -> bytes | None:
    """The bytes of a snapshot of one of the hall's cameras; None if gone or not the hall's."""
    row = await CameraSnapshot.get_or_none(id=snapshot_id, device__hall_id=hall_id)
    if row is None:
        return None
    path = snapshot_path(directory, row.sha256)
    try:
        return await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        return None


def _url_mac(key: bytes, hall_id: str, snapshot_id: int, expires: int) -> str:
    message = f"snapshot\n{hall_id}\n{snapshot_id}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def url_expiry(now: float) -> int:
    return (int(now) // URL_STEP_SECONDS) * URL_STEP_SECONDS + URL_TTL_SECONDS


def signed_snapshot_url(key: bytes, hall_id: str, snapshot_id: int, expires: int) -> str:
    sig = _url_mac(key, hall_id, snapshot_id, expires)
    return f"/api/v1/halls/{hall_id}/snapshots/{snapshot_id}.jpg?exp={expires}&sig={sig}"


def check_snapshot_url(
    key: bytes, hall_id: str, snapshot_id: int, expires: int, sig: str, now: float
) -> bool:
    """Whether a signed URL is genuine and unexpired (and not dated beyond the longest TTL)."""
    if not now <= expires <= now + URL_TTL_SECONDS:
        return False
    return hmac.compare_digest(_url_mac(key, hall_id, snapshot_id, expires), sig)


def _remove_files(directory: Path, hashes: set[str]) -> None:
    for sha256 in hashes:
        snapshot_path(directory, sha256).unlink(missing_ok=True)


async def purge_snapshots(directory: Path, older_than: datetime) -> int:
    """Drop snapshots taken before ``older_than`` (an auth.clock time) and the files no longer
    referenced by a kept one; returns how many rows went."""
    old = await CameraSnapshot.filter(taken_at__lt=older_than).values_list("sha256", flat=True)
    if not old:
        return 0
    removed = await CameraSnapshot.filter(taken_at__lt=older_than).delete()
    candidates = {str(h) for h in old}
    # Content addressing: the same picture may still be referenced by a newer row.
    kept = await CameraSnapshot.filter(sha256__in=list(candidates)).values_list("sha256", flat=True)
    await asyncio.to_thread(_remove_files, directory, candidates - {str(h) for h in kept})
    return int(removed)
