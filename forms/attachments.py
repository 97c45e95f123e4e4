"""Attachments: what an upload is (by its bytes), what it is called, and where it is kept.

Pure domain code, no web framework: the routes call :func:`check_upload`, :func:`sanitize_name`
and :class:`AttachmentStore`, and do the access check themselves before anything is served.

* The type is read from the first bytes — PDF, JPEG and PNG only — and never from the name or the
  ``Content-Type`` the client sent; :func:`looks_complete` then refuses a truncated file, or another
  file that merely starts like one of ours.
* The name is only ever shown (``Content-Disposition``), never used as a path; it is cleaned anyway
  so that it cannot smuggle a path, a reversed extension or a name Windows refuses to save.
* The bytes are stored once per content under their SHA-256 (``root/ab/cd/<sha256>``), written
  atomically, in a directory that must not be inside ``static/`` (which is served to anyone).

The signatures are checked by hand: three fixed byte patterns and their trailers fit in a few
lines, whereas python-magic needs the libmagic C library on every host and recognises far more
types than we accept, so we would still have to filter its answer against these three.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import unicodedata
import zlib
from pathlib import Path
from typing import Final, Literal

PDF: Final = "application/pdf"
JPEG: Final = "image/jpeg"
PNG: Final = "image/png"

# The extension a stored name ends with, for each accepted type.
EXTENSIONS: Final[dict[str, str]] = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png"}
# Other spellings of the same type's extension, removed before the canonical one is added.
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    PDF: (".pdf",),
    JPEG: (".jpg", ".jpeg", ".jpe", ".jfif"),
    PNG: (".png",),
}
DEFAULT_STEM: Final = "附件"
DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
MAX_NAME_LENGTH: Final = 100

PDF_MAGIC: Final = b"%PDF-"
JPEG_MAGIC: Final = b"\xff\xd8\xff"
PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
# How many bytes the sniffer needs to see.
HEAD_BYTES: Final = len(PNG_MAGIC)

# PDF readers look for the end-of-file marker (and the ``startxref`` before it) in the last
# 1024 bytes (ISO 32000-1, 7.5.5); incremental updates or a trailing newline sit inside that.
_PDF_TAIL: Final = 1024
_PNG_IHDR: Final = b"\x00\x00\x00\x0dIHDR"
_PNG_IEND: Final = b"\x00\x00\x00\x00IEND\xae\x42\x60\x82"
_JPEG_EOI: Final = b"\xff\xd9"
_JPEG_SOS: Final = b"\xff\xda"

# The project's static/ folder: served to anyone, so attachments must never live under it.
STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) turn
# "\u202egpj.exe" into what looks like "exe.jpg"; the marks (LRM, RLM, ALM) go as well.
_BIDI: Final = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)
_WINDOWS_ILLEGAL = re.compile(r'[<>:"/\\|?*]')
# Device names Windows will not save as a file, whatever the extension.
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])")
# A trailing ".xyz" counts as an extension (to be replaced) when it is short ASCII with a letter:
# "报表.docx" loses ".docx", but "报表 v1.2" keeps ".2".
_EXTENSION = re.compile(r"\.(?=[A-Za-z0-9]{1,10}\Z)[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*\Z")

RejectionCode = Literal["UNSUPPORTED_TYPE", "EMPTY_FILE", "TOO_LARGE"]


class AttachmentRejected(Exception):
    """An upload we do not keep; ``message`` is shown to the applicant as is."""

    def __init__(self, code: RejectionCode, message: str) -> None:
        super().__init__(message)
        self.code: RejectionCode = code
        self.message = message


class AttachmentCorrupt(FileNotFoundError):
    """The stored bytes no longer hash to their name.

    A ``FileNotFoundError``: the file we stored is gone as surely as if it had been deleted, and
    callers that already answer "temporarily unavailable" for a missing file do the right thing.
    """


# --- What the bytes are ------------------------------------------------------------------------


def sniff_content_type(head: bytes) -> str | None:
    """The type the first bytes announce: PDF, JPEG or PNG, else None. Never looks at a name."""
    if head.startswith(PDF_MAGIC):
        return PDF
    if head.startswith(JPEG_MAGIC):
        return JPEG
    if head.startswith(PNG_MAGIC):
        return PNG
    return None


def looks_complete(content_type: str, data: bytes) -> bool:
    """Whether ``data`` is whole as well as well-begun: the trailer its type requires is there.

    Not a full parser: enough to refuse a truncated upload, and a file of another kind (an HTML
    page, a script) that only borrows our magic bytes at its start.
    """
    if sniff_content_type(data) != content_type:
        return False
    if content_type == PDF:
        return _pdf_complete(data)
    if content_type == JPEG:
        return _jpeg_complete(data)
    if content_type == PNG:
        return _png_complete(data)
    return False


def _pdf_complete(data: bytes) -> bool:
    tail = data[-_PDF_TAIL:]
    eof = tail.rfind(b"%%EOF")
    if eof < 0 or tail[eof + 5 :].strip(b"\r\n\t\f\x00 "):
        return False
    # The cross-reference offset precedes the marker; a page with "%%EOF" pasted in has none.
    return b"startxref" in tail[:eof]


def _jpeg_complete(data: bytes) -> bool:
    # Some encoders pad the file with zero bytes after the end-of-image marker.
    body = data.rstrip(b"\x00")
    return len(body) > len(JPEG_MAGIC) + 2 and body.endswith(_JPEG_EOI) and _JPEG_SOS in body


def _png_complete(data: bytes) -> bool:
    """The chunks follow each other exactly, with correct CRCs, from IHDR to a final IEND."""
    if data[len(PNG_MAGIC) : len(PNG_MAGIC) + 8] != _PNG_IHDR or not data.endswith(_PNG_IEND):
        return False
    pos = len(PNG_MAGIC)
    end = len(data)
    while pos + 12 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_end = pos + 12 + length
        if chunk_end > end:
            return False
        kind_and_body = data[pos + 4 : pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length : chunk_end], "big")
        if zlib.crc32(kind_and_body) != crc:
            return False
        if kind_and_body[:4] == b"IEND":
            return chunk_end == end
        pos = chunk_end
    return False


def check_upload(data: bytes, *, max_bytes: int) -> str:
    """The content type of an acceptable upload; otherwise :class:`AttachmentRejected`."""
    if not data:
        raise AttachmentRejected("EMPTY_FILE", "文件为空，请重新选择")
    if len(data) > max_bytes:
        raise AttachmentRejected("TOO_LARGE", f"文件过大（上限 {_human_size(max_bytes)}）")
    content_type = sniff_content_type(data[:HEAD_BYTES])
    if content_type is None:
        raise AttachmentRejected("UNSUPPORTED_TYPE", "仅支持 PDF、JPEG、PNG 格式的文件")
    if not looks_complete(content_type, data):
        raise AttachmentRejected("UNSUPPORTED_TYPE", "文件不完整或已损坏，请重新导出后上传")
    return content_type


def _human_size(n: int) -> str:
    """10485760 → "10 MB", 10_000_000 → "9.5 MB", 51200 → "50 KB"."""
    if n >= 1024 * 1024:
        return f"{round(n / (1024 * 1024), 1):g} MB"
    if n >= 1024:
        return f"{round(n / 1024, 1):g} KB"
    return f"{n} 字节"


# --- What it is called -------------------------------------------------------------------------


def sanitize_name(raw: str | None, content_type: str) -> str:
    """A name safe to show and to save on any system, ending in the extension of the real type.

    No directories, control or bidi characters, leading dots or characters Windows refuses;
    whitespace collapsed; NFC; at most 100 characters with the extension; "附件.pdf" if nothing
    is left.
    """
    extension = EXTENSIONS[content_type]
    # Only the last component of a path, whichever separator the sending system used.
    name = re.split(r"[/\\]", raw or "")[-1]
    name = "".join(_clean_char(c) for c in name)
    # After the cleaning: "e\0\u0301" becomes "e\u0301" only once the NUL is gone.
    name = unicodedata.normalize("NFC", name)
    name = _WINDOWS_ILLEGAL.sub("_", name)
    name = " ".join(name.split())
    name = name.lstrip(". ")
    stem = _drop_extensions(name, content_type)
    limit = MAX_NAME_LENGTH - len(extension)
    stem = stem[:limit].rstrip(". ")
    if not stem:
        stem = DEFAULT_STEM
    elif _WINDOWS_RESERVED.fullmatch(stem.split(".")[0].rstrip()):
        stem = ("_" + stem)[:limit]
    return stem + extension


def _clean_char(c: str) -> str:
    if c.isspace():
        return " "
    if c in _BIDI:
        return ""
    # Cc: control characters; Cs: lone surrogates (from a badly decoded name), unencodable.
    if unicodedata.category(c) in ("Cc", "Cs"):
        return ""
    return c


def _drop_extensions(name: str, content_type: str) -> str:
    """``name`` without its own extension, nor a spelling of the real one just before it.

    "扫描件.exe" → "扫描件"; "发票.pdf.exe" (a PDF) → "发票", not "发票.pdf.pdf".
    """
    match = _EXTENSION.search(name)
    stem = name[: match.start()] if match else name
    stem = stem.rstrip(". ")
    for alias in _ALIASES[content_type]:
        if stem.lower().endswith(alias):
            return stem[: -len(alias)].rstrip(". ")
    return stem


# --- Where it is kept --------------------------------------------------------------------------


class AttachmentStore:
    """Content-addressed files under ``root``: ``root/ab/cd/<sha256>``, 0o640 in 0o750 folders.

    Writes are atomic (a temporary file in the target folder, fsync, ``os.replace``), so a reader
    sees the whole file or none, and concurrent puts of the same bytes leave one intact file.
    Disk work runs in a thread (``asyncio.to_thread``), hashing included.
    """

    FILE_MODE: Final = 0o640
    DIR_MODE: Final = 0o750

    def __init__(self, root: Path, *, static_dir: Path = STATIC_DIR) -> None:
        resolved = Path(root).resolve()
        static = Path(static_dir).resolve()
        if resolved == static or static in resolved.parents:
            raise ValueError(
                f"attachment directory {resolved} is inside {static}, which is served to anyone "
                "without an access check; set SUBAN_ATTACHMENT_DIR to a folder outside static/"
            )
        self.root = resolved

    def path_of(self, sha256: str) -> Path:
        """Where the file with this digest lives; ValueError unless it is 64 lower-case hex."""
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    async def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its SHA-256 hex digest."""
        return await asyncio.to_thread(self._put, data)

    async def read(self, sha256: str) -> bytes:
        """The stored bytes: FileNotFoundError if absent, :class:`AttachmentCorrupt` if altered."""
        path = self.path_of(sha256)
        return await asyncio.to_thread(self._read, path, sha256)

    # Blocking halves, run in a worker thread.

    def _read(self, path: Path, sha256: str) -> bytes:
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise AttachmentCorrupt(f"attachment {sha256} does not match its digest")
        return data

    def _put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_of(digest)
        with contextlib.suppress(FileNotFoundError):
            # Already stored: nothing to write. Compared byte for byte, so that a damaged copy
            # is replaced rather than kept forever.
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return digest
        folder = path.parent
        self._make_dirs(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fchmod(out.fileno(), self.FILE_MODE)
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._fsync_dir(folder)
        return digest

    def _make_dirs(self, folder: Path) -> None:
        # Path.mkdir(parents=True) would give the intermediate folders the default mode, and the
        # umask could widen nothing but could narrow the leaf: each folder we create is set exactly.
        missing: list[Path] = []
        current = folder
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=self.DIR_MODE)
            except FileExistsError:
                continue  # a concurrent put made it first
            os.chmod(directory, self.DIR_MODE)

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        # The rename is durable only once the folder's entry is on disk.
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
