"""Attachments: type by the bytes, names cleaned, content-addressed atomic storage."""

from __future__ import annotations

import asyncio
import hashlib
import io
import stat
import threading
import unicodedata
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from reportlab.pdfgen import canvas

from forms.attachments import (
    DEFAULT_MAX_BYTES,
    JPEG,
    PDF,
    PNG,
    STATIC_DIR,
    AttachmentCorrupt,
    AttachmentRejected,
    AttachmentStore,
    check_upload,
    looks_complete,
    sanitize_name,
    sniff_content_type,
)

MB = 1024 * 1024


def _pdf() -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "Receipt 回执")
    page.save()
    return buffer.getvalue()


def _tiny_pdf() -> bytes:
    """A minimal valid PDF written by hand, cross-reference offsets computed."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _image(kind: str, mode: str = "RGB", size: tuple[int, int] = (16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128)).save(buffer, kind)
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


PDF_BYTES = _pdf()
JPEG_BYTES = _image("JPEG")
PNG_BYTES = _image("PNG")


# --- Type by the bytes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF_BYTES, PDF),
        (_tiny_pdf(), PDF),
        (JPEG_BYTES, JPEG),
        (_image("JPEG", size=(640, 480)), JPEG),
        (PNG_BYTES, PNG),
        (_image("PNG", mode="RGBA"), PNG),
    ],
    ids=["reportlab-pdf", "hand-pdf", "jpeg", "jpeg-large", "png", "png-rgba"],
)
def test_real_files_are_accepted(data: bytes, expected: str) -> None:
    assert sniff_content_type(data[:8]) == expected
    assert looks_complete(expected, data)
    assert check_upload(data, max_bytes=10 * MB) == expected


DISGUISED = {
    # Each would arrive as "申报表.pdf"; the name is never consulted.
    "exe": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48,
    "html": b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "zip": _zip(),
    "gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    "text": "这是一个PDF文件".encode(),
    "pdf-later": b"\n" + PDF_BYTES,  # the magic must be at the very start
}


@pytest.mark.parametrize("data", DISGUISED.values(), ids=DISGUISED.keys())
def test_other_types_are_refused_whatever_their_name(data: bytes) -> None:
    assert sniff_content_type(data) is None
    with pytest.raises(AttachmentRejected) as caught:
        check_upload(data, max_bytes=10 * MB)
    assert caught.value.code == "UNSUPPORTED_TYPE"
    assert "PDF" in caught.value.message


TRUNCATED_OR_FAKE = {
    "jpeg-truncated": JPEG_BYTES[: len(JPEG_BYTES) // 2],
    "jpeg-without-eoi": JPEG_BYTES[:-2],
    "jpeg-with-zip-appended": JPEG_BYTES + _zip(),
    "jpeg-magic-only": b"\xff\xd8\xff\xd9",
    "png-truncated": PNG_BYTES[:-12],
    "png-bad-crc": PNG_BYTES[:30] + bytes([PNG_BYTES[30] ^ 0xFF]) + PNG_BYTES[31:],
    "png-with-data-after-iend": PNG_BYTES + b"<script>alert(1)</script>",
    "png-magic-then-iend": b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x00IEND\xae\x42\x60\x82",
    "pdf-truncated": PDF_BYTES[: len(PDF_BYTES) // 2],
    "pdf-header-on-html": b"%PDF-1.7\n<html><body><script>alert(1)</script></body></html>\n",
    "pdf-header-on-html-with-eof": b"%PDF-1.7\n<html><script>alert(1)</script></html>\n%%EOF\n",
    "pdf-with-html-after-eof": PDF_BYTES + b"<html><script>alert(1)</script></html>",
}


@pytest.mark.parametrize("data", TRUNCATED_OR_FAKE.values(), ids=TRUNCATED_OR_FAKE.keys())
def test_truncated_or_disguised_files_are_refused(data: bytes) -> None:
    content_type = sniff_content_type(data)
    assert content_type is not None  # the magic bytes alone would have let it through
    assert not looks_complete(content_type, data)
    with pytest.raises(AttachmentRejected) as caught:
        check_upload(data, max_bytes=10 * MB)
    assert caught.value.code == "UNSUPPORTED_TYPE"
    assert "不完整" in caught.value.message


def test_zero_padding_after_a_jpeg_is_tolerated() -> None:
    assert check_upload(JPEG_BYTES + b"\x00" * 100, max_bytes=10 * MB) == JPEG


def test_a_few_newlines_after_the_pdf_eof_are_tolerated() -> None:
    assert check_upload(PDF_BYTES + b"\r\n\r\n", max_bytes=10 * MB) == PDF


def test_the_type_must_be_the_one_the_bytes_announce() -> None:
    assert not looks_complete(PDF, PNG_BYTES)
    assert not looks_complete(PNG, JPEG_BYTES)
    assert not looks_complete("image/gif", b"GIF89a")


@pytest.mark.parametrize("head", [b"", b"%PD", b"\xff\xd8", b"\x89PNG\r\n\x1a", b"%pdf-1.4"])
def test_short_or_near_miss_heads_are_unknown(head: bytes) -> None:
    assert sniff_content_type(head) is None


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(AttachmentRejected) as caught:
        check_upload(b"", max_bytes=10 * MB)
    assert caught.value.code == "EMPTY_FILE"
    assert caught.value.message == "文件为空，请重新选择"


def test_a_file_over_the_limit_is_refused_before_it_is_read() -> None:
    padded = JPEG_BYTES + b"\x00" * (MB - len(JPEG_BYTES))  # exactly 1 MB, still a JPEG
    assert check_upload(padded, max_bytes=MB) == JPEG
    for data in (padded + b"\x00", b"\x00" * (MB + 1)):  # one byte over; over and not a type
        with pytest.raises(AttachmentRejected) as caught:
            check_upload(data, max_bytes=MB)
        assert caught.value.code == "TOO_LARGE"
        assert "1 MB" in caught.value.message


def test_the_default_limit_is_ten_megabytes() -> None:
    assert DEFAULT_MAX_BYTES == 10 * MB
    with pytest.raises(AttachmentRejected, match="10 MB"):
        check_upload(b"\x00" * (DEFAULT_MAX_BYTES + 1), max_bytes=DEFAULT_MAX_BYTES)


@pytest.mark.parametrize(
    ("limit", "shown"), [(10_000_000, "9.5 MB"), (50 * 1024, "50 KB"), (100, "100 字节")]
)
def test_the_limit_is_stated_readably(limit: int, shown: str) -> None:
    with pytest.raises(AttachmentRejected) as caught:
        check_upload(b"\x00" * (limit + 1), max_bytes=limit)
    assert caught.value.message == f"文件过大（上限 {shown}）"


# --- Names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        ("../../etc/passwd", PDF, "passwd.pdf"),
        ("C:\\evil\\a.pdf", PDF, "a.pdf"),
        ("\\\\server\\share\\..\\扫描件.png", PNG, "扫描件.png"),
        ("\u202egpj.exe", PNG, "gpj.png"),
        ("invoice\u2066\u202e fdp.exe\u2069", PDF, "invoice fdp.pdf"),
        ("  .hidden ", PDF, "hidden.pdf"),
        ("...", PDF, "附件.pdf"),
        ("", JPEG, "附件.jpg"),
        (None, PNG, "附件.png"),
        ("../../", PDF, "附件.pdf"),
        ("photo.png", JPEG, "photo.jpg"),
        ("report.JPEG", JPEG, "report.jpg"),
        ("发票.pdf.exe", PDF, "发票.pdf"),
        ("合同.docx", PDF, "合同.pdf"),
        ("scan 2024.03", PDF, "scan 2024.03.pdf"),
        ('a<b>c:d"e|f?g*h.pdf', PDF, "a_b_c_d_e_f_g_h.pdf"),
        ("a\x00b\x1f\n\t  c.pdf", PDF, "ab c.pdf"),
        ("身份证   正面\u3000\u3000.jpg", JPEG, "身份证 正面.jpg"),
        ("e\u0301te\u0301.pdf", PDF, "\u00e9t\u00e9.pdf"),
        ("e\x00\u0301\u202e.pdf", PDF, "\u00e9.pdf"),
        ("CON.pdf", PDF, "_CON.pdf"),
        ("nul", PNG, "_nul.png"),
        ("bad\ud800name.png", PNG, "badname.png"),
    ],
)
def test_names_are_cleaned(raw: str | None, content_type: str, expected: str) -> None:
    assert sanitize_name(raw, content_type) == expected


def test_long_chinese_names_are_cut_to_100_characters_keeping_the_extension() -> None:
    raw = "个人所得税经营所得纳税申报表（B表）" * 12 + ".pdf"
    name = sanitize_name(raw, PDF)
    assert len(name) == 100
    assert name.endswith(".pdf")
    assert name.startswith("个人所得税经营所得纳税申报表")
    assert sanitize_name("个" * 300, PNG) == "个" * 96 + ".png"


def test_a_cut_does_not_leave_a_dot_or_space_before_the_extension() -> None:
    name = sanitize_name("甲" * 95 + " . x" + ".pdf", PDF)
    assert name == "甲" * 95 + ".pdf"


@settings(max_examples=500)
@given(st.one_of(st.none(), st.text()), st.sampled_from([PDF, JPEG, PNG]))
def test_any_name_comes_out_safe(raw: str | None, content_type: str) -> None:
    name = sanitize_name(raw, content_type)
    assert name.endswith({PDF: ".pdf", JPEG: ".jpg", PNG: ".png"}[content_type])
    assert 5 <= len(name) <= 100
    assert not set(name) & set('/\\<>:"|?*')
    assert not name.startswith((".", " "))
    assert name == unicodedata.normalize("NFC", name)
    assert all(unicodedata.category(c) not in ("Cc", "Cs") for c in name)
    assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in name)
    assert "  " not in name
    name.encode("utf-8")  # fit for Content-Disposition


# --- Storage -----------------------------------------------------------------------------------


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_put_stores_by_sha256_and_reads_back(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "attachments")
    digest = await store.put(PDF_BYTES)
    assert digest == hashlib.sha256(PDF_BYTES).hexdigest()
    path = store.path_of(digest)
    assert path == tmp_path / "attachments" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == PDF_BYTES
    assert store.exists(digest)
    assert await store.read(digest) == PDF_BYTES


async def test_files_are_0640_in_0750_folders(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "attachments")
    path = store.path_of(await store.put(PNG_BYTES))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "attachments").stat().st_mode) == 0o750


async def test_the_same_bytes_twice_are_one_file_written_once(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    first = await store.put(JPEG_BYTES)
    before = store.path_of(first).stat()
    second = await store.put(JPEG_BYTES)
    assert first == second
    after = store.path_of(first).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _files(tmp_path) == [store.path_of(first)]


async def test_twenty_concurrent_puts_of_the_same_content_leave_one_intact_file(
    tmp_path: Path,
) -> None:
    store = AttachmentStore(tmp_path / "a")
    data = _image("PNG", size=(400, 400)) + b""  # a few kilobytes
    digests = await asyncio.gather(*(store.put(data) for _ in range(20)))
    assert set(digests) == {hashlib.sha256(data).hexdigest()}
    assert _files(tmp_path / "a") == [store.path_of(digests[0])]  # no temporary files left
    assert await store.read(digests[0]) == data
    assert stat.S_IMODE(store.path_of(digests[0]).stat().st_mode) == 0o640


async def test_concurrent_puts_of_different_contents(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    blobs = [PDF_BYTES, JPEG_BYTES, PNG_BYTES, _tiny_pdf()] * 5
    digests = await asyncio.gather(*(store.put(b) for b in blobs))
    assert len(set(digests)) == 4
    assert len(_files(tmp_path)) == 4
    for blob, digest in zip(blobs, digests, strict=True):
        assert await store.read(digest) == blob


async def test_disk_work_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real_put = AttachmentStore._put

    def recording_put(self: AttachmentStore, data: bytes) -> str:
        threads.append(threading.get_ident())
        return real_put(self, data)

    monkeypatch.setattr(AttachmentStore, "_put", recording_put)
    await AttachmentStore(tmp_path).put(PDF_BYTES)
    assert threads
    assert threads[0] != threading.get_ident()


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "../../etc/passwd",
        "/etc/passwd",
        "",
        "ab/cd",
        "A" * 64,  # upper case: one spelling per file
        "0" * 63,
        "0" * 65,
        "../" + "0" * 61,
        "0" * 63 + "\n",
        "0" * 64 + "\n",
    ],
)
async def test_only_a_sha256_hex_digest_names_a_file(tmp_path: Path, bad: str) -> None:
    store = AttachmentStore(tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        store.path_of(bad)
    with pytest.raises(ValueError, match="SHA-256"):
        store.exists(bad)
    with pytest.raises(ValueError, match="SHA-256"):
        await store.read(bad)


async def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    assert not store.exists("0" * 64)
    with pytest.raises(FileNotFoundError):
        await store.read("0" * 64)


async def test_a_damaged_file_is_not_served_and_is_repaired_by_the_next_put(
    tmp_path: Path,
) -> None:
    store = AttachmentStore(tmp_path)
    digest = await store.put(PDF_BYTES)
    path = store.path_of(digest)
    path.chmod(0o600)
    path.write_bytes(PDF_BYTES[:-1] + b"X")  # same size, other bytes
    with pytest.raises(AttachmentCorrupt):
        await store.read(digest)
    with pytest.raises(FileNotFoundError):  # what the download route already handles
        await store.read(digest)
    assert await store.put(PDF_BYTES) == digest
    assert await store.read(digest) == PDF_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("inside", [".", "attachments", "uploads/2026"])
def test_a_root_inside_static_is_refused(inside: str) -> None:
    with pytest.raises(ValueError, match="static"):
        AttachmentStore(STATIC_DIR / inside)
    assert not (STATIC_DIR / "attachments").exists()


def test_static_is_the_projects_folder() -> None:
    assert (STATIC_DIR / "README.md").is_file()


def test_a_root_reaching_static_through_a_symlink_or_dots_is_refused(tmp_path: Path) -> None:
    static = tmp_path / "project" / "static"
    static.mkdir(parents=True)
    (tmp_path / "link").symlink_to(static)
    for root in (tmp_path / "link" / "files", tmp_path / "var" / ".." / "project" / "static"):
        with pytest.raises(ValueError, match="outside static/"):
            AttachmentStore(root, static_dir=static)
    # A sibling whose name merely starts the same is fine.
    AttachmentStore(tmp_path / "project" / "static-files", static_dir=static)
    AttachmentStore(tmp_path / "project" / "var" / "attachments", static_dir=static)


def test_the_constructor_touches_nothing(tmp_path: Path) -> None:
    AttachmentStore(tmp_path / "not" / "yet")
    assert not (tmp_path / "not").exists()
