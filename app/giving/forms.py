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

from app.giving.models import Dedication, Frequency
from app.giving.services import UTM_FIELDS, GiftRequest
from app.money import AmountError, parse_amount

OTHER = "other"


class DonationForm(FlaskForm):
    frequency = RadioField("How often", choices=[SelectChoice(f.value, f.label) for f in Frequency],
                           validators=[DataRequired("Choose how often to give.")])
    amount_choice = RadioField("Amount", validate_choice=True,
                               validators=[DataRequired("Choose an amount.")])
    other_amount = StringField("Other amount", validators=[Length(max=20)])
    currency = HiddenField(validators=[DataRequired()])
    cover_fee = BooleanField("Cover the processing fee")
    name = StringField("Full name", validators=[
        DataRequired("Enter your name."), Length(max=200, message="Use at most 200 characters."),
    ])
    email = EmailField("Email", validators=[
        DataRequired("Enter your email address."),
        Email("Enter an email address like name@example.com.", check_deliverability=False),
        Length(max=254),
    ])
    dedication = SelectField("Dedicate this gift", choices=[
        SelectChoice("", "No dedication"), *(SelectChoice(d.value, d.label) for d in Dedication)],
        default="")
    dedication_name = StringField("Their name", validators=[Length(max=200)])
    dedication_email = EmailField("Email them to say so (optional)", validators=[
        Optional(), Email("Enter an email address like name@example.com.",
                          check_deliverability=False), Length(max=254)])
    anonymous = BooleanField("Give anonymously (your name is not shown publicly)")
    comment = TextAreaField("A note for the newsroom (optional)", validators=[
        Length(max=1000, message="Keep the note under 1,000 characters.")])
    submission_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    utm_source = HiddenField(validators=[Length(max=100)])
    utm_medium = HiddenField(validators=[Length(max=100)])
    utm_campaign = HiddenField(validators=[Length(max=100)])
    utm_term = HiddenField(validators=[Length(max=100)])
    utm_content = HiddenField(validators=[Length(max=100)])

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


def donation_form(campaign, formdata=None) -> DonationForm:
    """The form for a campaign: its suggested amounts, currency and default frequency, and on a
    fresh page the ``utm_*`` parameters of the link that brought the reader here."""
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
    else:
        form = DonationForm(formdata=formdata)
    form.amount_choice.choices = [SelectChoice(str(s.amount)) for s in campaign.suggested_amounts]
    form.amount_choice.choices.append(SelectChoice(OTHER, "Other"))
    return form
