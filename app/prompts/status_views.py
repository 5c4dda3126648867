"""The status cookie: what our own pages learn of a reader (the thank-you page: a donor; the
daily email's confirmation: a subscriber), kept on our site as the prompts' status token (no
address, no id), for ``/embed/prompts/status`` and same-site decisions (``app.prompts.views``).
Here, apart from those views, so that the pages that set it need not import the embeds."""

from __future__ import annotations

from flask import current_app, request

from app.config import signing_keys
from app.prompts.decide import DonorStatus
from app.prompts.services import STATUS_TOKEN_MAX_AGE, Known, StatusSigner

STATUS_COOKIE = "newsfund_status"


def status_signer() -> StatusSigner:
    return StatusSigner(signing_keys(current_app.config))


def remember_status(response, *, donor: DonorStatus | None = None,
                    subscriber: bool | None = None) -> None:
    """Keep what this page learnt in the status cookie, with what it held before."""
    signer = status_signer()
    before = signer.read(request.cookies.get(STATUS_COOKIE)) or Known()
    known = Known(donor=donor or before.donor,
                  subscriber=before.subscriber if subscriber is None else subscriber)
    response.set_cookie(STATUS_COOKIE, signer.token(known),
                        max_age=int(STATUS_TOKEN_MAX_AGE.total_seconds()), httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
