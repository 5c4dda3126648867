"""Staff forms: they check the shape of input; the rules live in the services. Every POST is a
FlaskForm (buttons too), so each carries its CSRF token."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
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
    Optional,
    Regexp,
    ValidationError,
)

from app.campaigns.models import Campaign, CampaignKind
from app.campaigns.services import Amount
from app.core import within_years
from app.giving.models import Frequency
from app.money import AmountError, parse_amount, to_decimal
from app.staff.models import Role

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ButtonForm(FlaskForm):
    """A bare button (publish, pause, end, revoke...): only its CSRF token."""


class CampaignForm(FlaskForm):
    title = StringField("Title", filters=[_strip], validators=[
        DataRequired("Give the campaign a title."), Length(max=200)])
    slug = StringField("Web address", filters=[_strip], validators=[
        DataRequired("Choose the campaign's web address."), Length(max=80)],
        description="Lowercase letters, digits and hyphens: /campaigns/<this>.")
    kind = SelectField("Kind", choices=[
        SelectChoice(k.value, k.value.replace("_", " ").capitalize()) for k in CampaignKind])
    summary = StringField("Summary", filters=[_strip], validators=[Length(max=300)])
    appeal_markdown = TextAreaField("Appeal letter (Markdown)", validators=[Length(max=20000)])
    signatory_name = StringField("Signed by", filters=[_strip], validators=[
        DataRequired("Say who signs the letter."), Length(max=200)])
    signatory_title = StringField("Their title", filters=[_strip], validators=[Length(max=200)])
    thank_you_message = TextAreaField("Thank-you message", validators=[Length(max=2000)])
    starts_at = DateTimeLocalField("Starts", format=LOCAL_FORMAT, validators=[
        InputRequired("Enter when the campaign starts."), within_years])
    ends_at = DateTimeLocalField("Ends", format=LOCAL_FORMAT, validators=[
        InputRequired("Enter when the campaign ends."), within_years])
    currency = SelectField("Currency")
    goal = StringField("Goal", filters=[_strip], validators=[DataRequired("Enter a goal.")])
    default_frequency = SelectField("Preselected frequency",
                                    choices=[SelectChoice(f.value, f.label) for f in Frequency])
    suggested_amounts = TextAreaField(
        "Suggested amounts", validators=[DataRequired("Suggest at least one amount.")],
        description="One a line: the amount, then optionally | and what it pays for, e.g. "
                    "“50 | a day of translation”.")
    match_amount = StringField("Matching pool (optional)", filters=[_strip])
    match_sponsor = StringField("Matched by", filters=[_strip], validators=[Length(max=200)])
    match_ends_at = DateTimeLocalField("Matching ends (optional)", format=LOCAL_FORMAT,
                                       validators=[Optional(), within_years])
    fund_code = StringField("Fund code (optional)", filters=[_strip], validators=[
        Length(max=40)])

    def __init__(self, *args, currencies: tuple[str, ...], zone: ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.currency.choices = [SelectChoice(c, c) for c in currencies]

    def fill(self, campaign: Campaign) -> None:
        """Show an existing campaign (GET), in the organisation's zone."""
        for name in ("title", "slug", "summary", "appeal_markdown", "signatory_name",
                     "signatory_title", "thank_you_message", "match_sponsor", "fund_code"):
            getattr(self, name).data = getattr(campaign, name) or ""
        self.kind.data = campaign.kind.value
        self.currency.data = campaign.currency
        self.default_frequency.data = campaign.default_frequency.value
        for name in ("starts_at", "ends_at", "match_ends_at"):
            value = getattr(campaign, name)
            getattr(self, name).data = (value.astimezone(self.zone).replace(tzinfo=None)
                                        if value else None)
        self.goal.data = _plain(campaign.goal_amount, campaign.currency)
        self.match_amount.data = (_plain(campaign.match_amount, campaign.currency)
                                  if campaign.match_amount else "")
        self.suggested_amounts.data = "\n".join(
            _plain(s.amount, campaign.currency) + (f" | {s.impact}" if s.impact else "")
            for s in campaign.suggested_amounts)

    def _utc(self, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=self.zone).astimezone(UTC) if value else None

    def _currency(self) -> str | None:
        """The currency chosen, if it is one offered (else the currency's own error stands)."""
        chosen = self.currency.data
        return chosen if any(chosen == c.value for c in self.currency.choices) else None

    def _money(self, field, required: bool) -> int | None:
        if (not field.data and not required) or self._currency() is None:
            return None
        try:
            return parse_amount(field.data, self.currency.data)
        except AmountError as exc:
            raise ValidationError(str(exc)) from None

    def validate_goal(self, field):
        self._money(field, True)

    def validate_match_amount(self, field):
        self._money(field, False)

    def validate_suggested_amounts(self, field):
        self.amounts()

    def amounts(self) -> list[Amount]:
        found = []
        if self._currency() is None:
            return found
        for line in (self.suggested_amounts.data or "").splitlines():
            if not line.strip():
                continue
            value, _, impact = line.partition("|")
            try:
                found.append(Amount(parse_amount(value, self.currency.data),
                                    impact.strip()[:200]))
            except AmountError as exc:
                raise ValidationError(f"“{line.strip()}”: {exc}") from None
        return found

    def fields(self) -> dict:
        """The campaign's fields, as the services take them."""
        return {
            "title": self.title.data, "slug": self.slug.data.lower(),
            "kind": CampaignKind(self.kind.data), "summary": self.summary.data or "",
            "appeal_markdown": self.appeal_markdown.data or "",
            "signatory_name": self.signatory_name.data,
            "signatory_title": self.signatory_title.data or "",
            "thank_you_message": self.thank_you_message.data or "",
            "starts_at": self._utc(self.starts_at.data), "ends_at": self._utc(self.ends_at.data),
            "currency": self.currency.data,
            "goal_amount": parse_amount(self.goal.data, self.currency.data),
            "default_frequency": Frequency(self.default_frequency.data),
            "match_amount": (parse_amount(self.match_amount.data, self.currency.data)
                             if self.match_amount.data else None),
            "match_sponsor": self.match_sponsor.data or None,
            "match_ends_at": self._utc(self.match_ends_at.data),
            "fund_code": self.fund_code.data or None,
        }


