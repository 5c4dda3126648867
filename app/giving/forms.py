"""The donation form: checks the shape of the input; the rules live in ``giving.services``."""

from __future__ import annotations

import uuid

from flask import request
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from app.core import Readable
from app.giving.models import Dedication, Frequency, Gift, GiftStatus
from app.giving.services import (
    DEDICATION_NAME_MAX,
    DEDICATION_NAME_TOO_LONG,
    UTM_FIELDS,
    GiftRequest,
)
from app.money import AmountError, amount_text, parse_amount

OTHER = "other"
#: Link parameters that choose on the form (``?amount=25&frequency=monthly``, the thank-you
#: page's offer), and the gift to fill it from (``?gift=``, see ``refill``). A page with any of
#: them is rendered for its visitor, never the shared copy (``campaigns.pages``).
FORM_PARAMETERS = ("amount", "frequency", "gift")


class DonationForm(FlaskForm):
    frequency = RadioField("How often", choices=[SelectChoice(f.value, f.label) for f in Frequency],
                           validators=[DataRequired("Choose how often to give.")])
    amount_choice = RadioField("Amount", validate_choice=True,
                               validators=[DataRequired("Choose an amount.")])
    # Readable() first on every text field: text that arrived as bytes that are not UTF-8 is
    # refused beside its field (app.core), before any other check of it.
    other_amount = StringField("Other amount", validators=[Readable(), Length(max=20)])
    currency = HiddenField(validators=[Readable(), DataRequired()])
    cover_fee = BooleanField("Cover the processing fee")
    name = StringField("Full name", validators=[
        Readable(), DataRequired("Enter your name."),
        Length(max=200, message="Use at most 200 characters."),
    ])
    email = EmailField("Email", validators=[
        Readable(), DataRequired("Enter your email address."),
        Email("Enter an email address like name@example.com.", check_deliverability=False),
        Length(max=254),
    ])
    dedication = SelectField("Dedicate this gift", choices=[
        SelectChoice("", "No dedication"), *(SelectChoice(d.value, d.label) for d in Dedication)],
        default="")
    dedication_name = StringField("Their name", validators=[
        Readable(), Length(max=DEDICATION_NAME_MAX, message=DEDICATION_NAME_TOO_LONG)])
    dedication_email = EmailField("Email them to say so (optional)", validators=[
        Readable(), Optional(), Email("Enter an email address like name@example.com.",
                          check_deliverability=False), Length(max=254)])
    anonymous = BooleanField("Give anonymously (your name is not shown publicly)")
    comment = TextAreaField("A note for the newsroom (optional)", validators=[
        Readable(), Length(max=1000, message="Keep the note under 1,000 characters.")])
    submission_key = HiddenField(validators=[Readable(), DataRequired(), Length(min=16, max=64)])
    utm_source = HiddenField(validators=[Readable(), Length(max=100)])
    utm_medium = HiddenField(validators=[Readable(), Length(max=100)])
    utm_campaign = HiddenField(validators=[Readable(), Length(max=100)])
    utm_term = HiddenField(validators=[Readable(), Length(max=100)])
    utm_content = HiddenField(validators=[Readable(), Length(max=100)])
    #: Filled again from a gift the donor left at the checkout page (the page says so).
    resumed = False

    def validate_other_amount(self, field):
        if self.amount_choice.data != OTHER:
            return
        try:
            self.parsed_amount = parse_amount(field.data, self.currency.data or "USD")
        except AmountError as exc:
            raise ValidationError(str(exc)) from None
        except ValueError:
            raise ValidationError("This currency is not supported.") from None

    def add_error(self, field: str | None, message: str) -> None:
        """Show a rule the service enforced beside its field, or above the form."""
        if field is None:
            self.form_errors.append(message)
            return
        target = self.other_amount if field == "amount" else getattr(self, field)
        target.errors = [*target.errors, message]

    def amount_minor(self) -> int:
        if self.amount_choice.data == OTHER:
            return self.parsed_amount
        return int(self.amount_choice.data)

    def to_request(self) -> GiftRequest:
        dedication = Dedication(self.dedication.data) if self.dedication.data else None
        return GiftRequest(
            amount=self.amount_minor(),
            currency=self.currency.data,
            frequency=Frequency(self.frequency.data),
            donor_name=self.name.data.strip(),
            email=self.email.data.strip(),
            submission_key=self.submission_key.data,
            cover_fee=self.cover_fee.data,
            anonymous=self.anonymous.data,
            comment=(self.comment.data or "").strip() or None,
            dedication=dedication,
            dedication_name=(self.dedication_name.data or "").strip() or None,
            dedication_email=(self.dedication_email.data or "").strip() or None,
            utm={name: getattr(self, name).data for name in UTM_FIELDS},
        )


