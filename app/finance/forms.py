"""Finance forms: they check the shape of input; the rules live in the finance services. Every
POST is a FlaskForm, so each carries its CSRF token."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    ValidationError,
)

from app.core import within_years
from app.finance.offline import METHODS, OfflineGift
from app.giving.models import Dedication, Gift
from app.money import AmountError, parse_amount, to_decimal
from app.payments.models import Payment

METHOD_LABELS = {"cheque": "Cheque", "wire": "Bank transfer (wire)", "cash": "Cash"}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class DayField(DateField):
    """A date input whose bad value gets a message a person can act on."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Enter the date as YYYY-MM-DD, e.g. 2026-03-05.") from None


class OfflineGiftForm(FlaskForm):
    """A cheque, wire or cash gift as finance enters it."""

    received_on = DayField("Date received", validators=[
        InputRequired("Enter the date the money was received."), within_years])
    method = SelectField("Method", choices=[SelectChoice(m, METHOD_LABELS[m]) for m in METHODS])
    reference = StringField("Reference", filters=[_strip], validators=[Length(max=255)],
                            description="The cheque number or the bank's reference (cash: "
                                        "leave empty and one is made up).")
    donor_name = StringField("Donor's name", filters=[_strip], validators=[
        DataRequired("Enter the donor's name."), Length(max=200)])
    email = EmailField("Donor's email", filters=[_strip], validators=[
        DataRequired("Enter the donor's email address (the receipt goes there)."),
        Email("Enter an email address like name@example.com.", check_deliverability=False),
        Length(max=254)])
    campaign = SelectField("Campaign", validate_choice=False)
    amount = StringField("Amount", filters=[_strip], validators=[Length(max=20)],
                         description="In the campaign's currency, e.g. 250 or 250.00.")
    goods_value = StringField("Goods or services in return: fair-market value (optional)",
                              filters=[_strip], validators=[Length(max=20)])
    goods_description = StringField("What they were (optional)", filters=[_strip],
                                    validators=[Length(max=200)],
                                    description="e.g. a gala dinner ticket")
    dedication = SelectField("Dedication", choices=[
        SelectChoice("", "No dedication"), *(SelectChoice(d.value, d.label) for d in Dedication)],
        default="")
    dedication_name = StringField("Whom it honours or remembers", filters=[_strip],
                                  validators=[Length(max=200)])
    anonymous = BooleanField("Anonymous (do not name the donor publicly)")
    send_receipt = BooleanField("Email the receipt to the donor", default=True)

    def __init__(self, *args, campaigns: dict[str, tuple[str, str]], **kwargs):
        """``campaigns``: slug -> (title, currency), in the order to offer them."""
        super().__init__(*args, **kwargs)
        self.campaigns = campaigns
        self.campaign.choices = [SelectChoice("", "Choose a campaign")] + [
            SelectChoice(slug, f"{title} ({currency})")
            for slug, (title, currency) in campaigns.items()]

    # -- shape checks ---------------------------------------------------------------------------

    def currency(self) -> str | None:
        found = self.campaigns.get(self.campaign.data or "")
        return found[1] if found else None

    def validate_campaign(self, field):
        if not field.data:
            raise ValidationError("Choose the campaign the gift is for.")
        if field.data not in self.campaigns:
            raise ValidationError(f"There is no campaign {field.data!r}: choose one from the "
                                  "list.")

    def _money(self, field, *, required: bool) -> int | None:
        if not required and field.data in ("", "0", None):
            return None
        currency = self.currency()
        if currency is None:  # the campaign's own error says what to fix
            return None
        try:
            return parse_amount(field.data, currency)
        except AmountError as exc:
            raise ValidationError(str(exc)) from None

    def validate_amount(self, field):
        self._money(field, required=True)

    def validate_goods_value(self, field):
        self._money(field, required=False)

    def add_error(self, field: str | None, message: str) -> None:
        """Show a rule the service enforced beside its field, or above the form."""
        target = getattr(self, {"currency": "campaign"}.get(field, field), None) \
            if field else None
        if target is None or not hasattr(target, "errors"):
            self.form_errors.append(message)
            return
        target.errors = [*target.errors, message]

    # -- what the services take -------------------------------------------------------------------

    def values(self) -> dict:
        """The fields as ``OfflineGift`` names them (validated)."""
        return {
            "received_on": self.received_on.data, "method": self.method.data,
            "reference": self.reference.data or None, "donor_name": self.donor_name.data,
            "email": self.email.data, "campaign": self.campaign.data,
            "amount": self._money(self.amount, required=True),
            "dedication": Dedication(self.dedication.data) if self.dedication.data else None,
            "dedication_name": self.dedication_name.data or None,
            "goods_value": self._money(self.goods_value, required=False),
            "goods_description": self.goods_description.data or None,
            "anonymous": bool(self.anonymous.data),
        }

    def to_entry(self) -> OfflineGift:
        return OfflineGift(currency=self.currency(), **self.values())


