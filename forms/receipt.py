"""The receipt (回执) of a filing as a PDF: what was filed, by whom, where it stands, and a QR code.

People open it on phones and PCs that may have no Chinese font, so the Chinese is drawn with a
TrueType CJK font embedded in the PDF (reportlab subsets it: only the glyphs used, ~30 KB). The
font's path is a setting (``SUBAN_RECEIPT_FONT``; WenQuanYi Micro Hei from fonts-wqy-microhei by
default). reportlab cannot embed CFF-outline fonts (the OTF Noto CJK): those, and a missing file,
fall back to the STSong-Light CID font, which is named but not embedded — readers without a
Chinese font then show boxes, so that is logged.

Rendering is CPU work and reportlab shares font state between documents: ``render_receipt`` is a
plain function the route runs in a thread, and builds one document at a time.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

logger = logging.getLogger("suban.receipt")

TITLE = "速办税 · 涉税文书受理回执"
QR_CAPTION = "扫码查询办理进度"
FALLBACK_FONT = "STSong-Light"
ZONE = ZoneInfo("Asia/Shanghai")
# A receipt is not the full record: a note longer than this is cut (the progress page has it all).
# Each timeline row then fits on one page (reportlab tables split between rows, not inside them).
NOTE_LIMIT = 800
NOTE_LINES = 12

# Layout (points). A4 is 595 × 842; the tests find the title, the facts and the QR code by these.
PAGE_WIDTH: float = A4[0]
PAGE_HEIGHT: float = A4[1]
MARGIN = 18 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
QR_SIZE = 36 * mm
QR_COLUMN = QR_SIZE + 6 * mm
LABEL_WIDTH = 28 * mm
FOOTER_HEIGHT = 14 * mm

INK = colors.HexColor("#1f2329")
MUTED = colors.HexColor("#646a73")
RULE = colors.HexColor("#c9cdd4")
SHADE = colors.HexColor("#f2f3f5")
ACCENT = colors.HexColor("#1456f0")

# Line breaks (\n, \r, \x0b, \x0c, \x1c-\x1e) go to splitlines; other C0 controls are dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")

_fonts: dict[Path, str] = {}
_font_lock = threading.Lock()
# reportlab keeps a TrueType face's read position on the shared font object while it subsets: two
# documents built at once with the same font could interleave. Receipts are few; one at a time.
_build_lock = threading.Lock()


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    status_label: str
    actor_label: str
    note: str | None


@dataclass(frozen=True)
class ReceiptView:
    tracking_no: str
    form_title: str
    taxpayer_name: str | None
    taxpayer_id: str | None
    applicant_name_masked: str
    status_label: str
    submitted_at: datetime | None
    timeline: tuple[TimelineEntry, ...]
    progress_url: str
    issued_at: datetime
    result_lines: tuple[tuple[str, str], ...] = ()


def font_for(path: Path) -> str:
    """The registered reportlab font name for ``path``: loaded once per path (the face stays in
    memory, ~5 MB for WenQuanYi), or STSong-Light. A failure is remembered too: a font installed
    later is used after a restart."""
    with _font_lock:
        name = _fonts.get(path)
        if name is None:
            name = _load_font(path, f"SubanReceipt{len(_fonts)}")
            _fonts[path] = name
        return name


def _load_font(path: Path, name: str) -> str:
    try:
        # subfontIndex picks the first face of a collection (.ttc) and is ignored for a .ttf.
        font = TTFont(name, str(path), subfontIndex=0)
    except Exception as exc:  # reportlab raises TTFError, OSError, struct.error... on bad files
        logger.warning(
            "receipt font %s cannot be embedded (%s): receipts name %s instead and rely on the "
            "reader's own Chinese fonts; install fonts-wqy-microhei or set SUBAN_RECEIPT_FONT",
            path,
            exc,
            FALLBACK_FONT,
        )
        if FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
        return FALLBACK_FONT
    pdfmetrics.registerFont(font)
    return name


def _local(moment: datetime) -> str:
    """Beijing time, to the minute; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def _markup(text: str, *, max_lines: int = 1) -> str:
    """User text as Paragraph markup: escaped, control characters dropped, and at most
    ``max_lines`` of its non-empty lines kept as lines (the rest run on after a space)."""
    lines = [line.strip() for line in _CONTROL.sub("", text).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > max_lines:
        lines[max_lines - 1 :] = [" ".join(lines[max_lines - 1 :])]
    return "<br/>".join(escape(line) for line in lines)


def _note(note: str | None) -> str:
    if not note or not note.strip():
        return "—"
    note = note.strip()
    if len(note) > NOTE_LIMIT:
        note = note[:NOTE_LIMIT] + "……（全文见办理进度页）"
    return _markup(note, max_lines=NOTE_LINES)


class _Styles:
    def __init__(self, font: str) -> None:
        def style(name: str, **kw: Any) -> ParagraphStyle:
            base: dict[str, Any] = {
                "fontName": font,
                "fontSize": 10,
                "leading": 14,
                "textColor": INK,
                "wordWrap": "CJK",
            }
            return ParagraphStyle(name, **(base | kw))

        self.title = style("title", fontSize=18, leading=24, alignment=TA_CENTER)
        self.subtitle = style(
            "subtitle", fontSize=9, leading=12, alignment=TA_CENTER, textColor=MUTED
        )
        self.heading = style("heading", fontSize=12, leading=16, textColor=ACCENT)
        self.label = style("label", textColor=MUTED)
        self.value = style("value")
        self.tracking = style("tracking", fontName="Helvetica-Bold", fontSize=13, leading=16)
        self.cell = style("cell", fontSize=9, leading=12.5)
        self.head = style("head", fontSize=9, leading=12.5, textColor=MUTED)
        self.caption = style("caption", fontSize=9, leading=12, alignment=TA_CENTER)


def _facts(view: ReceiptView, s: _Styles) -> Table:
    def value(text: str | None) -> Paragraph:
        return Paragraph(_markup(text or "") or "—", s.value)

    rows = [
        ("受理编号", Paragraph(_markup(view.tracking_no), s.tracking)),
        ("文书", value(view.form_title)),
        ("纳税人", value(view.taxpayer_name)),
        ("纳税人识别号", value(view.taxpayer_id)),
        ("申请人", value(view.applicant_name_masked)),
        ("当前状态", value(view.status_label)),
        ("提交时间", value(_local(view.submitted_at) if view.submitted_at else None)),
    ]
    table = Table(
        [[Paragraph(label, s.label), cell] for label, cell in rows],
        colWidths=[LABEL_WIDTH, CONTENT_WIDTH - QR_COLUMN - LABEL_WIDTH],
    )
    table.setStyle(_grid(label_column=True))
    return table


def _qr(view: ReceiptView, s: _Styles) -> Table:
    widget = QrCodeWidget(view.progress_url, barLevel="M", barBorder=2)
    widget.barWidth = QR_SIZE
    widget.barHeight = QR_SIZE
    drawing = Drawing(QR_SIZE, QR_SIZE)
    drawing.add(widget)
    block = Table([[drawing], [Paragraph(QR_CAPTION, s.caption)]], colWidths=[QR_COLUMN])
    block.setStyle(
        TableStyle(
            [
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return block


def _results(view: ReceiptView, s: _Styles) -> Table:
    table = Table(
        [
            [Paragraph(_markup(label), s.label), Paragraph(_markup(value), s.value)]
            for label, value in view.result_lines
        ],
        colWidths=[LABEL_WIDTH, CONTENT_WIDTH - LABEL_WIDTH],
    )
    table.setStyle(_grid(label_column=True))
    return table


def _timeline(view: ReceiptView, s: _Styles) -> Table:
    widths = [30 * mm, 26 * mm, 24 * mm]
    widths.append(CONTENT_WIDTH - sum(widths))
    rows: list[list[Paragraph]] = [
        [Paragraph(h, s.head) for h in ("时间", "状态", "办理人", "说明")]
    ]
    for entry in view.timeline:
        rows.append(
            [
                Paragraph(_local(entry.at), s.cell),
                Paragraph(_markup(entry.status_label), s.cell),
                Paragraph(_markup(entry.actor_label), s.cell),
                Paragraph(_note(entry.note), s.cell),
            ]
        )
    style = _grid(label_column=False)
    if not view.timeline:
        rows.append([Paragraph("暂无记录", s.cell)] * 4)
        style.add("SPAN", (0, 1), (-1, 1))
    table = Table(rows, colWidths=widths, repeatRows=1)
    style.add("BACKGROUND", (0, 0), (-1, 0), SHADE)
    style.add("VALIGN", (0, 1), (-1, -1), "TOP")
    table.setStyle(style)
    return table


def _grid(*, label_column: bool) -> TableStyle:
    style = TableStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LINEABOVE", (0, 0), (-1, 0), 0.8, INK),
            ("LINEBELOW", (0, -1), (-1, -1), 0.8, INK),
            ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
            ("TOPPADDING", (0, 0), (-1, -1), 4),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
            ("LEFTPADDING", (0, 0), (-1, -1), 5),
            ("RIGHTPADDING", (0, 0), (-1, -1), 5),
        ]
    )
    if label_column:
        style.add("BACKGROUND", (0, 0), (0, -1), SHADE)
    return style


def render_receipt(view: ReceiptView, *, font_path: Path) -> bytes:
    """The receipt as PDF bytes. CPU-bound: call it in a thread from async code."""
    font = font_for(font_path)
    s = _Styles(font)
    issued = _local(view.issued_at)

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.4)
        canvas.line(MARGIN, FOOTER_HEIGHT, PAGE_WIDTH - MARGIN, FOOTER_HEIGHT)
        canvas.setFillColor(MUTED)
        canvas.setFont(font, 8)
        y = FOOTER_HEIGHT - 11
        canvas.drawString(
            MARGIN,
            y,
            f"开具时间 {issued}（北京时间） · 本回执由速办税系统生成，办理进度以查询结果为准",
        )
        canvas.drawRightString(PAGE_WIDTH - MARGIN, y, f"{view.tracking_no} · 第 {doc.page} 页")
        canvas.restoreState()

    top = Table(
        [[_facts(view, s), _qr(view, s)]],
        colWidths=[CONTENT_WIDTH - QR_COLUMN, QR_COLUMN],
    )
    top.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    story: list[Any] = [
        Paragraph(TITLE, s.title),
        Spacer(1, 1 * mm),
        Paragraph("凭受理编号或扫描二维码可随时查询办理进度", s.subtitle),
        Spacer(1, 6 * mm),
        top,
    ]
    if view.result_lines:
        story += [Spacer(1, 6 * mm), Paragraph("办理结果", s.heading), Spacer(1, 2 * mm)]
        story.append(_results(view, s))
    story += [Spacer(1, 6 * mm), Paragraph("办理记录", s.heading), Spacer(1, 2 * mm)]
    story.append(_timeline(view, s))

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=FOOTER_HEIGHT + 6 * mm,
        # Metadata is read by anything that indexes files: the document's kind, nobody's data.
        title="涉税文书受理回执",
        author="速办税",
        subject="涉税文书受理回执",
        creator="速办税",
        lang="zh-CN",
    )
    with _build_lock:
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