def donation_form(campaign, formdata=None, *, gift: Gift | None = None) -> DonationForm:
    """The form for a campaign: its suggested amounts, currency and default frequency, and on a
    fresh page what the link that brought the reader here asks for (the ``amount`` and
    ``frequency`` to start from, its ``utm_*`` parameters), then ``gift``'s values (``refill``).
    """
    if formdata is None:
        form = DonationForm(formdata=None, frequency=campaign.default_frequency.value,
                            currency=campaign.currency, submission_key=uuid.uuid4().hex,
                            **{name: request.args.get(name, "")[:100] for name in UTM_FIELDS})
        suggested = campaign.suggested_amounts
        if suggested:
            middle = suggested[len(suggested) // 2] if len(suggested) > 2 else suggested[0]
            form.amount_choice.data = str(middle.amount)
        else:
            form.amount_choice.data = OTHER
        _apply_link_choices(form, campaign)
        if gift is not None:
            refill(form, campaign, gift)
    else:
        form = DonationForm(formdata=formdata)
    form.amount_choice.choices = [SelectChoice(str(s.amount)) for s in campaign.suggested_amounts]
    form.amount_choice.choices.append(SelectChoice(OTHER, "Other"))
    return form


def _apply_link_choices(form: DonationForm, campaign) -> None:
    """``?frequency=monthly&amount=25``: a link may choose for the reader. Anything the form
    would not take is ignored (the amount's limits are checked when the form is sent)."""
    frequency = request.args.get("frequency", "")
    if frequency in {f.value for f in Frequency}:
        form.frequency.data = frequency
    amount = request.args.get("amount", "")
    if amount and len(amount) <= 20:
        try:
            _choose_amount(form, campaign, parse_amount(amount, campaign.currency))
        except (AmountError, ValueError):
            pass


def _choose_amount(form: DonationForm, campaign, amount: int) -> None:
    """Select ``amount``'s tile when it is one of the suggested amounts, otherwise "Other" with
    the amount typed in."""
    if any(s.amount == amount for s in campaign.suggested_amounts):
        form.amount_choice.data = str(amount)
        form.other_amount.data = ""
    else:
        form.amount_choice.data = OTHER
        form.other_amount.data = amount_text(amount, campaign.currency)
        form.parsed_amount = amount


def refill(form: DonationForm, campaign, gift: Gift) -> None:
    """Fill a fresh form from a gift this browser started (``giving.services.gift_to_refill``).

    A gift not paid yet (the donor left the checkout page) comes back whole, as they filled it
    in: amount, frequency, fee choice, name, email, dedication, anonymity, note and the link's
    ``utm_*`` values. The form keeps its new submission key, so that sending it again, changed
    or not, starts a new gift at a new checkout. Once paid, only who gave comes back (name,
    email, the fee and anonymity choices): its amount, dedication and note were that gift's.
    """
    form.name.data = gift.donor_name
    form.email.data = gift.supporter.email
    form.cover_fee.data = gift.fee_covered > 0
    form.anonymous.data = gift.anonymous
    if gift.status is not GiftStatus.PENDING:
        return
    form.resumed = True
    form.frequency.data = gift.frequency.value
    _choose_amount(form, campaign, gift.amount)
    form.dedication.data = gift.dedication.value if gift.dedication else ""
    form.dedication_name.data = gift.dedication_name or ""
    form.dedication_email.data = gift.dedication_email or ""
    form.comment.data = gift.comment or ""
    for name in UTM_FIELDS:
        getattr(form, name).data = getattr(gift, name) or ""
