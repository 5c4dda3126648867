"""Receipt PDFs: who may download which, and what a receipt says (formatted for people in the
organisation's zone and locale, then drawn by ``app.finance.pdf``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select

from app.extensions import db
from app.finance.common import FinanceError
from app.finance.models import Receipt, ReceiptStatus
from app.finance.pdf import Organisation, PdfSettings, ReceiptDocument, render_receipt
from app.finance.receipts import gift_charge, payment_method
from app.giving.models import Gift
from app.money import format_money


@dataclass(frozen=True)
class DocumentSettings:
    """What every receipt and statement needs from the configuration."""

    org: Organisation
    zone: ZoneInfo
    locale: str
    tax_statement: str
    tax_statement_goods: str
    tax_statement_year: str
    pdf: PdfSettings

    @classmethod
    def from_config(cls, config) -> DocumentSettings:
        return cls(
            org=Organisation.from_config(config), zone=ZoneInfo(config["ORG_TIMEZONE"]),
            locale=config["ORG_LOCALE"], tax_statement=config["TAX_STATEMENT"],
            tax_statement_goods=config.get("TAX_STATEMENT_GOODS") or config["TAX_STATEMENT"],
            tax_statement_year=config.get("TAX_STATEMENT_YEAR") or config["TAX_STATEMENT"],
            pdf=PdfSettings.from_config(config),
        )

    def date(self, value: datetime) -> str:
        return format_date(value.astimezone(self.zone), "long", locale=self.locale)

    def money(self, minor: int, currency: str) -> str:
        return format_money(minor, currency, self.locale)

    def goods_statement(self, gift: Gift, amount: int, template: str | None = None) -> str:
        """The deductibility statement for a gift with goods or services in return."""
        value = gift.goods_value or 0
        return (template or self.tax_statement_goods).format(
            org=self.org.legal_name, goods=gift.goods_description or "goods or services",
            value=self.money(value, gift.currency),
            deductible=self.money(max(0, amount - value), gift.currency))


def get_receipt(number: str, *, supporter_id: int | None = None) -> Receipt:
    """The receipt with this number; with ``supporter_id``, only if it is that supporter's
    (what a signed-in supporter may download). Finance passes no supporter."""
    query = select(Receipt).where(Receipt.number == number.strip())
    if supporter_id is not None:
        query = query.join(Gift, Gift.id == Receipt.gift_id).where(
            Gift.supporter_id == supporter_id)
    receipt = db.session.scalar(query)
    if receipt is None:
        raise FinanceError(f"There is no receipt {number!r}" +
                           (" among your gifts." if supporter_id is not None else "."))
    return receipt


def receipt_document(receipt: Receipt, settings: DocumentSettings) -> ReceiptDocument:
    gift = receipt.gift
    charge = gift_charge(gift)
    method = charge.provider if charge is not None else gift.provider
    offline = method in ("cheque", "wire", "cash")
    statement = (settings.goods_statement(gift, receipt.amount) if gift.goods_value
                 else settings.tax_statement)
    return ReceiptDocument(
        number=receipt.number,
        issued_on=settings.date(receipt.issued_at),
        gift_date=settings.date(gift.paid_at or receipt.issued_at),
        donor_name=gift.donor_name,
        amount=settings.money(receipt.amount, receipt.currency),
        currency=receipt.currency,
        campaign=gift.campaign.title,
        method=payment_method(gift, charge),
        reference=charge.provider_id if offline and charge is not None else gift.public_id,
        statement=statement,
        dedication=(f"{gift.dedication.label} {gift.dedication_name}"
                    if gift.dedication and gift.dedication_name else None),
        replaces=receipt.replaces.number if receipt.replaces_id else None,
        void_note=(f"{receipt.void_reason or 'void'} (on {settings.date(receipt.voided_at)})"
                   if receipt.status is ReceiptStatus.VOID and receipt.voided_at else None),
        created_at=receipt.issued_at,
    )


def receipt_pdf(receipt: Receipt, settings: DocumentSettings) -> bytes:
    return render_receipt(receipt_document(receipt, settings), settings.org, settings.pdf)


def receipt_filename(receipt: Receipt) -> str:
    return f"receipt-{receipt.number}.pdf"
