"""The receipt (回执) PDF: Chinese drawn with an embedded font subset, a QR code, a readable layout.

The PDF is rendered to PNG with poppler's pdftoppm (at 72 dpi one pixel is one point, so the
layout's constants locate the title, the facts and the QR code) and read back with pdftotext.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from forms import receipt
from forms.receipt import ReceiptView, TimelineEntry, render_receipt

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
PDFTOPPM = shutil.which("pdftoppm")
PDFTOTEXT = shutil.which("pdftotext")
PDFINFO = shutil.which("pdfinfo")
ZBARIMG = shutil.which("zbarimg")

needs_font = pytest.mark.skipif(
    not FONT.exists(), reason=f"{FONT} missing: apt-get install fonts-wqy-microhei (make fonts)"
)
needs_poppler = pytest.mark.skipif(
    not (PDFTOPPM and PDFTOTEXT and PDFINFO),
    reason="pdftoppm/pdftotext/pdfinfo missing: apt-get install poppler-utils (make fonts)",
)

SUBMITTED = datetime(2026, 11, 28, 6, 3, tzinfo=UTC)  # 14:03 in Beijing
TRACKING_NO = "SB26-K7Q4-M9XT-R3"
TAXPAYER = "广州市天河区陈记餐饮店"


def a_view(**changes: Any) -> ReceiptView:
    view = ReceiptView(
        tracking_no=TRACKING_NO,
        form_title="代开增值税发票（个人出租不动产）",
        taxpayer_name=TAXPAYER,
        taxpayer_id="92440106MA5CXXXX1X",
        applicant_name_masked="陈*明",
        status_label="已办结",
        submitted_at=SUBMITTED,
        timeline=(
            TimelineEntry(SUBMITTED, "已提交", "申请人", None),
            TimelineEntry(SUBMITTED + timedelta(minutes=40), "已受理", "税务人员", "材料齐全"),
            TimelineEntry(SUBMITTED + timedelta(days=1), "已办结", "税务人员", "发票已开具"),
        ),
        progress_url=f"https://suban.example.gov.cn/h5/#/progress?tracking_no={TRACKING_NO}",
        issued_at=SUBMITTED + timedelta(days=1, hours=2),
        result_lines=(("发票号码", "26442000000000012345"),),
    )
    return replace(view, **changes)


def _run(*args: str) -> bytes:
    # poppler's own tools on a file this test wrote.
    return subprocess.run(args, check=True, capture_output=True, timeout=60).stdout  # noqa: S603


def page_png(pdf: bytes, tmp_path: Path, page: int = 1) -> Image.Image:
    assert PDFTOPPM
    source = tmp_path / "receipt.pdf"
    source.write_bytes(pdf)
    stem = tmp_path / f"page{page}"
    _run(PDFTOPPM, "-r", "72", "-png", "-f", str(page), "-l", str(page), "-singlefile",
         str(source), str(stem))  # fmt: skip
    return Image.open(stem.with_suffix(".png")).convert("L")


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    assert PDFTOTEXT
    source = tmp_path / "text.pdf"
    source.write_bytes(pdf)
    return _run(PDFTOTEXT, "-layout", str(source), "-").decode()


def pdf_info(pdf: bytes, tmp_path: Path) -> dict[str, str]:
    assert PDFINFO
    source = tmp_path / "info.pdf"
    source.write_bytes(pdf)
    lines = _run(PDFINFO, "-enc", "UTF-8", str(source)).decode().splitlines()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


Box = tuple[float, float, float, float]


def crop(image: Image.Image, box: Box) -> Image.Image:
    left, top, right, bottom = box
    return image.crop((round(left), round(top), round(right), round(bottom)))


def dark_share(image: Image.Image, box: Box) -> float:
    """The share of pixels in ``box`` (points from the top left) darker than mid grey."""
    region = crop(image, box)
    histogram = region.histogram()
    return sum(histogram[:160]) / max(1, region.width * region.height)


WIDTH = receipt.PAGE_WIDTH
# The title's line, and the facts table's label column (below the title and its subtitle).
TITLE_BOX = (receipt.MARGIN, receipt.MARGIN, WIDTH - receipt.MARGIN, receipt.MARGIN + 26)
LABELS_BOX = (
    receipt.MARGIN,
    receipt.MARGIN + 60,
    receipt.MARGIN + receipt.LABEL_WIDTH,
    receipt.MARGIN + 220,
)
# The middle of the QR code: in the right column, beside the facts.
QR_CENTRE = (
    WIDTH - receipt.MARGIN - receipt.QR_COLUMN / 2,
    receipt.MARGIN + 56 + receipt.QR_SIZE / 2,
)
QR_BOX = (QR_CENTRE[0] - 35, QR_CENTRE[1] - 35, QR_CENTRE[0] + 35, QR_CENTRE[1] + 35)


@needs_font
def test_the_cjk_font_is_embedded_as_a_subset() -> None:
    pdf = render_receipt(a_view(), font_path=FONT)
    assert pdf.startswith(b"%PDF-")
    assert b"/FontFile2" in pdf
    # A subset's name is six capitals, "+", the face's PostScript name.
    assert re.search(rb"/BaseFont /[A-Z]{6}\+WenQuanYiMicroHei", pdf)
    assert b"STSong-Light" not in pdf
    # Only the glyphs used: the whole face is ~5 MB.
    assert len(pdf) < 200_000


@needs_font
@needs_poppler
def test_the_chinese_title_and_facts_are_drawn(tmp_path: Path) -> None:
    image = page_png(render_receipt(a_view(), font_path=FONT), tmp_path)
    assert image.size in {(595, 842), (596, 842)}  # A4 (595.3 × 841.9 pt) at 72 dpi
    assert dark_share(image, TITLE_BOX) > 0.02
    assert dark_share(image, LABELS_BOX) > 0.02
    # The measure means something: the page's empty lower part has nothing dark.
    assert dark_share(image, (receipt.MARGIN, 600, WIDTH - receipt.MARGIN, 760)) < 0.001


@needs_font
@needs_poppler
def test_the_text_reads_back_in_beijing_time(tmp_path: Path) -> None:
    naive_utc = datetime(2026, 11, 30, 1, 30)  # taken as UTC: 09:30 in Beijing
    timeline = (*a_view().timeline, TimelineEntry(naive_utc, "已归档", "系统", None))
    text = pdf_text(render_receipt(a_view(timeline=timeline), font_path=FONT), tmp_path)
    for expected in (
        "速办税 · 涉税文书受理回执",
        "受理编号",
        TRACKING_NO,
        "纳税人识别号",
        "92440106MA5CXXXX1X",
        TAXPAYER,
        "陈*明",
        "提交时间",
        "2026-11-28 14:03",  # submitted
        "2026-11-28 14:43",  # accepted
        "2026-11-30 09:30",  # the naive one
        "发票号码",
        "26442000000000012345",
        "扫码查询办理进度",
        "开具时间 2026-11-29 16:03",
    ):
        assert expected in text, expected


@needs_font
@needs_poppler
def test_a_qr_code_sits_beside_the_facts(tmp_path: Path) -> None:
    image = page_png(render_receipt(a_view(), font_path=FONT), tmp_path)
    share = dark_share(image, QR_BOX)
    # Modules: plenty of both black and white, as no text or blank area has.
    assert 0.3 < share < 0.7
    # Without a URL to encode there would be no code; a different URL draws a different one.
    other = page_png(
        render_receipt(a_view(progress_url="https://other.example/p?t=1"), font_path=FONT),
        tmp_path,
    )
    assert crop(other, QR_BOX).tobytes() != crop(image, QR_BOX).tobytes()


@needs_font
@needs_poppler
@pytest.mark.skipif(not ZBARIMG, reason="zbarimg missing (apt-get install zbar-tools) to decode")
def test_the_qr_code_decodes_to_the_progress_page(tmp_path: Path) -> None:
    assert ZBARIMG
    page_png(render_receipt(a_view(), font_path=FONT), tmp_path)  # at 72 dpi: a coarse scan
    decoded = _run(ZBARIMG, "--quiet", "--raw", str(tmp_path / "page1.png")).decode().strip()
    assert decoded == a_view().progress_url


@needs_poppler
def test_a_missing_font_falls_back_to_stsong_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-font.ttc"
    with caplog.at_level(logging.WARNING, logger="suban.receipt"):
        first = render_receipt(a_view(), font_path=missing)
        second = render_receipt(a_view(), font_path=missing)
    warnings = [r for r in caplog.records if r.name == "suban.receipt"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert str(missing) in warnings[0].getMessage()
    assert "reader's own Chinese fonts" in warnings[0].getMessage()
    for pdf in (first, second):
        assert pdf.startswith(b"%PDF-")
        assert b"/BaseFont /STSong-Light" in pdf
        assert b"/FontFile2" not in pdf
    assert TRACKING_NO in pdf_text(first, tmp_path)


def test_an_unreadable_font_falls_back_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"\x00\x01\x00\x00 not really a font" * 10)
    with caplog.at_level(logging.WARNING, logger="suban.receipt"):
        pdf = render_receipt(a_view(), font_path=broken)
    assert b"STSong-Light" in pdf
    assert [r.name for r in caplog.records] == ["suban.receipt"]


@needs_font
def test_the_font_is_loaded_once_per_path() -> None:
    name = receipt.font_for(FONT)
    assert receipt.font_for(FONT) == name
    assert name != receipt.FALLBACK_FONT


@needs_font
@needs_poppler
def test_markup_characters_in_user_text_are_printed_as_typed(tmp_path: Path) -> None:
    note = "请补充 <b>租赁合同</b> & 房产证\x07\n第二行 &amp; <br/> 完"
    view = a_view(
        taxpayer_name="A&B <公司>",
        timeline=(TimelineEntry(SUBMITTED, "需补正", "税务人员", note),),
        result_lines=(("文书编号", "<1&2>"),),
    )
    text = pdf_text(render_receipt(view, font_path=FONT), tmp_path)
    assert "A&B <公司>" in text
    assert "<b>租赁合同</b> & 房产证" in text
    assert "第二行 &amp; <br/> 完" in text
    assert "<1&2>" in text


@needs_font
@needs_poppler
def test_a_long_timeline_spans_pages_with_its_header_repeated(tmp_path: Path) -> None:
    note = "请补充上传租赁合同第 2 页（含出租方签章）及房产证复印件。" * 4
    timeline = tuple(
        TimelineEntry(SUBMITTED + timedelta(hours=i), "需补正", "税务人员", note) for i in range(60)
    )
    pdf = render_receipt(a_view(timeline=timeline), font_path=FONT)
    pages = int(pdf_info(pdf, tmp_path)["Pages"])
    assert pages > 2
    text = pdf_text(pdf, tmp_path)
    assert text.count("办理人") == pages  # the header row on every page
    assert f"{TRACKING_NO} · 第 {pages} 页" in text
    # Wrapped, not cut at the column: every entry's note ends on the page.
    assert text.count("复印件。") == 60 * 4


@needs_font
@needs_poppler
def test_a_very_long_note_is_cut_with_a_pointer_to_the_progress_page(tmp_path: Path) -> None:
    note = "很长的说明" * 2000 + "https://example.com/" + "a" * 500
    view = a_view(timeline=(TimelineEntry(SUBMITTED, "需补正", "税务人员", note),) * 5)
    text = pdf_text(render_receipt(view, font_path=FONT), tmp_path)
    assert text.count("全文见办理进度页") == 5


@needs_font
@needs_poppler
def test_a_note_of_many_lines_keeps_a_dozen(tmp_path: Path) -> None:
    note = "\n".join(f"第{i}行" for i in range(300)) + "\n" * 500 + "末行"
    view = a_view(timeline=(TimelineEntry(SUBMITTED, "需补正", "税务人员", note),))
    text = pdf_text(render_receipt(view, font_path=FONT), tmp_path)
    lines = [line.strip() for line in text.splitlines()]
    assert "第10行" in lines  # eleven lines as typed...
    assert any(line.startswith("第11行 第12行 第13行") for line in lines)  # ...then run on
    assert "全文见办理进度页" in text
    assert "末行" not in text  # past the length limit


@needs_font
@needs_poppler
def test_an_empty_timeline_and_missing_facts_show_dashes(tmp_path: Path) -> None:
    view = a_view(
        taxpayer_name=None, taxpayer_id=None, submitted_at=None, timeline=(), result_lines=()
    )
    text = pdf_text(render_receipt(view, font_path=FONT), tmp_path)
    assert "暂无记录" in text
    assert "办理结果" not in text
    assert re.search(r"纳税人识别号\s+—", text)


@needs_font
@needs_poppler
def test_the_metadata_names_the_document_not_the_people(tmp_path: Path) -> None:
    info = pdf_info(render_receipt(a_view(), font_path=FONT), tmp_path)
    assert info["Title"] == "涉税文书受理回执"
    metadata = " ".join(info.get(k, "") for k in ("Title", "Subject", "Author", "Keywords"))
    for private in (TRACKING_NO, TAXPAYER, "92440106MA5CXXXX1X", "陈*明"):
        assert private not in metadata


@needs_font
def test_receipts_render_in_parallel_threads() -> None:
    views = [a_view(tracking_no=f"SB26-TEST-{i:04d}-X") for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        pdfs = list(pool.map(lambda v: render_receipt(v, font_path=FONT), views))
    assert all(p.startswith(b"%PDF-") and b"/FontFile2" in p for p in pdfs)
    # One at a time or not, each document is built alone: same size as one rendered on its own.
    assert len(pdfs[3]) == len(render_receipt(views[3], font_path=FONT))
