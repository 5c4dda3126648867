"""PDF receipts and statements: what they say, names in any script, and the fallback font."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.finance.common import FinanceError
from app.finance.documents import (
    DocumentSettings,
    get_receipt,
    receipt_document,
    receipt_pdf,
)
from app.finance.models import Receipt
from app.finance.pdf import (
    Organisation,
    PdfSettings,
    ReceiptDocument,
    StatementDocument,
    StatementLine,
    render_receipt,
    render_statement,
)
from app.giving.models import Dedication
from app.payments.providers import current_provider
from tests.factories import make_campaign, paid_gift, refund_gift
from tests.finance.support import text_of

ORG = Organisation("Levant Wire", "Levant Wire News Agency, Inc.",
                   "PO Box 2006, New York, NY 10163, USA", "EIN 00-0000000")


def receipt(**fields) -> ReceiptDocument:
    values = dict(number="2026-000042", issued_on="March 5, 2026", gift_date="March 5, 2026",
                  donor_name="Noa Levi", amount="$50.00", currency="USD",
                  campaign="Twenty years of independent reporting", method="Card, online",
                  reference="q7Rk2m", statement="No goods or services were provided.")
    values.update(fields)
    return ReceiptDocument(**values)


def test_a_latin_receipt_uses_core_fonts_only():
    pdf = render_receipt(receipt(dedication="In memory of Nadia Khoury"), ORG)
    text = text_of(pdf)
    for part in ("Levant Wire News Agency, Inc.", "EIN 00-0000000", "2026-000042", "Noa Levi",
                 "$50.00 \\(USD\\)", "Twenty years of independent reporting",
                 "In memory of Nadia Khoury", "No goods or services were provided."):
        assert part in text, part
    assert b"/FontFile2" not in pdf and len(pdf) < 5000


@pytest.mark.parametrize("name", ["נועה לוי", "نور الهدى حداد", "Zeynep Şahin", "Дмитрий"])
def test_names_in_any_script_embed_a_unicode_font(name):
    pdf = render_receipt(receipt(donor_name=name, dedication=f"In honour of {name}"), ORG)
    assert b"/FontFile2" in pdf and b"DejaVuSans" in pdf
    assert "2026-000042" in text_of(pdf)  # the rest stays in the core font


def test_a_missing_font_falls_back_to_core_fonts(monkeypatch, caplog):
    monkeypatch.setattr("app.finance.pdf._warned", set())
    settings = PdfSettings(font_path="/nonexistent/Font.ttf",
                           bold_font_path="/nonexistent/Font-Bold.ttf")
    with caplog.at_level(logging.WARNING, logger="app.finance.pdf"):
        pdf = render_receipt(receipt(donor_name="נועה Levi", amount="₪180.00"), ORG, settings)
    assert b"/FontFile2" not in pdf
    text = text_of(pdf)
    assert "???? Levi" in text and "?180.00" in text
    assert "fonts-dejavu-core" in caplog.text


def test_a_long_statement_runs_over_pages():
    lines = [StatementLine(f"March {i % 28 + 1}, 2026", f"2026-{i:06d}",
                           "Ramadan Kareem: light for the stories that need it, and more", "$25.00")
             for i in range(1, 80)]
    doc = StatementDocument(2026, "Noa Levi", "noa@example.org", lines, ["$1,975.00"],
                            "Except where noted above, no goods or services were provided.",
                            "January 5, 2027", notes=["Receipt 2026-000003: a dinner."])
    pdf = render_statement(doc, ORG)
    assert len(re.findall(rb"/Type /Page\b", pdf)) >= 2
    text = text_of(pdf)
    assert "2026-000079" in text and "$1,975.00" in text and "a dinner." in text
    assert "Ramadan Kareem: light for the stories that need it, and m" not in text  # cut


def test_a_gifts_receipt_document(app):
    campaign = make_campaign(title="Ramadan Kareem")
    gift, _ = paid_gift(campaign, amount=3600, dedication=Dedication.HONOUR,
                        dedication_name="Omar", cover_fee=True)
    settings = DocumentSettings.from_config(app.config)
    rec = db.session.scalar(select(Receipt).where(Receipt.gift_id == gift.id))
    doc = receipt_document(rec, settings)
    assert doc.number == rec.number and doc.amount == f"${gift.total / 100:,.2f}"
    assert doc.campaign == "Ramadan Kareem" and doc.dedication == "In honour of Omar"
    assert doc.method == "Card, online (test payment)" and doc.reference == gift.public_id
    assert doc.statement == app.config["TAX_STATEMENT"] and doc.void_note is None
    assert rec.number in text_of(receipt_pdf(rec, settings))


def test_a_void_receipt_says_so(app):
    gift, _ = paid_gift(make_campaign())
    refund_gift(gift, current_provider(), now=utcnow() + timedelta(minutes=1))
    rec = db.session.scalar(select(Receipt).where(Receipt.gift_id == gift.id))
    text = text_of(receipt_pdf(rec, DocumentSettings.from_config(app.config)))
    assert "VOID: refunded in full" in text


def test_a_supporter_downloads_only_their_own_receipts(app):
    gift, _ = paid_gift(make_campaign())
    other, _ = paid_gift(make_campaign("other"), email="other@example.org")
    rec = db.session.scalar(select(Receipt).where(Receipt.gift_id == gift.id))
    assert get_receipt(rec.number, supporter_id=gift.supporter_id) == rec
    assert get_receipt(rec.number) == rec  # finance
    with pytest.raises(FinanceError, match="among your gifts"):
        get_receipt(rec.number, supporter_id=other.supporter_id)
    with pytest.raises(FinanceError, match="no receipt"):
        get_receipt("2026-999999")
