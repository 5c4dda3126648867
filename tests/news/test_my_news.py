"""My news: a signed-in supporter's categories, follow buttons with and without JavaScript."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.news.models import SubscriberStatus
from app.news.services import followed_category_ids
from tests.support.flow import hidden_value
from tests.support.news import confirmed_subscriber, sign_in, verified_supporter


@pytest.fixture
def reader(client, stories):
    supporter = verified_supporter("noa@example.org")
    sign_in(client, supporter)
    return supporter


def button(html: str, slug: str) -> str:
    match = re.search(rf'<li id="category-{slug}">(.*?)</li>', html, re.S)
    assert match, slug
    return match.group(1)


def pressed(html: str, slug: str) -> bool:
    value = re.search(r'aria-pressed="(true|false)"', button(html, slug)).group(1)
    return value == "true"


def follow(client, slug: str, value: str = "1", json: bool = False, token: str | None = None):
    if token is None:
        token = hidden_value(client.get("/news/my").get_data(as_text=True), "csrf_token")
    headers = {"Accept": "application/json"} if json else {}
    return client.post(f"/news/follow/{slug}", data={"csrf_token": token, "follow": value},
                       headers=headers)


def slugs(supporter) -> set[str]:
    from app.news.models import Category

    return {db.session.get(Category, i).slug for i in followed_category_ids(supporter.id)}


def test_my_news_needs_sign_in(client, stories):
    response = client.get("/news/my")
    assert response.status_code == 302
    assert "/signin" in response.headers["Location"]
    follow_attempt = client.post("/news/follow/syria", data={"follow": "1"})
    assert follow_attempt.status_code in (302, 400)  # never a follow without a supporter


def test_the_page_lists_regions_and_topics_with_their_state(client, reader):
    html = client.get("/news/my").get_data(as_text=True)
    assert "<h3>Regions</h3>" in html and "<h3>Topics</h3>" in html
    assert html.index("Gaza and the Palestinian Territories") < html.index("Security")
    assert not pressed(html, "syria")
    assert "You follow nothing yet" in html
    assert "Truce talks resume in Cairo" in html  # the latest from everywhere meanwhile
    assert 'src="/static/js/news.js"' in html


def test_follow_and_unfollow_without_javascript(client, reader):
    response = follow(client, "syria")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/news/my#category-syria")
    html = client.get("/news/my").get_data(as_text=True)
    assert pressed(html, "syria")
    assert 'name="follow" value="0"' in button(html, "syria")  # the next press unfollows
    assert "You follow nothing yet" not in html
    assert "Displaced families in north-west Syria" in html
    assert "Tehran caps the price of bread" not in html
    assert slugs(reader) == {"syria"}
    follow(client, "syria", "0")
    assert slugs(reader) == set()
    assert not pressed(client.get("/news/my").get_data(as_text=True), "syria")


def test_follow_with_javascript_answers_json(client, reader):
    response = follow(client, "iran", json=True)
    assert response.status_code == 200
    data = response.get_json()
    assert data["following"] is True and data["category"] == "iran"
    assert data["message"] == "You follow Iran."
    assert "Tehran caps the price of bread" in data["articles_html"]
    assert "Truce talks resume" not in data["articles_html"]
    off = follow(client, "iran", "0", json=True).get_json()
    assert off["following"] is False and off["message"] == "You no longer follow Iran."
    assert "You follow nothing yet" in off["articles_html"]


def test_a_double_click_ends_in_the_state_meant(client, reader):
    token = hidden_value(client.get("/news/my").get_data(as_text=True), "csrf_token")
    assert follow(client, "egypt", token=token).status_code == 303
    assert follow(client, "egypt", token=token).status_code == 303
    assert slugs(reader) == {"egypt"}
    follow(client, "egypt", "0", token=token)
    follow(client, "egypt", "0", token=token)
    assert slugs(reader) == set()


def test_bad_follow_requests(client, reader):
    assert follow(client, "atlantis").status_code == 404
    assert follow(client, "syria", "maybe").status_code == 400
    no_token = client.post("/news/follow/syria", data={"follow": "1"})
    assert no_token.status_code == 400
    assert "security token" in no_token.get_data(as_text=True)
    assert slugs(reader) == set()


def test_follows_are_each_supporters_own(app, client, reader):
    follow(client, "lebanon")
    other = app.test_client()
    sign_in(other, verified_supporter("omar@example.org"))
    # Its own app context: the test's one would carry the first reader in ``g`` (Flask-Login
    # keeps the loaded user there, and requests reuse an app context that is already pushed).
    with app.app_context():
        html = other.get("/news/my").get_data(as_text=True)
    assert not pressed(html, "lebanon")
    assert pressed(client.get("/news/my").get_data(as_text=True), "lebanon")


def test_the_daily_email_box(client, reader):
    html = client.get("/news/my").get_data(as_text=True)
    assert "Send me the daily email" in html
    assert 'value="noa@example.org"' in html and 'name="source" type="hidden" value="my-news"' \
        in html
    subscriber = confirmed_subscriber("noa@example.org", reader)
    html = client.get("/news/my").get_data(as_text=True)
    assert "The daily news email goes to <strong>noa@example.org</strong>" in html
    link = re.search(r'href="(/news/unsubscribe/[^"]+)"', html).group(1)
    assert client.get(link).status_code == 200
    subscriber.status = SubscriberStatus.PENDING
    db.session.commit()
    html = client.get("/news/my").get_data(as_text=True)
    assert "We have sent a confirmation link to <strong>noa@example.org</strong>" in html


def test_a_subscription_linked_to_the_account_is_found_after_an_email_change(client, reader):
    confirmed_subscriber("noa.old@example.org", reader)
    html = client.get("/news/my").get_data(as_text=True)
    assert "The daily news email goes to <strong>noa.old@example.org</strong>" in html
