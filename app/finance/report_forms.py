"""The forms of the export and reconciliation pages: which period, which gifts, which format.

Both are GET forms without a CSRF token. Nothing changes when they are submitted (they read the
ledger and answer with a page or a file), so there is nothing for a forged request to do; the
filters live in the URL, so a figure on the reconciliation page can link to the download of
exactly its rows, and an export can be bookmarked or sent to a colleague. A token would only end
up in those URLs and in server logs.

They check the shape of the input (dates, a currency code, a known format); the finance services
check the rest (an end before the start, an unknown campaign or status) and their
``FinanceError`` is shown beside the field it names (``add_error``).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, StopValidation, ValidationError

from app.giving.models import Frequency, GiftStatus

FORMATS = {"csv": "CSV", "xlsx": "Excel (XLSX)"}
#: How gifts are paid, as the export's ``method`` column names them.
METHODS = {"stripe": "Stripe", "sandbox": "Sandbox (test payments)", "cheque": "Cheque",
           "wire": "Bank transfer (wire)", "cash": "Cash", "demo": "Demo data"}
STATUSES = {s.value: s.value.replace("_", " ").capitalize() for s in GiftStatus
            if s.moved_money}  # a pending, processing or failed gift has moved no money
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_METHOD = re.compile(r"[a-z0-9_-]{1,40}")
_PAYOUT = re.compile(r"[A-Za-z0-9_]{1,255}")
#: ``FinanceError.field`` -> the form's attribute (the HTML names are ``from`` and ``to``).
_FIELDS = {"from": "first", "to": "last"}


class DayField(DateField):
    """A date (``<input type="date">``) whose bad value gets a message a person can act on; an
    empty one is left to the field's DataRequired."""

    def process_formdata(self, valuelist):
        if not valuelist or not "".join(valuelist).strip():
            if valuelist:
                self.data = None
            return
        try:
            super().process_formdata([v.strip() for v in valuelist])
        except ValueError:
            raise ValueError(f"“{' '.join(valuelist)[:40]}” is not a date: write it as "
                             "YYYY-MM-DD, e.g. 2026-03-01.") from None

    def pre_validate(self, form):
        if self.process_errors:  # that message stands; "enter the day" would hide it
            raise StopValidation()


def current_month(today: date) -> tuple[date, date]:
    """The first and last day of ``today``'s month."""
    first = today.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _choices(blank: str, options: dict[str, str], current: str | None) -> list[SelectChoice]:
    """The options, plus the value asked for if it is not among them (a prefilled link from the
    reconciliation page can name a method or currency this list does not know): the select
    shows what the file will contain."""
    found = [SelectChoice("", blank)]
    found += [SelectChoice(value, label) for value, label in options.items()]
    if current and current not in options:
        found.append(SelectChoice(current, current))
    return found


class PeriodForm(FlaskForm):
    """From, to and campaign: what the reconciliation page asks."""

    class Meta:
        csrf = False

    first = DayField("From", name="from", validators=[DataRequired("Enter the first day.")])
    last = DayField("To", name="to", validators=[DataRequired("Enter the last day (included).")])
    campaign = SelectField("Campaign", validate_choice=False)

    def __init__(self, formdata, *, campaigns: dict[str, str], today: date | None, **kwargs):
        """``campaigns``: slug -> title, in the order to offer them. The period is ``today``'s
        month when the query names neither day (none: both days must be given)."""
        if today is not None and not {"from", "to"} & set(formdata or ()):
            kwargs["first"], kwargs["last"] = current_month(today)
        super().__init__(formdata, **kwargs)
        self.campaign.choices = _choices("All campaigns", campaigns, self.campaign.data)

    def add_error(self, field: str | None, message: str) -> None:
        """Show a rule a service enforced beside its field, or above the form."""
        target = self._fields.get(_FIELDS.get(field, field)) if field else None
        if target is None:
            self.form_errors.append(message)
        else:
            target.errors = [*target.errors, message]

    def period_args(self) -> tuple[date, date]:
        return self.first.data, self.last.data


class ExportForm(PeriodForm):
    """The export's filters and format (names as ``export_filter`` and the CLI take them)."""

    status = SelectField("Status now", validate_choice=False)
    frequency = SelectField("Frequency", validate_choice=False)
    currency = SelectField("Currency", validate_choice=False)
    method = SelectField("Payment method", validate_choice=False)
    payout = StringField("Payout")
    format = SelectField("Format", validate_choice=False, default="csv")

    def __init__(self, formdata, *, currencies: tuple[str, ...], **kwargs):
        super().__init__(formdata, **kwargs)
        self.status.choices = _choices("Any status", STATUSES, self.status.data)
        self.frequency.choices = _choices(
            "Any frequency", {f.value: f.label for f in Frequency}, self.frequency.data)
        self.currency.choices = _choices(
            "All currencies", {c: c for c in currencies}, (self.currency.data or "").upper())
        self.method.choices = _choices("Any method", METHODS, self.method.data)
        self.format.choices = [SelectChoice(k, v) for k, v in FORMATS.items()]

    def validate_currency(self, field):
        if field.data and not _CURRENCY.fullmatch(field.data.strip()):
            raise ValidationError("Choose a currency, or write its three-letter code "
                                  "(e.g. USD).")

    def validate_method(self, field):
        if field.data and not _METHOD.fullmatch(field.data.strip().lower()):
            raise ValidationError("Choose a payment method from the list.")

    def validate_payout(self, field):
        if field.data and not _PAYOUT.fullmatch(field.data.strip()):
            raise ValidationError("Write the payout's id as the provider shows it "
                                  "(e.g. po_1QHk2mXbV0aJ3c9L), or leave it empty.")

    def validate_format(self, field):
        if field.data not in FORMATS:
            raise ValidationError("Choose CSV or XLSX.")

    def filters(self) -> dict[str, str | None]:
        """The filters as ``export_filter`` takes them (empty: not filtered)."""
        return {name: getattr(self, name).data or None
                for name in ("campaign", "status", "frequency", "currency", "method",
                             "payout")}
