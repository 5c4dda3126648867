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
import os
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
    # Where the cut-down fonts go; processes rendering side by side share one (its owner
    # removes it). None: a temporary folder of this process, removed when it exits.
    font_cache: str | None = None

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
    # It replaces a statement sent before the year's receipts changed.
    corrected: bool = False


# The characters the core fonts can show (Windows-1252).
_CORE_CHARS = frozenset(bytes(range(256)).decode(CORE_ENCODING, "ignore"))
# Cached per process: subset fonts by (font file, blocks), lines of wrapped paragraphs and
# shortened table cells by (font, size, width, text). Statements repeat the same campaign
# titles and the same deductibility paragraph thousands of times.
_subsets: dict[tuple[str, frozenset[int]], str | None] = {}
_subset_dir: str | None = None
_lines: dict[tuple, list[str]] = {}
_fitted: dict[tuple, str] = {}
_CACHE_LIMIT = 20_000


def _blocks(text: str) -> frozenset[int]:
    """The 128-code-point blocks of the characters the core fonts cannot show."""
    return frozenset(ord(c) >> 7 for c in text if c not in _CORE_CHARS)


def _subset_font(path: str, blocks: frozenset[int], cache: str | None = None) -> str | None:
    """A copy of the TrueType font at ``path`` cut down to Windows-1252 and ``blocks`` (with
    everything their shaping needs), written once per process to a temporary folder.

    fpdf2 reads the whole font file for each document and subsets it again when writing: on
    DejaVu Sans (6,000 glyphs) that is about 50 ms a document, on a cut of a few hundred
    glyphs a few milliseconds.
    """
    global _subset_dir
    key = (path, blocks, cache)
    if key in _subsets:
        return _subsets[key]
    if not Path(path).is_file():
        _subsets[key] = None
        return None
    import atexit
    import hashlib
    import shutil
    import tempfile

    from fontTools import subset, ttLib

    if cache is None:
        if _subset_dir is None:
            _subset_dir = tempfile.mkdtemp(prefix="newsfund-fonts-")
            atexit.register(shutil.rmtree, _subset_dir, True)
        cache = _subset_dir
    name = hashlib.sha1(repr((path, sorted(blocks))).encode()).hexdigest()[:16]
    target = Path(cache) / f"{Path(path).stem}-{name}.ttf"
    if target.exists():  # cut by another process sharing the folder
        _subsets[key] = str(target)
        return str(target)
    font = ttLib.TTFont(path, recalcTimestamp=False)
    wanted = [cp for cp in font.getBestCmap()
              if chr(cp) in _CORE_CHARS or (cp >> 7) in blocks]
    options = subset.Options()
    options.layout_features = ["*"]  # Arabic joining forms, marks: HarfBuzz needs them
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.glyph_names = True
    options.drop_tables += ["FFTM"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=wanted)
    subsetter.subset(font)
    fd, tmp = tempfile.mkstemp(dir=cache, suffix=".ttf")
    with os.fdopen(fd, "wb") as out:
        font.save(out)
    os.replace(tmp, target)  # whole, even if another process writes the same cut meanwhile
    _subsets[key] = str(target)
    return str(target)