class CorrectionForm(OfflineGiftForm):
    """The same fields, filled with what was recorded, and why they change."""

    reason = TextAreaField("Reason for the correction", filters=[_strip], validators=[
        DataRequired("Say why the gift is corrected (it goes in the audit log)."),
        Length(max=500)])
    send_receipt = BooleanField("Email a corrected receipt if one is issued", default=True)

    def fill(self, gift: Gift, charge: Payment, zone: ZoneInfo) -> None:
        self.received_on.data = gift.paid_at.astimezone(zone).date()
        self.method.data = charge.provider
        self.reference.data = charge.provider_id
        self.donor_name.data = gift.donor_name
        self.email.data = gift.supporter.email
        self.campaign.data = gift.campaign.slug
        self.amount.data = _plain(gift.amount, gift.currency)
        self.goods_value.data = _plain(gift.goods_value, gift.currency) if gift.goods_value \
            else ""
        self.goods_description.data = gift.goods_description or ""
        self.dedication.data = gift.dedication.value if gift.dedication else ""
        self.dedication_name.data = gift.dedication_name or ""
        self.anonymous.data = gift.anonymous

    def changes(self, gift: Gift, charge: Payment, zone: ZoneInfo) -> dict:
        """Only what differs from what was recorded (what ``correct_offline_gift`` takes)."""
        recorded = {
            "received_on": gift.paid_at.astimezone(zone).date(), "method": charge.provider,
            "reference": charge.provider_id, "donor_name": gift.donor_name,
            "email": gift.supporter.email, "campaign": gift.campaign.slug,
            "amount": gift.amount, "dedication": gift.dedication,
            "dedication_name": gift.dedication_name if gift.dedication else None,
            "goods_value": gift.goods_value or None,
            "goods_description": gift.goods_description if gift.goods_value else None,
            "anonymous": gift.anonymous,
        }
        values = self.values()
        if values["method"] == "cash" and not values["reference"]:
            values["reference"] = charge.provider_id  # keep the made-up cash reference
        if not values["dedication"]:
            values["dedication_name"] = None
        if not values["goods_value"]:
            values["goods_description"] = None
        changed = {k: v for k, v in values.items() if v != recorded[k]}
        if "email" in changed and changed["email"].lower() == recorded["email"]:
            del changed["email"]
        return changed


class ReversalForm(FlaskForm):
    reason = TextAreaField("Reason for the reversal", filters=[_strip], validators=[
        DataRequired("Say why the gift is reversed (it goes in the audit log)."),
        Length(max=500)], description="e.g. the cheque bounced; entered twice by mistake")
    confirm = BooleanField("Yes, reverse this gift: a refund of the whole amount is recorded "
                           "and its receipt is voided", validators=[
                               DataRequired("Tick the box to confirm the reversal.")])


def _plain(minor: int, currency: str) -> str:
    return f"{to_decimal(minor, currency):f}"


# -- year-end statements -------------------------------------------------------------------------

YEARS = NumberRange(1900, 9999, "Enter a year such as 2025.")


class StatementYearForm(FlaskForm):
    """Which year the statements page shows (a GET form: nothing changes, so no token)."""

    class Meta:
        csrf = False

    year = IntegerField("Year", validators=[InputRequired("Enter a year."), YEARS])


class StatementPreviewForm(FlaskForm):
    """One donor's statement as a PDF (a GET: nothing changes, so no token)."""

    class Meta:
        csrf = False

    year = IntegerField("Year", validators=[InputRequired("Enter a year."), YEARS])
    donor = StringField("Donor's email or supporter number", filters=[_strip], validators=[
        DataRequired("Enter the donor's email address or supporter number."),
        Length(max=254)])


class StatementSendForm(FlaskForm):
    year = HiddenField(validators=[InputRequired()])
    confirm = BooleanField("Yes, email every donor their statement (each donor gets it once, "
                           "however often this is run)", validators=[
                               DataRequired("Tick the box to confirm sending.")])
    # A year that has not ended in the organisation's zone is refused without it.
    force = BooleanField("Send although the year has not ended: gifts made after today will "
                         "be on no statement")

    def year_value(self) -> int | None:
        try:
            year = int(self.year.data)
        except (TypeError, ValueError):
            return None
        return year if 1900 <= year <= 9999 else None
