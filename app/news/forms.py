"""Forms of the news pages: they check the shape of the input; the rules live in services."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField
from wtforms.validators import AnyOf, DataRequired, Email, Length

# Where a subscription can start; stored with the consent as its source.
SOURCES = {"subscribe": "/news/subscribe", "my-news": "/news/my"}


class SubscribeForm(FlaskForm):
    email = EmailField(
        "Email address",
        filters=[lambda value: value.strip() if value else value],
        validators=[
            DataRequired("Enter your email address."),
            Length(max=254, message="Use at most 254 characters."),
            # ASCII local parts only: every mail server on the way must be able to deliver it.
            Email("Enter an email address like name@example.com.", check_deliverability=False,
                  allow_smtputf8=False),
        ])
    # The label the error summary names; the page shows the consent text with its links instead.
    consent = BooleanField("Terms and privacy", validators=[DataRequired(
        "To receive the email, agree to the terms of use and the privacy policy.")])
    source = HiddenField(default="subscribe", validators=[AnyOf(list(SOURCES))])


class FollowForm(FlaskForm):
    """One button per category: "1" to follow, "0" to stop. The wanted state, not a toggle, so
    a double click or a resent form ends where the reader meant."""

    follow = HiddenField(validators=[AnyOf(["0", "1"])])
