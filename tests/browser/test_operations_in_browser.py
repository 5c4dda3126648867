"""The operations inbox in a real browser on a phone: finance staff see a webhook event that
failed, with its error, and retry it with one tap; the gift it pays is recorded."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.db import utcnow
from app.extensions import db
from tests.support.browser import laid_out_width, screenshot, staff_sign_in_link
from tests.support.browser import sign_in_with_link as sign_in

pytestmark = pytest.mark.browser


def failed_checkout_event(live_server, slug: str) -> tuple[int, str]:
    """A started gift and its paid-checkout event, stored as a webhook stores it but failed
    when applied (the database went away, say). Returns the gift's id and the event's id."""
    from app.campaigns.services import campaign_by_slug
    from app.giving.models import Frequency
    from app.giving.services import GivingRules, start_gift
    from app.payments.models import ProviderEvent
    from app.payments.providers import current_provider
    from app.payments.sandbox import SandboxSession, card_of
    from tests.factories import gift_request

    with live_server.app.app_context():
        gift = start_gift(campaign_by_slug(slug), gift_request(amount=4200), now=utcnow(),
                          rules=GivingRules.from_config(live_server.app.config))
        db.session.commit()
        session = SandboxSession(
            id=f"cs_sbx_{gift.public_id}", reference=gift.public_id, amount=gift.total,
            currency="USD", frequency=Frequency.ONE_TIME, description="gift",
            email="noa@example.org", success_url=live_server.url, cancel_url=live_server.url,
            metadata={"gift": gift.public_id})
        [event] = current_provider().completion_events(
            session, name="Noa Levi", now=utcnow().timestamp(), card=card_of("4242424242424242"))
        db.session.add(ProviderEvent(
            provider="sandbox", event_id=event["id"], type=event["type"],
            payload=json.dumps(event), received_at=utcnow() - timedelta(hours=2), attempts=2,
            last_error="OperationalError: server closed the connection unexpectedly"))
        db.session.commit()
        return gift.id, event["id"]


def test_the_inbox_on_a_phone_retries_a_failed_event(page, live_server):
    from app.giving.models import Gift, GiftStatus

    slug = live_server.create_campaign()
    gift_id, event_id = failed_checkout_event(live_server, slug)
    sign_in(page, staff_sign_in_link(live_server, "finance"))

    page.goto("/staff/")
    page.locator("#operations-heading + p a, [data-operations] a").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Operations")
    item = page.locator(f'[data-list="failed-events"] [data-event="{event_id}"]')
    expect(item).to_contain_text("OperationalError: server closed the connection")
    expect(item).to_contain_text("2 attempts")
    assert laid_out_width(page) <= 390
    button = item.get_by_role("button", name="Retry")
    box = button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    screenshot(page, "operations-inbox-phone")

    button.click()
    expect(page.get_by_text("Event retried: applied.")).to_be_visible()
    expect(page.locator(f'[data-event="{event_id}"]')).to_have_count(0)
    assert laid_out_width(page) <= 390
    with live_server.app.app_context():
        assert db.session.get(Gift, gift_id).status is GiftStatus.PAID


@pytest.mark.postgresql_too("what is left to refund: the gift less the sum refunded")
def test_finance_refunds_part_of_a_gift_on_a_phone(page, live_server):
    from app.campaigns.services import campaign_by_slug
    from tests.factories import paid_gift

    slug = live_server.create_campaign()
    with live_server.app.app_context():
        gift, _ = paid_gift(campaign_by_slug(slug), amount=5000, email="refund@example.org")
        reference = gift.public_id
    sign_in(page, staff_sign_in_link(live_server, "finance"))

    page.goto("/staff/operations/")
    page.get_by_label("Gift number or reference").fill(reference)
    page.get_by_role("button", name="Find the gift").click()
    expect(page.locator("[data-left]")).to_have_text("$50.00")
    page.get_by_role("button", name="Refund", exact=True).click()  # no reason given
    expect(page.locator("#reason-error")).to_have_text("Say why the gift is refunded.")
    assert laid_out_width(page) <= 390

    page.get_by_label("Amount to refund").fill("20")
    page.get_by_label("Reason").fill("Gave twice by mistake")
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="asked of the payment provider")
           ).to_be_visible()
    # The sandbox's refund event came after the request's commit and updated the ledger.
    expect(page.locator("[data-status]")).to_have_text("Partially refunded")
    expect(page.locator("[data-left]")).to_have_text("$30.00")
    assert laid_out_width(page) <= 390
    screenshot(page, "operations-refund-phone")
