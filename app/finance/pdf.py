"""PDF receipts and year-end statements, drawn with fpdf2 from plain data (no database here).

Fonts: text that Windows-1252 can encode is set in the PDF core font Helvetica, which every
reader has and which costs nothing to embed; any other text (a donor named in Hebrew or Arabic,
an amount in shekels) is set in a Unicode TrueType font (DejaVu Sans by default,
``PDF_FONT_PATH``), embedded as a subset of the glyphs used. Subsetting costs about 10 ms a
document against under 1 ms for core fonts, so only the documents that need it pay for it:
that is what keeps 10,000 year-end statements within a minute. Right-to-left text is shaped and
ordered by HarfBuzz (uharfbuzz) when it is installed.

Without the TrueType font (``fonts-dejavu-core`` not installed) documents are still produced, in
Helvetica with every character it cannot show replaced by "?", and a warning is logged once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fpdf import FPDF

log = logging.getLogger(__name__)

DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DEFAULT_BOLD_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
CORE_ENCODING = "windows-1252"
# Hebrew, Arabic (with its supplements and presentation forms), Syriac, Thaana, N'Ko.
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_warned: set[str] = set()


@dataclass(frozen=True)
class Organisation:
    name: str
    legal_name: str
    address: str
    tax_id: str

    @classmethod
    def from_config(cls, config) -> Organisation:
        return cls(name=config["ORG_NAME"], legal_name=config["ORG_LEGAL_NAME"],
                   address=config["ORG_ADDRESS"], tax_id=config["ORG_TAX_ID"])


@dataclass(frozen=True)
class PdfSettings:
    font_path: str = DEFAULT_FONT
    bold_font_path: str = DEFAULT_BOLD_FONT
    page_format: str = "letter"

    @classmethod
    def from_config(cls, config) -> PdfSettings:
        return cls(font_path=config.get("PDF_FONT_PATH") or DEFAULT_FONT,
                   bold_font_path=config.get("PDF_BOLD_FONT_PATH") or DEFAULT_BOLD_FONT,
                   page_format=config.get("PDF_PAGE_FORMAT") or "letter")


@dataclass(frozen=True)
class ReceiptDocument:
    """One gift's receipt, every value already formatted for people."""

    number: str
    issued_on: str
    gift_date: str
    donor_name: str
    amount: str  # formatted, e.g. "$50.00"
    currency: str  # ISO code, e.g. "USD"
    campaign: str
    method: str  # "Card, online" or "Cheque no. 1234"
    reference: str
    statement: str  # the deductibility statement
    dedication: str | None = None  # "In memory of Nadia Khoury"
    replaces: str | None = None  # the number of the receipt this one corrects
    void_note: str | None = None  # set on a voided receipt: why
    created_at: datetime | None = None  # the PDF's creation date (stable bytes for one receipt)


@dataclass(frozen=True)
class StatementLine:
    date: str
    receipt_number: str
    campaign: str
    amount: str


@dataclass(frozen=True)
class StatementDocument:
    """A donor's consolidated statement of the year's receipted gifts."""

    year: int
    donor_name: str
    donor_email: str
    lines: Sequence[StatementLine]
    totals: Sequence[str]  # one formatted total per currency
    statement: str
    issued_on: str
    notes: Sequence[str] = field(default_factory=tuple)  # goods or services received, per gift
    created_at: datetime | None = None


class _Document(FPDF):
    """An FPDF that picks, for each piece of text, the cheapest font able to show it."""

    def __init__(self, settings: PdfSettings, title: str, created_at: datetime | None):
        super().__init__(format=settings.page_format, unit="mm")
        self.settings = settings
        self.core_fonts_encoding = CORE_ENCODING
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(True, margin=18)
        self.set_title(title)
        self.set_creator("newsfund")
        if created_at is not None:
            self.set_creation_date(created_at)
        self._ttf: dict[str, str | None] = {}
        self.add_page()

    # -- fonts ---------------------------------------------------------------------------------

    def _unicode_font(self, bold: bool) -> str | None:
        """The TrueType family for this style, added on first use; None when unavailable."""
        style = "B" if bold else ""
        if style in self._ttf:
            return self._ttf[style]
        path = self.settings.bold_font_path if bold else self.settings.font_path
        family: str | None = "unicode-bold" if bold else "unicode"
        if not Path(path).is_file():
            if bold and Path(self.settings.font_path).is_file():
                family = self._unicode_font(False)  # no bold cut: the regular one will do
            else:
                family = None
                if path not in _warned:
                    _warned.add(path)
                    log.warning("PDF font %s is missing (install fonts-dejavu-core, or set "
                                "PDF_FONT_PATH): text outside Windows-1252 is shown as '?'",
                                path)
        else:
            self.add_font(family, "", path)
        self._ttf[style] = family
        return family

    def use(self, text: str, size: float, bold: bool = False) -> str:
        """Select a font for ``text``; returns the text as it will be drawn."""
        try:
            text.encode(CORE_ENCODING)
        except UnicodeEncodeError:
            family = self._unicode_font(bold)
            if family is not None:
                self.set_font(family, "", size)
                if _RTL.search(text):
                    self._shape(True)
                return text
            text = text.encode(CORE_ENCODING, "replace").decode(CORE_ENCODING)
        self.set_font("helvetica", "B" if bold else "", size)
        return text

    def _shape(self, on: bool) -> None:
        if not on:
            self.set_text_shaping(False)
            return
        try:
            self.set_text_shaping(True, direction="ltr")
        except Exception:  # uharfbuzz missing: the letters are there, in logical order
            if "uharfbuzz" not in _warned:
                _warned.add("uharfbuzz")
                log.warning("uharfbuzz is not installed: right-to-left text in PDFs is not "
                            "shaped")

    # -- drawing -------------------------------------------------------------------------------

    def text_line(self, text: str, size: float = 10, bold: bool = False, h: float = 5.5,
                  w: float = 0, align: str = "L", new_line: bool = True) -> None:
        drawn = self.use(text, size, bold)
        if new_line:
            self.cell(w, h, drawn, align=align, new_x="LMARGIN", new_y="NEXT")
        else:
            self.cell(w, h, drawn, align=align)
        self._shape(False)

    def paragraph(self, text: str, size: float = 9.5, h: float = 5) -> None:
        drawn = self.use(text, size)
        self.multi_cell(0, h, drawn, new_x="LMARGIN", new_y="NEXT")
        self._shape(False)

    def field(self, label: str, value: str, label_w: float = 42) -> None:
        self.text_line(label, 10, bold=True, w=label_w, new_line=False)
        drawn = self.use(value, 10)
        self.multi_cell(0, 5.5, drawn, new_x="LMARGIN", new_y="NEXT")
        self._shape(False)

    def letterhead(self, org: Organisation) -> None:
        self.text_line(org.name, 16, bold=True, h=8)
        self.text_line(org.legal_name, 9.5, h=4.8)
        for line in org.address.splitlines() or [""]:
            self.text_line(line, 9.5, h=4.8)
        self.text_line(f"Tax id: {org.tax_id}", 9.5, h=4.8)
        self.ln(4)
        self.set_draw_color(160)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(6)


