"""The daily news email: who gets which stories, the message itself, and "once per subscriber
per day" through reruns, crashes, transport failures and a concurrent run."""

from __future__ import annotations

import smtplib
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from app.extensions import db
from app.news.digest import DigestAborted, digest_date_for
from app.news.models import (
    Category,
    CategoryKind,
    Digest,
    DigestSend,
    Follow,
    NewsSubscriber,
    SendStatus,
    SubscriberStatus,
)
from tests.support.news import (
    DIGEST_NOW,
    Recorder,
    body,
    confirmed_subscriber,
    digest,
    path_of,
    verified_supporter,
)

DAY = date(2026, 11, 24)  # DIGEST_NOW in New York


def follow(supporter, *slugs: str) -> None:
    for slug in slugs:
        category = db.session.scalar(select(Category).where(Category.slug == slug))
        db.session.add(Follow(supporter_id=supporter.id, category_id=category.id))
    db.session.commit()


def sends(status: SendStatus | None = None) -> list[DigestSend]:
    query = select(DigestSend).order_by(DigestSend.subscriber_id)
    if status:
        query = query.where(DigestSend.status == status)
    return list(db.session.scalars(query))


def make_subscribers(n: int) -> list[NewsSubscriber]:
    return [confirmed_subscriber(f"reader{i}@example.org") for i in range(n)]


def test_readers_who_follow_nothing_get_the_top_stories(stories):
    confirmed_subscriber("anon@example.org")
    transport = Recorder()
    report = digest(transport=transport)
    assert report.sent == 1 and report.digest_date == DAY
    [message] = transport.messages()
    text = body(message)
    assert "The day's top stories." in text
    # The newsroom's picks come first (top-story in the feed), then the newest.
    assert text.index("Truce talks resume in Cairo") < text.index("Drone strike hits a militia")
    assert text.index("Drone strike hits a militia") < text.index("Aid convoys wait")
    assert text.count("Read it:") == 8  # NEWS_DIGEST_TOP_STORIES


def test_a_supporter_gets_the_stories_of_what_they_follow(stories):
    supporter = verified_supporter("noa@example.org")
    follow(supporter, "syria", "culture")
    confirmed_subscriber("noa@example.org", supporter)
    transport = Recorder()
    digest(transport=transport)
    text = body(transport.messages()[0])
    assert "From the regions and topics you follow: Culture, Syria." in text
    assert "In Aleppo's old souk, craftsmen return" in text  # Syria and culture
    assert "Displaced families in north-west Syria" in text
    assert "Kabul's girls' schools remain shut" in text  # culture
    assert "Tehran caps the price of bread" not in text  # neither
    # Only the last 24 hours: the Istanbul book fair (culture, 50 hours old) is left out.
    assert "Istanbul's book fair" not in text


def test_an_account_opened_after_subscribing_makes_the_email_personal(stories):
    confirmed_subscriber("noa@example.org")  # subscribed as a reader with no account
    supporter = verified_supporter("noa@example.org")  # then opened one, and follows Iran
    follow(supporter, "iran")
    transport = Recorder()
    digest(transport=transport)
    assert "From the regions and topics you follow: Iran." in body(transport.messages()[0])


def test_following_only_quiet_categories_falls_back_to_the_top_stories(stories):
    category = Category(slug="jordan", name="Jordan", kind=CategoryKind.REGION, position=99)
    db.session.add(category)
    supporter = verified_supporter("noa@example.org")
    db.session.flush()
    follow(supporter, "jordan")
    confirmed_subscriber("noa@example.org", supporter)
    transport = Recorder()
    digest(transport=transport)
    text = body(transport.messages()[0])
    assert "Nothing new since yesterday in the regions and topics you follow (Jordan)" in text
    assert "Truce talks resume in Cairo" in text


def test_only_confirmed_subscribers_get_it(stories):
    confirmed_subscriber("yes@example.org")
    for email, status in (("pending@example.org", SubscriberStatus.PENDING),
                          ("gone@example.org", SubscriberStatus.UNSUBSCRIBED)):
        row = confirmed_subscriber(email)
        row.status = status
    db.session.commit()
    transport = Recorder()
    digest(transport=transport)
    assert transport.recipients() == ["yes@example.org"]