def _remember(cache: dict, key, value):
    if len(cache) < _CACHE_LIMIT:
        cache[key] = value
    return value


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
        self.shaped = False
        self.add_page()

    # -- fonts ---------------------------------------------------------------------------------

    def _unicode_font(self, text: str, bold: bool) -> str | None:
        """A TrueType family able to show ``text``, added to this document on first use; None
        when the font file is missing."""
        blocks = _blocks(text)
        path = self.settings.bold_font_path if bold else self.settings.font_path
        if bold and not Path(path).is_file():
            path = self.settings.font_path  # no bold cut: the regular one will do
        family = f"u{'b' if bold else ''}-{'-'.join(map(str, sorted(blocks)))}"
        if family in self.fonts:
            return family
        subset = _subset_font(path, blocks, self.settings.font_cache)
        if subset is None:
            if path not in _warned:
                _warned.add(path)
                log.warning("PDF font %s is missing (install fonts-dejavu-core, or set "
                            "PDF_FONT_PATH): text outside Windows-1252 is shown as '?'", path)
            return None
        self.add_font(family, "", subset)
        return family

    def use(self, text: str, size: float, bold: bool = False) -> str:
        """Select a font for ``text`` (and shaping for right-to-left text); returns the text as
        it will be drawn. Call ``plain()`` after drawing it."""
        if not _CORE_CHARS.issuperset(text):
            family = self._unicode_font(text, bold)
            if family is not None:
                self.set_font(family, "", size)
                if _RTL.search(text):
                    self._shape()
                return text
            text = text.encode(CORE_ENCODING, "replace").decode(CORE_ENCODING)
        self.set_font("helvetica", "B" if bold else "", size)
        return text

    def _shape(self) -> None:
        try:
            self.set_text_shaping(True, direction="ltr")
            self.shaped = True
        except Exception:  # uharfbuzz missing: the letters are there, in logical order
            if "uharfbuzz" not in _warned:
                _warned.add("uharfbuzz")
                log.warning("uharfbuzz is not installed: right-to-left text in PDFs is not "
                            "shaped")

    def plain(self) -> None:
        if self.shaped:
            self.set_text_shaping(False)
            self.shaped = False

    # -- drawing -------------------------------------------------------------------------------

    def quick_cell(self, w: float, h: float, text: str, align: str = "L") -> None:
        """``cell(w, h, text, align=align)`` with the same placement, for a line of core-font
        text, at a fraction of the cost (fpdf2's cell machinery is most of a statement's
        drawing time); other text goes through ``cell``."""
        if self.is_ttf_font or self.shaped:
            self.cell(w, h, text, align=align)
            return
        if self.x <= self.l_margin + 0.01 and self.will_page_break(h):
            self.add_page()
        if w == 0:
            w = self.w - self.r_margin - self.x
        if align == "R":
            x = self.x + w - self.c_margin - self.get_string_width(text)
        else:
            x = self.x + self.c_margin
        if text:
            self.text(x, self.y + 0.5 * h + 0.3 * self.font_size, text)
        self.x += w

    def text_line(self, text: str, size: float = 10, bold: bool = False, h: float = 5.5,
                  w: float = 0, align: str = "L", new_line: bool = True) -> None:
        drawn = self.use(text, size, bold)
        self.quick_cell(w, h, drawn, align=align)
        if new_line:
            self.ln(h)
        self.plain()

    def wrapped(self, text: str, size: float, h: float, bold: bool = False) -> None:
        """Text wrapped to the rest of the line, left-aligned, moving down past it."""
        drawn = self.use(text, size, bold)
        width = self.w - self.r_margin - self.x
        if self.shaped:  # shaped text: let fpdf2 break it, uncached
            self.multi_cell(width, h, drawn, align="L", new_x="LMARGIN", new_y="NEXT")
            self.plain()
            return
        key = (self.font_family, size, round(width, 2), drawn)
        lines = _lines.get(key)
        if lines is None:
            lines = _remember(_lines, key, [drawn] if self.get_string_width(drawn) <= width
                              else self.multi_cell(width, h, drawn, align="L", dry_run=True,
                                                   output="LINES"))
        x = self.x
        for line in lines:
            self.set_x(x)
            self.quick_cell(width, h, line)
            self.ln(h)

    def paragraph(self, text: str, size: float = 9.5, h: float = 5) -> None:
        self.wrapped(text, size, h)

    def field(self, label: str, value: str, label_w: float = 42) -> None:
        self.text_line(label, 10, bold=True, w=label_w, new_line=False)
        self.wrapped(value, 10, 5.5)

    def fit(self, text: str, width: float, size: float) -> str:
        """``text`` shortened with an ellipsis to fit ``width`` on one line (font selected)."""
        drawn = self.use(text, size)
        key = (self.font_family, size, width, drawn)
        fitted = _fitted.get(key)
        if fitted is None:
            room = width - 2
            if self.get_string_width(drawn) <= room:
                fitted = drawn
            else:  # the longest prefix that fits with the ellipsis: a binary search
                low, high = 0, len(drawn)
                while low < high:
                    mid = (low + high + 1) // 2
                    if self.get_string_width(drawn[:mid].rstrip() + "...") <= room:
                        low = mid
                    else:
                        high = mid - 1
                fitted = drawn[:low].rstrip() + "..."
            _remember(_fitted, key, fitted)
        return fitted

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
    title = "Corrected giving statement" if doc.corrected else "Giving statement"
    pdf = _Document(settings or PdfSettings(), f"{title} {doc.year}", doc.created_at)
    pdf.set_author(org.legal_name)
    pdf.letterhead(org)
    pdf.text_line(f"Your giving in {doc.year}" + (": corrected" if doc.corrected else ""), 14,
                  bold=True, h=8)
    if doc.corrected:
        pdf.paragraph("This statement replaces the one sent to you before: your receipted "
                      "gifts of the year changed since.", size=9)
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
            pdf.quick_cell(w, 5.5, pdf.fit(text, w, 9.5), align=align)
            pdf.plain()
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
