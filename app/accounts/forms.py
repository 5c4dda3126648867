"""Account forms: they check the shape of input; the rules live in ``accounts.services``.

Every POST is a FlaskForm, buttons included (sign out, cancel, delete), so every one carries its
CSRF token.
"""

from __future__ import annotations

from functools import cache

from babel import Locale
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError

from app.accounts.passwords import MAX_LENGTH

EMAIL_MESSAGE = "Enter an email address like name@example.com."


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def email_field(label: str = "Email address") -> EmailField:
    return EmailField(label, filters=[_strip], validators=[
        DataRequired("Enter your email address."),
        Length(max=254, message="An email address has at most 254 characters."),
        Email(EMAIL_MESSAGE, check_deliverability=False),
    ])


def new_password_field(label: str = "Password") -> PasswordField:
    # The length and strength rules are the service's (PasswordPolicy), so its message is the
    # one the person sees; here only a bound against absurd input.
    return PasswordField(label, validators=[
        InputRequired("Choose a password."),
        Length(max=MAX_LENGTH, message=f"Use at most {MAX_LENGTH} characters."),
    ])


class SignUpForm(FlaskForm):
    name = StringField("Your name", validators=[
        DataRequired("Enter your name."), Length(max=200, message="Use at most 200 characters.")])
    email = email_field()
    password = new_password_field()


class SignInForm(FlaskForm):
    email = email_field()
    password = PasswordField("Password", validators=[
        InputRequired("Enter your password."), Length(max=MAX_LENGTH)])
    remember = BooleanField("Keep me signed in on this device")
    next = HiddenField()


class EmailOnlyForm(FlaskForm):
    """Ask for a sign-in link or a password reset."""

    email = email_field()


class FollowLinkForm(FlaskForm):
    """The button on the page a link opens: following happens on POST, so a mail scanner that
    fetches the link does not use it up."""

    remember = BooleanField("Keep me signed in on this device")


class ResetPasswordForm(FlaskForm):
    password = new_password_field("New password")
    remember = BooleanField("Keep me signed in on this device")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[Length(max=MAX_LENGTH)])
    new_password = new_password_field("New password")


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[
        DataRequired("Enter your name."), Length(max=200, message="Use at most 200 characters.")])
    address_line1 = StringField("Address", validators=[Length(max=200)])
    address_line2 = StringField("Address line 2 (optional)", validators=[Length(max=200)])
    city = StringField("Town or city", validators=[Length(max=100)])
    region = StringField("State, province or region", validators=[Length(max=100)])
    postal_code = StringField("Postal code", validators=[
        Length(max=20, message="A postal code has at most 20 characters.")])
    country = SelectField("Country", validators=[Optional()], validate_choice=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = [("", "Choose a country"), *countries()]


@cache
def countries() -> tuple[tuple[str, str], ...]:
    """ISO 3166 countries and territories by English name, from Babel's CLDR data."""
    territories = Locale("en").territories
    return tuple(sorted(((code, name) for code, name in territories.items()
                         if len(code) == 2 and code.isalpha() and code not in ("ZZ", "EU",
                                                                                "EZ", "UN")),
                        key=lambda item: item[1]))


class EmailChangeForm(FlaskForm):
    new_email = email_field("New email address")
    password = PasswordField("Your password", validators=[Length(max=MAX_LENGTH)])


class ChangeAmountForm(FlaskForm):
    amount = StringField("New amount", validators=[
        DataRequired("Enter an amount."), Length(max=20, message="Enter an amount.")])


class CancelPlanForm(FlaskForm):
    reason = TextAreaField("Why are you cancelling? (optional)", validators=[
        Length(max=500, message="Keep the reason under 500 characters.")])


class RestartPlanForm(FlaskForm):
    submission_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class ButtonForm(FlaskForm):
    """A bare button (sign out, update the card, download my data): only its CSRF token."""


class DeleteAccountForm(FlaskForm):
    confirm_email = EmailField("Type your email address to confirm", filters=[_strip], validators=[
        DataRequired("Type your email address to confirm."), Length(max=254)])

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._email = email

    def validate_confirm_email(self, field):
        if field.data.strip().lower() != self._email:
            raise ValidationError("That is not the email address of this account.")
