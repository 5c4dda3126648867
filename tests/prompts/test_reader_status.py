"""What the prompts know of a reader: donor status from the ledger and plans, the status token
(no address or id in it) set by the thank-you and confirmation pages and handed to the article
site, a signed-in reader's follows through the follow box's reader token."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from app.embeds.views import signer as embed_signer
from app.extensions import db
from app.giving.models import Frequency, PlanStatus, RecurringPlan
from app.news.models import Follow
from app.prompts.decide import DonorStatus
from app.prompts.models import Placement, Segment
from app.prompts.services import Known, StatusSigner, donor_status
from app.prompts.status_views import STATUS_COOKIE
from tests.factories import paid_gift
from tests.news.conftest import categories  # noqa: F401
from tests.prompts.conftest import ARTICLE, add_prompt
from tests.support.news import confirm_link, subscribe, verified_supporter

pytestmark = pytest.mark.usefixtures("newsroom")


def plan(gift, status=PlanStatus.ACTIVE, frequency=Frequency.MONTHLY) -> RecurringPlan:
    row = RecurringPlan(supporter_id=gift.supporter_id, campaign_id=gift.campaign_id,
                        frequency=frequency, amount=1000, currency="USD", provider="sandbox",
                        provider_subscription_id=f"sub_{gift.public_id}", status=status,
                        next_charge_at=gift.paid_at + timedelta(days=30))
    db.session.add(row)
    db.session.commit()
    return row


def test_donor_status_from_gifts_and_plans(app, campaign, now):
    never = verified_supporter("never@example.org")
    assert donor_status(never.id, now) is DonorStatus.NEVER
    recent, _ = paid_gift(campaign, "recent@example.org")
    assert donor_status(recent.supporter_id, now) is DonorStatus.RECENT
    lapsed, _ = paid_gift(campaign, "lapsed@example.org", when=now - timedelta(days=400))
    assert donor_status(lapsed.supporter_id, now) is DonorStatus.LAPSED
    monthly, _ = paid_gift(campaign, "monthly@example.org")
    plan(monthly)
    assert donor_status(monthly.supporter_id, now) is DonorStatus.MONTHLY
    yearly, _ = paid_gift(campaign, "yearly@example.org")
    plan(yearly, frequency=Frequency.ANNUAL)
    assert donor_status(yearly.supporter_id, now) is DonorStatus.RECENT
    ended, _ = paid_gift(campaign, "ended@example.org", when=now - timedelta(days=60))
    plan(ended, status=PlanStatus.CANCELED)
    assert donor_status(ended.supporter_id, now) is DonorStatus.ENDED


def test_the_status_token_holds_a_status_and_nothing_else(app):
    signer = StatusSigner(["key"])
    token = signer.token(Known(donor=DonorStatus.MONTHLY, subscriber=True))
    payload = token.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == [
        "monthly", 1]
    assert signer.read(token) == Known(donor=DonorStatus.MONTHLY, subscriber=True)
    assert StatusSigner(["another key"]).read(token) is None
    assert signer.read(token[:-2] + "xx") is None and signer.read(None) is None


def test_a_gift_through_a_prompt_leads_back_to_the_article_with_the_status(client, campaign):
    thanks_prompt = add_prompt(campaign, name="Thanks", placement=Placement.INLINE,
                               segment=Segment.MONTHLY_DONOR, priority=1,
                               headline_a="Thank you, member", headline_b="")
    ask = add_prompt(campaign, name="Ask", placement=Placement.INLINE, priority=50)
    gift, _ = paid_gift(campaign, "member@example.org", frequency=Frequency.MONTHLY,
                        utm={"utm_source": "embed-prompt", "utm_medium": "embed",
                             "utm_content": f"prompt-{ask.id}-a",
                             "utm_term": "news.example/2026/12/gaza-water"})
    page = client.get(f"/thanks/{gift.public_id}")
    assert page.status_code == 200
    cookie = client.get_cookie(STATUS_COOKIE, domain="donate.test")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    link = urlsplit(page.get_data(as_text=True).split('data-article-link')[0]
                    .rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&"))
    assert link.path == "/embed/prompts/status"
    assert parse_qs(link.query) == {"page": [ARTICLE]}
    back = client.get(f"{link.path}?{link.query}")
    assert back.status_code == 303
    article, _, fragment = back.headers["Location"].partition("#newsfund-status=")
    assert article == ARTICLE and fragment
    # On the article site (no cookie of ours): the token says "a monthly donor": thanked.
    client.delete_cookie(STATUS_COOKIE, domain="donate.test")
    shown = client.get("/embed/prompts/decision", query_string={
        "page": ARTICLE, "status": fragment}).get_json()["prompts"]
    assert [p["id"] for p in shown] == [thanks_prompt.id]
    anonymous = client.get("/embed/prompts/decision",
                           query_string={"page": ARTICLE}).get_json()["prompts"]
    assert [p["id"] for p in anonymous] == [ask.id]


def test_without_a_status_the_way_back_is_the_article_alone(client, campaign):
    gift, _ = paid_gift(campaign, "direct@example.org")
    assert "data-article-link" not in client.get(f"/thanks/{gift.public_id}").get_data(
        as_text=True)
    client.delete_cookie(STATUS_COOKIE, domain="donate.test")
    back = client.get("/embed/prompts/status", query_string={"page": ARTICLE})
    assert back.headers["Location"] == ARTICLE


def test_confirming_the_daily_email_marks_a_subscriber(client, campaign, outbox):
    subscriber_only = add_prompt(campaign, segment=Segment.SUBSCRIBER, headline_b="")
    assert subscribe(client, "new@example.org").status_code == 303
    [message] = outbox()
    assert client.get(confirm_link(message)).status_code == 200
    back = client.get("/embed/prompts/status", query_string={"page": ARTICLE})
    token = back.headers["Location"].partition("#newsfund-status=")[2]
    assert token
    shown = client.get("/embed/prompts/decision", query_string={
        "page": ARTICLE, "status": token}).get_json()["prompts"]
    assert [p["id"] for p in shown] == [subscriber_only.id]


def test_a_signed_in_readers_follows_through_the_follow_boxs_reader_token(
        app, client, campaign, categories):  # noqa: F811
    syria = categories["syria"]
    follower_prompt = add_prompt(campaign, segment=Segment.FOLLOWER, category_id=syria.id,
                                 headline_b="")
    reader = verified_supporter("follower@example.org")
    db.session.add(Follow(supporter_id=reader.id, category_id=syria.id))
    db.session.commit()
    token = embed_signer().reader_token(reader.id, reader.session_version)
    shown = client.get("/embed/prompts/decision", query_string={
        "page": ARTICLE, "reader": token}).get_json()["prompts"]
    assert [p["id"] for p in shown] == [follower_prompt.id]
    assert client.get("/embed/prompts/decision", query_string={
        "page": ARTICLE}).get_json()["prompts"] == []