def render_receipt(doc: ReceiptDocument, org: Organisation,
                   settings: PdfSettings | None = None) -> bytes:
    pdf = _Document(settings or PdfSettings(), f"Receipt {doc.number}", doc.created_at)
    pdf.set_author(org.legal_name)
    pdf.letterhead(org)
    pdf.text_line("Official receipt for tax purposes", 14, bold=True, h=8)
    pdf.ln(2)
    if doc.void_note:
        pdf.set_text_color(170, 0, 0)
        pdf.text_line(f"VOID: {doc.void_note}", 12, bold=True, h=7)
        pdf.set_text_color(0)
        pdf.ln(1)
    pdf.field("Receipt number", doc.number)
    if doc.replaces:
        pdf.field("Replaces", f"receipt {doc.replaces}, which is void")
    pdf.field("Issued on", doc.issued_on)
    pdf.field("Donor", doc.donor_name)
    pdf.field("Date of gift", doc.gift_date)
    pdf.field("Amount", f"{doc.amount} ({doc.currency})")
    pdf.field("Campaign", doc.campaign)
    if doc.dedication:
        pdf.field("Dedication", doc.dedication)
    pdf.field("Payment", doc.method)
    pdf.field("Reference", doc.reference)
    pdf.ln(5)
    pdf.paragraph(doc.statement)
    pdf.ln(3)
    pdf.paragraph("Please keep this receipt for your tax records.", size=8.5)
    return bytes(pdf.output())


def render_statement(doc: StatementDocument, org: Organisation,
                     settings: PdfSettings | None = None) -> bytes:
    pdf = _Document(settings or PdfSettings(), f"Giving statement {doc.year}", doc.created_at)
    pdf.set_author(org.legal_name)
    pdf.letterhead(org)
    pdf.text_line(f"Your giving in {doc.year}", 14, bold=True, h=8)
    pdf.ln(1)
    pdf.field("Donor", doc.donor_name)
    pdf.field("Email", doc.donor_email)
    pdf.field("Issued on", doc.issued_on)
    pdf.ln(4)
    widths = (34, 34, 0, 32)
    usable = pdf.w - pdf.l_margin - pdf.r_margin
    widths = (widths[0], widths[1], usable - widths[0] - widths[1] - widths[3], widths[3])

    def header() -> None:
        for text, w, align in zip(("Date", "Receipt", "Campaign", "Amount"), widths,
                                  "LLLR", strict=True):
            pdf.text_line(text, 9.5, bold=True, w=w, h=6, align=align, new_line=False)
        pdf.ln(6)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(1)

    header()
    for line in doc.lines:
        if pdf.will_page_break(5.5):
            pdf.add_page()
            header()
        for text, w, align in zip((line.date, line.receipt_number, line.campaign, line.amount),
                                  widths, "LLLR", strict=True):
            pdf.text_line(_fit(pdf, text, w), 9.5, w=w, h=5.5, align=align, new_line=False)
        pdf.ln(5.5)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)
    for total in doc.totals:
        pdf.text_line("Total", 10, bold=True, w=usable - widths[3], h=6, new_line=False)
        pdf.text_line(total, 10, bold=True, w=widths[3], h=6, align="R")
    pdf.ln(5)
    for note in doc.notes:
        pdf.paragraph(note)
    pdf.paragraph(doc.statement)
    pdf.ln(3)
    pdf.paragraph("Each gift above was also acknowledged by its own receipt. Please keep this "
                  "statement for your tax records.", size=8.5)
    return bytes(pdf.output())


def _fit(pdf: _Document, text: str, width: float) -> str:
    """Shorten text with an ellipsis so one table cell stays on one line."""
    pdf.use(text, 9.5)
    if pdf.get_string_width(text) <= width - 2:
        return text
    while text and pdf.get_string_width(text + "...") > width - 2:
        text = text[:-1]
    return text.rstrip() + "..."