def test_the_message_parses_and_carries_one_click_unsubscribe(app, client, stories):
    subscriber = confirmed_subscriber("noa@example.org")
    transport = Recorder()
    digest(transport=transport)
    [(recipient, raw)] = transport.sent
    assert recipient == "noa@example.org"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = message_from_bytes(raw, policy=policy.default)
    assert not message.defects and all(not part.defects for part in message.walk())
    assert message["From"] == app.config["NEWS_MAIL_FROM"]
    assert message["To"] == "noa@example.org"
    assert message["Subject"] == "Your daily news from Levant Wire: Tuesday 24 November 2026"
    assert message["Message-ID"] == (
        f"<news-digest.2026-11-24.{subscriber.id}@levantwire.example>")
    assert message.get_content_type() == "multipart/alternative"
    header = message["List-Unsubscribe"]
    assert header.startswith(f"<{app.config['PUBLIC_URL']}/news/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header[1:-1]
    # The same signed link in the text and the HTML part.
    assert f"Unsubscribe with one click:\n{url}\n" in body(message)
    assert f'<a href="{url}"' in body(message, "html")
    # A mail provider's one-click POST, with no cookie and no CSRF token.
    response = app.test_client().post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    db.session.refresh(subscriber)
    assert subscriber.status is SubscriberStatus.UNSUBSCRIBED


def test_non_ascii_text_survives_the_encoding(stories, categories):
    from app.news.models import Article

    article = db.session.scalar(select(Article).where(Article.title.like("Truce talks%")))
    article.title = "Truce talks – «Cairo» 谈判 = progress"
    article.summary = "Line with trailing space \n.leading dot " + "x" * 200
    db.session.commit()
    confirmed_subscriber("noa@example.org")
    transport = Recorder()
    digest(transport=transport)
    message = transport.messages()[0]
    assert "Truce talks – «Cairo» 谈判 = progress" in body(message)
    assert "Truce talks – «Cairo» 谈判 = progress" in body(message, "html")
    assert "x" * 50 in body(message)


def test_once_per_subscriber_per_day_even_when_run_twice(app, stories):
    make_subscribers(3)
    first = Recorder()
    report = digest(transport=first)
    assert (report.sent, report.sent_before) == (3, 0)
    second = Recorder()
    again = digest(transport=second, now=DIGEST_NOW + timedelta(hours=5))
    assert (again.sent, again.sent_before) == (0, 3)
    assert second.sent == []
    # The day's window was fixed by the first run.
    [day] = db.session.scalars(select(Digest)).all()
    assert day.window_end == DIGEST_NOW and day.finished_at == DIGEST_NOW
    assert [s.status for s in sends()] == [SendStatus.SENT] * 3


def test_the_next_day_is_a_new_email_and_an_empty_day_sends_nothing(stories):
    make_subscribers(2)
    digest(transport=Recorder())
    transport = Recorder()
    report = digest(transport=transport, now=DIGEST_NOW + timedelta(days=1))
    assert report.digest_date == DAY + timedelta(days=1)
    assert report.articles == 0 and transport.sent == []
    assert db.session.scalar(select(Digest).where(Digest.digest_date == report.digest_date)) \
        is None  # a later run that day can still find news


def test_the_day_is_the_organisations(app):
    assert digest_date_for(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), "America/New_York") \
        == date(2026, 11, 24)
    assert digest_date_for(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), "Asia/Jerusalem") \
        == date(2026, 11, 25)


