"""The 400 page of a form refused for its CSRF token says what did not happen for the form that
was sent: a gift or a card took no money; a staff, account or news form changed nothing."""

from __future__ import annotations

import pytest

from tests.factories import make_campaign

EXPIRED = "This form has expired or was sent without its security token."
CHARGED = "Nothing was charged."
NOT_SAVED = "The change was not saved."


@pytest.mark.parametrize(("path", "says", "never"), [
    ("/campaigns/csrf-appeal/give", CHARGED, NOT_SAVED),
    ("/sandbox/checkout/cs_made_up", CHARGED, NOT_SAVED),
    ("/staff/campaigns/csrf-appeal/publish", NOT_SAVED, CHARGED),
    ("/staff/roles/1/revoke", NOT_SAVED, CHARGED),
    ("/staff/finance/offline/new", NOT_SAVED, CHARGED),
    ("/account/profile", NOT_SAVED, CHARGED),
    ("/news/subscribe", NOT_SAVED, CHARGED),
])
@pytest.mark.parametrize("token", [None, "stale-or-forged"])
def test_a_refused_form_says_what_was_not_done(app, client, path, says, never, token):
    make_campaign("csrf-appeal")
    data = {"amount_choice": "2500"} if token is None else {"csrf_token": token}
    response = client.post(path, data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400, (path, response.status_code, html[:500])
    assert EXPIRED in html and says in html, html
    assert never not in html
    assert "Go back, reload the page and submit it again." in html
