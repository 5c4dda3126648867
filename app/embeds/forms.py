"""The boxes' forms. Posted from a cross-site frame, where the session cookie may not be sent,
they carry a signed form token (``EmbedSigner.form_token``) instead of the session's CSRF
token; the view checks it."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import AnyOf

from app.news.forms import SubscribeForm


class EmbedSubscribeForm(SubscribeForm):
    class Meta:
        csrf = False

    source = None  # the box is the source: /embed/news/subscribe
    form_token = HiddenField()
    page = HiddenField()


class EmbedFollowForm(FlaskForm):
    """A category button of the follow box: "1" to follow, "0" to stop (the wanted state)."""

    class Meta:
        csrf = False

    follow = HiddenField(validators=[AnyOf(["0", "1"])])
    form_token = HiddenField()
    reader = HiddenField()
    page = HiddenField()