def _plain(minor: int, currency: str) -> str:
    return f"{to_decimal(minor, currency):f}"


class OccasionDraftForm(FlaskForm):
    """One click on the calendar: the occasion's key is the whole input."""

    occasion = StringField(validators=[DataRequired(), Length(max=80)])


class RoleForm(FlaskForm):
    email = EmailField("Email address", filters=[_strip], validators=[
        DataRequired("Enter the person's email address."),
        Email("Enter an email address like name@example.com.", check_deliverability=False),
        Length(max=254)])
    role = SelectField("Role", choices=[SelectChoice(r.value, r.label) for r in Role])


class AuditFilterForm(FlaskForm):
    """The audit log's filters (a GET form: nothing changes, so no token)."""

    class Meta:
        csrf = False

    actor = StringField("Who", filters=[_strip], validators=[Length(max=254)])
    action = StringField("Action", filters=[_strip], validators=[Length(max=80)])
    target = StringField("Target", filters=[_strip], validators=[Length(max=120)],
                         description="A type, or type:id, e.g. campaign:4")
    since = DateField("From", validators=[Optional(), within_years])
    until = DateField("To", validators=[Optional(), within_years])


class GiftLookupForm(FlaskForm):
    """Find an online gift to refund (a GET form: nothing changes, so no token)."""

    class Meta:
        csrf = False

    gift = StringField("Gift number or reference", filters=[_strip], validators=[
        DataRequired("Enter the gift's number or its reference."), Length(max=64)],
        description="The number in the exports' gift_id column, or the reference on the "
                    "donor's receipt and thank-you page.")


class RefundForm(FlaskForm):
    """A staff refund of an online gift. ``key`` is made when the form is shown: sent twice,
    the same refund is asked of the provider, once."""

    amount = StringField("Amount to refund", filters=[_strip], validators=[Length(max=20)],
                         description="Leave empty to refund all that is not refunded yet.")
    reason = TextAreaField("Reason", filters=[_strip], validators=[
        DataRequired("Say why the gift is refunded."), Length(max=500)])
    key = HiddenField(validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_-]{16,64}$")])

    def amount_minor(self, currency: str) -> int | None:
        """The amount in minor units (None: all that is left); a bad one is put beside the
        field and raises ValueError."""
        if not self.amount.data:
            return None
        try:
            return parse_amount(self.amount.data, currency)
        except AmountError as exc:
            self.amount.errors = [*self.amount.errors, str(exc)]
            raise ValueError(str(exc)) from None