def test_a_crash_halfway_then_a_rerun_sends_the_rest(stories):
    subscribers = make_subscribers(12)

    def power_cut(recipient, already):
        return RuntimeError("power cut") if already == 6 else None

    crashing = Recorder(fail=power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        digest(transport=crashing, batch_size=4)
    assert len(crashing.sent) == 6  # batch 1 (4) recorded; batch 2 handed 2, then the crash
    assert len(sends(SendStatus.SENT)) == 4
    assert len(sends(SendStatus.CLAIMED)) == 4  # batch 2: claimed, never recorded

    # Rerun at once: the rest goes; the crashed batch may belong to a run still going.
    rerun = Recorder()
    report = digest(transport=rerun, batch_size=4)
    assert report.sent == 4 and report.in_flight == 4
    assert not set(rerun.recipients()) & set(crashing.recipients())

    # Half an hour later the crashed batch is retried: all of it, since no one knows which of
    # its messages went. The two that did go carry the same Message-ID both times.
    later = Recorder()
    report = digest(transport=later, batch_size=4, now=DIGEST_NOW + timedelta(minutes=31))
    assert report.sent == 4 and report.in_flight == 0
    everyone = crashing.recipients() + rerun.recipients() + later.recipients()
    assert set(everyone) == {s.email for s in subscribers}
    twice = {r for r in everyone if everyone.count(r) == 2}
    assert twice == set(crashing.recipients()[4:6])
    ids = {}
    for transport in (crashing, later):
        for message in transport.messages():
            if message["To"] in twice:
                ids.setdefault(message["To"], set()).add(message["Message-ID"])
    assert len(ids) == 2 and all(len(v) == 1 for v in ids.values())
    assert {s.status for s in sends()} == {SendStatus.SENT}
    assert {s.attempts for s in sends() if s.subscriber_id in
            {x.id for x in subscribers if x.email in twice}} == {2}


def test_a_transport_failure_stops_the_run_and_the_next_run_retries(stories):
    make_subscribers(5)

    def disk_full(recipient, already):
        return OSError(28, "No space left on device") if already == 3 else None

    broken = Recorder(fail=disk_full)
    with pytest.raises(DigestAborted, match="No space left") as caught:
        digest(transport=broken, batch_size=10)
    assert (caught.value.report.sent, caught.value.report.failed) == (3, 2)
    failed = sends(SendStatus.FAILED)
    assert len(failed) == 2 and "No space left" in failed[0].last_error
    retry = Recorder()
    report = digest(transport=retry)
    assert report.sent == 2 and report.sent_before == 3
    assert sorted(retry.recipients()) == sorted(
        db.session.get(NewsSubscriber, s.subscriber_id).email for s in failed)
    assert {s.attempts for s in sends() if s.subscriber_id in {f.subscriber_id for f in failed}} \
        == {2}


def test_a_refused_address_does_not_stop_the_others_and_is_retried_a_few_times(stories):
    make_subscribers(3)

    def refuse(recipient, already):
        if recipient == "reader1@example.org":
            return smtplib.SMTPRecipientsRefused({recipient: (550, b"No such user")})
        return None

    for attempt in range(1, 5):
        transport = Recorder(fail=refuse)
        report = digest(transport=transport)
        if attempt == 1:
            assert (report.sent, report.failed) == (2, 1)
        elif attempt <= 3:
            assert (report.sent, report.failed) == (0, 1)
        else:  # three attempts a day, then it waits for tomorrow
            assert (report.sent, report.failed) == (0, 0)
    [failed] = sends(SendStatus.FAILED)
    assert failed.attempts == 3 and "No such user" in failed.last_error


def test_many_refusals_in_a_row_stop_the_run(stories):
    make_subscribers(6)
    refusing = Recorder(fail=lambda r, n: smtplib.SMTPDataError(451, b"Try later"))
    with pytest.raises(DigestAborted, match="refused 4 messages in a row"):
        digest(transport=refusing, batch_size=2, max_consecutive_refusals=4)
    assert len(sends(SendStatus.FAILED)) == 4
    assert sends(SendStatus.CLAIMED) == []


def test_a_message_claimed_by_another_run_is_left_to_it(stories):
    first, second = make_subscribers(2)
    # Another run claimed the first subscriber a minute ago and is sending it now.
    db.session.add(DigestSend(subscriber_id=first.id, digest_date=DAY,
                              status=SendStatus.CLAIMED, claimed_at=DIGEST_NOW))
    db.session.commit()
    transport = Recorder()
    report = digest(transport=transport, now=DIGEST_NOW + timedelta(minutes=1))
    assert transport.recipients() == [second.email]
    assert report.in_flight == 1
    day = db.session.scalar(select(Digest))
    assert day.finished_at is None


def test_contents_are_rendered_once_per_set_of_follows(stories):
    for i in range(4):
        supporter = verified_supporter(f"s{i}@example.org")
        follow(supporter, "syria" if i % 2 else "iran")
        confirmed_subscriber(supporter.email, supporter)
    make_subscribers(3)
    transport = Recorder()
    report = digest(transport=transport, batch_size=2)
    assert report.sent == 7 and report.editions == 3  # Syria, Iran, top stories
    links = [m["List-Unsubscribe"] for m in transport.messages()]
    assert len(set(links)) == 7  # each with its own signed link


def test_cli_reports_progress_and_the_summary(app, stories):
    make_subscribers(5)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["news", "send-digest", "--now", DIGEST_NOW.isoformat(),
                                 "--batch", "2", "--progress-every", "2"])
    assert result.exit_code == 0, result.output
    assert "digest 2026-11-24: 22 stories from 2026-11-23 11:30 to 2026-11-24 11:30 UTC" \
        in result.output
    assert "  2 sent, 0 failed" in result.output and "  4 sent, 0 failed" in result.output
    assert "sent 5, failed 0, already sent earlier 0" in result.output
    again = runner.invoke(args=["news", "send-digest", "--now", DIGEST_NOW.isoformat()])
    assert "sent 0, failed 0, already sent earlier 5" in again.output


def test_cli_with_nothing_to_send_and_with_a_broken_transport(make_app, database_url, app,
                                                               stories, tmp_path):
    runner = app.test_cli_runner()
    quiet = runner.invoke(args=["news", "send-digest", "--now", "2030-01-01T08:00:00"])
    assert quiet.exit_code == 0
    assert "no stories published" in quiet.output and "nothing sent" in quiet.output
    make_subscribers(2)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox folder should be")
    broken = make_app(database_url, MAIL_OUTBOX_DIR=str(blocked))
    with broken.app_context():
        result = broken.test_cli_runner().invoke(
            args=["news", "send-digest", "--now", DIGEST_NOW.isoformat()])
    assert result.exit_code == 1
    assert "stopped: the mail transport failed" in result.output
    assert "0 sent, 2 failed; run again to send the rest" in result.output


def test_cli_writes_the_outbox(app, stories, outbox):
    make_subscribers(2)
    result = app.test_cli_runner().invoke(
        args=["news", "send-digest", "--now", DIGEST_NOW.isoformat()])
    assert result.exit_code == 0, result.output
    mails = outbox()
    assert sorted(m["To"] for m in mails) == ["reader0@example.org", "reader1@example.org"]
    assert all(m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in mails)
