"""The gifts this browser session started: what lets the campaign page fill the donation form
again from a gift (``giving.services.gift_to_refill``) for the donor who made it, and for no
one else.

A gift's public id travels in links (the checkout page's "Cancel and go back", the thank-you
page's "make it monthly"), and a link can be forwarded, logged or found in a shared browser's
history. The session cookie is signed and stays in the browser that submitted the form, so the
form comes back filled only where the id is also among these.
"""

from __future__ import annotations

from flask import session

#: The session key; ``campaigns.pages`` lets a visitor who has it keep the shared page.
STARTED_KEY = "started_gifts"
#: How many gift ids the session keeps, newest last (a cookie holds about 4 KB).
KEEP = 5


def remember_started_gift(public_id: str) -> None:
    """Note that this browser session started the gift ``public_id``."""
    kept = [g for g in started_gifts() if g != public_id][-(KEEP - 1):]
    session[STARTED_KEY] = [*kept, public_id]


def started_gifts() -> tuple[str, ...]:
    """The public ids of the gifts this browser session started, oldest first."""
    value = session.get(STARTED_KEY)
    if not isinstance(value, list):
        return ()
    return tuple(g for g in value if isinstance(g, str))
