"""``flask supporters import`` (issue 14): supporters and daily-email subscribers in our own
columns and in Ghost's member export, their consent and its evidence, reruns that change
nothing, bad files refused whole, and the live Stripe subscriptions they give by adopted as
plans (read through the SDK from the local Stripe-compatible server, tagged, never charged)."""

from __future__ import annotations

import copy
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.accounts.imports import run_supporter_import
from app.accounts.membership import has_perk, levels_from_config
from app.accounts.models import Supporter
from app.accounts.personal_data import erase_supporter, export_personal_data
from app.audit import Actor, AuditEntry
from app.campaigns.models import Campaign
from app.db import utcnow
from app.extensions import db
from app.giving.models import Frequency, PlanStatus, RecurringPlan
from app.mail import OutboundEmail
from app.news.models import Category, CategoryKind, Follow, NewsSubscriber, SubscriberStatus
from app.news.services import add_category
from app.payments.providers import current_provider
from app.staff.models import Role
from tests.support import stripe_objects as so
from tests.support.staff import csrf_token, make_person, sign_in_as
from tests.support.stripe import count, deliver, form, stripe_config

OWN_HEADER = ("email,name,note,labels,created_at,address_line1,city,postal_code,country,"
              "news_status,news_consent_version,news_opt_in_at,news_opt_in_source,"
              "news_confirmed_at,news_confirmation_source,followed_categories,comped_until\n")


def run(app, path, *args):
    result = app.test_cli_runner().invoke(args=["supporters", "import", str(path), *args])
    return result


def write(tmp_path, text: str | bytes, name="members.csv"):
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def state():
    """Everything an import writes, to compare before and after a rerun."""
    supporters = db.session.execute(select(
        Supporter.email, Supporter.name, Supporter.note, Supporter.labels, Supporter.created_at,
        Supporter.city, Supporter.country, Supporter.comped_until).order_by(Supporter.email)).all()
    subscribers = db.session.execute(select(
        NewsSubscriber.email, NewsSubscriber.status, NewsSubscriber.consent_version,
        NewsSubscriber.consented_at, NewsSubscriber.confirmed_at,
        NewsSubscriber.confirmation_source, NewsSubscriber.consent_file,
        NewsSubscriber.consent_line, NewsSubscriber.supporter_id)
        .order_by(NewsSubscriber.email)).all()
    follows = db.session.execute(select(Follow.supporter_id, Follow.category_id)
                                 .order_by(Follow.supporter_id, Follow.category_id)).all()
    plans = db.session.execute(select(
        RecurringPlan.provider_subscription_id, RecurringPlan.supporter_id,
        RecurringPlan.amount, RecurringPlan.status, RecurringPlan.next_charge_at,
        RecurringPlan.ends_at).order_by(RecurringPlan.id)).all()
    return supporters, subscribers, follows, plans


def supporter(email):
    return db.session.scalar(select(Supporter).where(Supporter.email == email))


def subscriber(email):
    return db.session.scalar(select(NewsSubscriber).where(NewsSubscriber.email == email))


# -- our own columns ----------------------------------------------------------------------------

def test_own_columns_import_then_a_rerun_changes_nothing(app, tmp_path):
    add_category("Syria", CategoryKind.REGION)
    add_category("Economy", CategoryKind.TOPIC)
    db.session.commit()
    path = write(tmp_path, OWN_HEADER
                 + "Noa@Example.org,Noa Levi,Met at the gala,\"donor, board\",2021-03-04T10:00:00Z,"
                   "1 Herzl St,Haifa,3303,il,subscribed,terms-v3,2021-03-04 09:00,footer form,"
                   "2021-03-05T08:00:00Z,double opt-in,syria;Economy,2030-06-30\n"
                 + "sam@example.org,Sam Haddad,,,2022-01-02,,,,,subscribed,,,,,,,\n"
                 + "lea@example.org,Lea,,,,,,,,unsubscribed,,,,,,,\n"
                 + "NOA@example.org,Noa again,,,,,,,,,,,,,,,\n")

    dry = run(app, path, "--dry-run")
    assert dry.exit_code == 1, dry.output  # a row was refused
    assert (tmp_path / "members.errors.csv").read_text(encoding="utf-8").splitlines()[1] == (
        "NOA@example.org,Noa again,,,,,,,,,,,,,,,,line 5: a duplicate: the same email as line 2")
    assert ("dry run, nothing written: 3 to create, 0 to update, 0 unchanged, 1 refused"
            in dry.output)
    assert "line 5: a duplicate: the same email as line 2" in dry.output
    assert count(Supporter) == count(NewsSubscriber) == count(AuditEntry) == 0

    first = run(app, path)
    assert "3 created, 0 updated, 0 unchanged, 1 refused" in first.output
    noa = supporter("noa@example.org")
    assert (noa.name, noa.note, noa.labels, noa.city, noa.postal_code, noa.country) == (
        "Noa Levi", "Met at the gala", "donor, board", "Haifa", "3303", "IL")
    assert noa.created_at == datetime(2021, 3, 4, 10, tzinfo=UTC)
    # "until 2030-06-30": to the end of that day in the organisation's zone (New York).
    assert noa.comped_until == datetime(2030, 7, 1, 4, tzinfo=UTC)
    assert {c.slug for c in db.session.scalars(select(Category).join(
        Follow, Follow.category_id == Category.id).where(Follow.supporter_id == noa.id))} == {
        "syria", "economy"}
    consent = subscriber("noa@example.org")
    assert (consent.status, consent.consent_version, consent.consent_source,
            consent.confirmation_source, consent.consent_file, consent.consent_line,
            consent.supporter_id) == (SubscriberStatus.CONFIRMED, "terms-v3", "footer form",
                                      "double opt-in", "members.csv", 2, noa.id)
    # A time without a zone is the organisation's (09:00 in New York in March: 14:00 UTC).
    assert consent.consented_at == datetime(2021, 3, 4, 14, tzinfo=UTC)
    assert consent.confirmed_at == datetime(2021, 3, 5, 8, tzinfo=UTC)
    # Subscribed, but with no evidence of a confirmation: asked, not confirmed.
    sam = subscriber("sam@example.org")
    assert (sam.status, sam.confirmed_at, sam.consent_line) == (SubscriberStatus.PENDING, None, 3)
    assert subscriber("lea@example.org").status is SubscriberStatus.UNSUBSCRIBED
    # Nothing is sent by default.
    assert count(OutboundEmail) == 0
    entry = db.session.scalar(select(AuditEntry))
    assert entry.action == "supporters.import"

    before = state()
    again = run(app, path)
    assert "0 created, 0 updated, 3 unchanged, 1 refused" in again.output
    assert state() == before


def test_consent_rules_against_what_is_here(app, tmp_path):
    """An address unsubscribed here stays so whatever the file says; one confirmed here and
    unsubscribed in the file stops; a pending one confirmed with evidence is confirmed."""
    now = utcnow()
    for email, status in (("gone@example.org", SubscriberStatus.UNSUBSCRIBED),
                          ("stays@example.org", SubscriberStatus.CONFIRMED),
                          ("asked@example.org", SubscriberStatus.PENDING)):
        db.session.add(NewsSubscriber(email=email, status=status, consent_version="v1",
                                      consented_at=now, consent_source="footer",
                                      confirmed_at=now if status == "confirmed" else None,
                                      unsubscribed_at=now if status == "unsubscribed" else None))
    db.session.commit()
    path = write(tmp_path, OWN_HEADER
                 + "gone@example.org,,,,,,,,,subscribed,v2,2020-01-01,x,2020-01-02,opt-in,,\n"
                 + "stays@example.org,,,,,,,,,unsubscribed,,,,,,,\n"
                 + "asked@example.org,,,,,,,,,subscribed,v2,2020-01-01,x,2020-01-02,opt-in,,\n")
    assert "3 created" in run(app, path).output  # the supporters; the consents were here
    assert subscriber("gone@example.org").status is SubscriberStatus.UNSUBSCRIBED
    stays = subscriber("stays@example.org")
    assert (stays.status, stays.consent_line) == (SubscriberStatus.UNSUBSCRIBED, 3)
    asked = subscriber("asked@example.org")
    assert (asked.status, asked.confirmation_source, asked.consent_file, asked.consent_line) == (
        SubscriberStatus.CONFIRMED, "opt-in", "members.csv", 4)
    assert "3 unchanged" in run(app, path).output


def test_the_opt_in_mail_goes_to_the_unconfirmed_only_and_once(app, tmp_path):
    path = write(tmp_path, "email,name,subscribed_to_emails,complimentary_plan\n"
                           "ghost1@example.org,One,true,false\n"
                           "ghost2@example.org,Two,false,false\n")
    run(app, path)
    assert count(OutboundEmail) == 0
    confirmed = write(tmp_path, OWN_HEADER + "done@example.org,,,,,,,,,subscribed,v2,"
                      "2020-01-01,x,2020-01-02,opt-in,,\n", name="own.csv")
    run(app, confirmed, "--send-opt-in")
    assert count(OutboundEmail) == 0  # confirmed: nothing to ask
    result = run(app, path, "--send-opt-in")
    assert "0 created, 1 updated, 1 unchanged, 0 refused" in result.output
    sent = db.session.scalars(select(OutboundEmail)).all()
    assert [m.recipient for m in sent] == ["ghost1@example.org"]
    assert "/news/confirm/" in sent[0].message and "http://donate.test/" in sent[0].message
    run(app, path, "--send-opt-in")
    assert count(OutboundEmail) == 1


# -- Ghost's export and Stripe --------------------------------------------------------------------

GHOST = ("id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,"
         "created_at,deleted_at,labels,tiers\n")


@pytest.fixture
def stripe_app(make_app, database_url, app, httpserver):
    stripe_app = make_app(database_url, **stripe_config(httpserver.url_for("/").rstrip("/")))
    with stripe_app.app_context():
        yield stripe_app


def live_subscription(sub_id, customer, *, amount=1500, interval="month", status="active",
                      created, period_end, cancel_at_period_end=False, metadata=None):
    sub = copy.deepcopy(so.subscription(sub_id=sub_id, amount=amount, gift=None,
                                        status=status, start_date=int(created.timestamp())))
    sub["customer"], sub["created"] = customer, int(created.timestamp())
    sub["cancel_at_period_end"] = cancel_at_period_end
    sub["metadata"] = metadata or {}
    item = sub["items"]["data"][0]
    item["current_period_end"] = int(period_end.timestamp())
    item["price"]["recurring"]["interval"] = interval
    return sub


def serve(httpserver, subscriptions_by_customer, customers_by_email=None):
    for customer, subs in subscriptions_by_customer.items():
        httpserver.expect_request("/v1/subscriptions", method="GET",
                                  query_string={"customer": customer, "status": "all",
                                                "limit": "100"}
                                  ).respond_with_json(so.stripe_list(subs, "/v1/subscriptions"))
        for sub in subs:
            httpserver.expect_request(f"/v1/subscriptions/{sub['id']}", method="GET"
                                      ).respond_with_json(sub)
            httpserver.expect_request(f"/v1/subscriptions/{sub['id']}", method="POST"
                                      ).respond_with_json(sub)
    for email, customers in (customers_by_email or {}).items():
        httpserver.expect_request("/v1/customers", method="GET",
                                  query_string={"email": email, "limit": "100"}
                                  ).respond_with_json(so.stripe_list(
                                      [{"id": c, "object": "customer", "email": email}
                                       for c in customers], "/v1/customers"))


def posts(httpserver):
    return [(request.path, form(request)) for request, _ in httpserver.log
            if request.method == "POST"]


def test_a_ghost_export_with_stripe_ids_becomes_plans_without_a_charge(stripe_app, httpserver,
                                                                       tmp_path):
    now = utcnow().replace(microsecond=0)
    paid_until = now + timedelta(days=12)
    newest = live_subscription("sub_new", "cus_noa", amount=1800, created=now - timedelta(60),
                               period_end=paid_until)
    older = live_subscription("sub_old", "cus_noa", amount=900, created=now - timedelta(400),
                              period_end=now + timedelta(3))
    ended = live_subscription("sub_gone", "cus_noa", status="canceled",
                              created=now - timedelta(10), period_end=now - timedelta(1))
    leaving = live_subscription("sub_leaving", "cus_ben", amount=12000, interval="year",
                                created=now - timedelta(300), period_end=paid_until,
                                cancel_at_period_end=True)
    serve(httpserver, {"cus_noa": [ended, newest, older], "cus_ben": [leaving]})
    path = write(tmp_path, GHOST
                 + "5f1,noa@example.org,Noa Levi,VIP,true,false,cus_noa,"
                   "2020-05-01T10:11:12.000Z,,\"founders, gala\",Supporter\n"
                 + "5f2,ben@example.org,Ben,,false,true,cus_ben,2021-01-01T00:00:00.000Z,,,\n"
                 + "5f3,free@example.org,Free Reader,,true,false,,2022-01-01T00:00:00.000Z,,,\n")

    assert "3 to create" in run(stripe_app, path, "--dry-run").output
    assert posts(httpserver) == [] and count(RecurringPlan) == 0  # Stripe read, not written

    result = run(stripe_app, path)
    assert "3 created, 0 updated, 0 unchanged, 0 refused" in result.output, result.output
    noa, ben = supporter("noa@example.org"), supporter("ben@example.org")
    plan = db.session.scalar(select(RecurringPlan).where(RecurringPlan.supporter_id == noa.id))
    # The customer's newest live subscription, as Stripe has it.
    assert (plan.provider, plan.provider_subscription_id, plan.provider_customer_id,
            plan.amount, plan.currency, plan.frequency, plan.status, plan.next_charge_at,
            plan.ends_at) == ("stripe", "sub_new", "cus_noa", 1800, "USD", Frequency.MONTHLY,
                              PlanStatus.ACTIVE, paid_until, None)
    campaign = db.session.get(Campaign, plan.campaign_id)
    assert campaign.has_ended(utcnow()) and not campaign.published
    assert (campaign.slug, campaign.title, campaign.imported_at is not None) == (
        "imported-plans", stripe_app.config["ORG_NAME"], True)
    leaving_plan = db.session.scalar(
        select(RecurringPlan).where(RecurringPlan.supporter_id == ben.id))
    assert (leaving_plan.frequency, leaving_plan.status, leaving_plan.ends_at) == (
        Frequency.ANNUAL, PlanStatus.ACTIVE, paid_until)
    assert count(RecurringPlan) == 2
    # Ghost's columns: the note, the labels, comped, and an unconfirmed subscription.
    assert (noa.note, noa.labels, noa.created_at) == (
        "VIP", "founders, gala", datetime(2020, 5, 1, 10, 11, 12, tzinfo=UTC))
    assert subscriber("noa@example.org").status is SubscriberStatus.PENDING
    assert subscriber("ben@example.org") is None
    assert ben.comped_until is not None and supporter("free@example.org").comped_until is None
    # Only the metadata was written back: no invoice, no charge, no price change.
    assert sorted(posts(httpserver)) == [
        ("/v1/subscriptions/sub_leaving", {"metadata[newsfund_plan]": str(leaving_plan.id)}),
        ("/v1/subscriptions/sub_new", {"metadata[newsfund_plan]": str(plan.id)})]

    # A rerun against Stripe as it now is (our tags on the subscriptions) changes nothing.
    httpserver.clear()
    newest["metadata"] = {"newsfund_plan": str(plan.id)}
    leaving["metadata"] = {"newsfund_plan": str(leaving_plan.id)}
    serve(httpserver, {"cus_noa": [ended, newest, older], "cus_ben": [leaving]})
    before = state()
    assert "0 created, 0 updated, 3 unchanged, 0 refused" in run(stripe_app, path).output
    assert state() == before and posts(httpserver) == []


def test_cancelled_but_paid_until_the_period_end_is_a_member_until_then(stripe_app, httpserver,
                                                                        tmp_path):
    now = utcnow().replace(microsecond=0)
    leaving = live_subscription("sub_leaving", "cus_ben", amount=12000, interval="year",
                                created=now - timedelta(300), period_end=now + timedelta(12),
                                cancel_at_period_end=True)
    serve(httpserver, {"cus_ben": [leaving]})
    comped_until = (now + timedelta(days=365)).date()
    path = write(tmp_path, OWN_HEADER.replace("\n", ",stripe_subscription_id\n")
                 + "ben@example.org,Ben,,,,,,,,,,,,,,,,sub_leaving\n"
                 + f"comp@example.org,Comp,,,,,,,,,,,,,,,{comped_until.isoformat()},\n")
    assert "2 created" in run(stripe_app, path).output
    levels = levels_from_config(stripe_app.config)
    ben = supporter("ben@example.org")
    # $120 a year reaches Sustainer (briefings) until the paid year ends, then nothing.
    assert has_perk(ben, "briefings", levels=levels, now=now)
    assert not has_perk(ben, "briefings", levels=levels, now=now + timedelta(days=13))
    assert not has_perk(ben, "supporter_letter", levels=levels, now=now + timedelta(days=13))
    # Comped: the lowest level (Friend) until the date, nothing above it.
    comp = supporter("comp@example.org")
    assert has_perk(comp, "supporter_letter", levels=levels, now=now)
    assert not has_perk(comp, "briefings", levels=levels, now=now)
    assert not has_perk(comp, "supporter_letter", levels=levels,
                        now=now + timedelta(days=367))


def test_matching_by_email_picks_the_customer_with_the_newest_subscription(
        stripe_app, httpserver, tmp_path):
    now = utcnow().replace(microsecond=0)
    serve(httpserver, {
        "cus_a": [live_subscription("sub_a", "cus_a", amount=700, created=now - timedelta(90),
                                    period_end=now + timedelta(5))],
        "cus_b": [live_subscription("sub_b", "cus_b", amount=2500, created=now - timedelta(20),
                                    period_end=now + timedelta(10))],
    }, customers_by_email={"noa@example.org": ["cus_a", "cus_b"]})
    path = write(tmp_path, "email,name\nNoa@example.org,Noa\n")
    assert run(stripe_app, path).exit_code == 0
    assert count(RecurringPlan) == 0  # not asked to look Stripe up by email
    result = run(stripe_app, path, "--match-stripe-by-email")
    assert "1 updated" in result.output, result.output
    plan = db.session.scalar(select(RecurringPlan))
    assert (plan.provider_subscription_id, plan.amount) == ("sub_b", 2500)


def test_a_subscription_refused_leaves_nothing_of_its_row(stripe_app, httpserver, tmp_path):
    now = utcnow().replace(microsecond=0)
    weekly = live_subscription("sub_weekly", "cus_w", interval="week",
                               created=now - timedelta(9), period_end=now + timedelta(3))
    coupon = live_subscription("sub_coupon", "cus_c", created=now - timedelta(9),
                               period_end=now + timedelta(3))
    coupon["discounts"] = ["di_test_1"]
    serve(httpserver, {"cus_w": [weekly], "cus_c": [coupon]})
    httpserver.expect_request("/v1/subscriptions/sub_missing", method="GET").respond_with_json(
        {"error": {"type": "invalid_request_error", "code": "resource_missing",
                   "message": "No such subscription: 'sub_missing'"}}, status=404)
    path = write(tmp_path, "email,stripe_customer_id,stripe_subscription_id\n"
                           "w@example.org,cus_w,sub_weekly\n"
                           "m@example.org,,sub_missing\n"
                           "x@example.org,cus_other,sub_weekly\n"
                           "c@example.org,cus_c,\n")
    result = run(stripe_app, path, "--errors", str(tmp_path / "errors.csv"))
    assert result.exit_code == 1
    assert "0 created, 0 updated, 0 unchanged, 4 refused" in result.output
    assert "line 2: subscription sub_weekly is not one monthly or yearly price" in result.output
    assert "line 3: Stripe has no subscription sub_missing in this account" in result.output
    assert "line 4: subscription sub_weekly belongs to customer cus_w, not cus_other" in (
        result.output)
    assert "line 5: subscription sub_coupon has a discount" in result.output
    assert count(Supporter) == count(RecurringPlan) == 0
    errors = (tmp_path / "errors.csv").read_text(encoding="utf-8").splitlines()
    assert errors[0] == "email,stripe_customer_id,stripe_subscription_id,error"
    assert errors[1].startswith("w@example.org,cus_w,sub_weekly,")


def test_without_stripe_a_row_naming_a_subscription_is_refused(app, tmp_path):
    path = write(tmp_path, "email,stripe_subscription_id\nnoa@example.org,sub_1\n")
    result = run(app, path)
    assert "1 refused" in result.output and "has no subscriptions to import" in result.output
    assert count(Supporter) == 0


# -- bad files ------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (b"", "The file is empty"),
    (b"email,name\n", "no rows to import"),
    (b"mail,name\nnoa@example.org,Noa\n", "missing column email"),
    (b"email,name,shoe_size\nnoa@example.org,Noa,42\n", "unknown column shoe_size"),
    (b"email,subscribed_to_emails,news_status\nnoa@example.org,true,subscribed\n",
     "read as Ghost's member export, it has the unknown column news_status"),
    ("email,name\nnoa@example.org,Noa\nlea@example.org,L\xe9a\n".encode("latin-1"),
     "Line 3 is not UTF-8 text"),
])
def test_a_bad_file_is_refused_whole(app, tmp_path, content, message):
    result = run(app, write(tmp_path, content))
    assert result.exit_code == 1
    assert message in result.output
    assert count(Supporter) == count(AuditEntry) == 0


def test_a_bom_is_read_and_formula_looking_cells_stay_text(app, tmp_path):
    path = write(tmp_path, "\ufeffemail,name,note\n"
                           "noa@example.org,'=HYPERLINK(\"http://x\"),=1+1\n")
    assert "1 created" in run(app, path).output
    noa = supporter("noa@example.org")
    # Our exports' apostrophe taken off again; nothing evaluated.
    assert (noa.name, noa.note) == ('=HYPERLINK("http://x")', "=1+1")


@pytest.mark.parametrize("row, reason", [
    ("not-an-email,x,,", "'not-an-email' is not an email address"),
    ("noa@example.org,x,yesterday,", "created_at 'yesterday' is not a date and time"),
    ("noa@example.org,x,,maybe", "news_status 'maybe' is not one of"),
])
def test_bad_rows_are_refused_with_their_line_and_reason(app, tmp_path, row, reason):
    path = write(tmp_path, "email,name,created_at,news_status\n" + row + "\n")
    result = run(app, path)
    assert "line 2: " in result.output and reason in result.output
    assert count(Supporter) == 0


def test_a_cancellation_at_stripe_after_the_import_keeps_the_end_in_line(stripe_app, httpserver,
                                                                         tmp_path):
    """Later ``customer.subscription.updated`` events: cancelled at the period's end, then
    resumed, in the donor's Stripe portal."""
    now = utcnow().replace(microsecond=0)
    paid_until = now + timedelta(days=20)
    sub = live_subscription("sub_noa", "cus_noa", created=now - timedelta(40),
                            period_end=paid_until)
    serve(httpserver, {"cus_noa": [sub]})
    run(stripe_app, write(tmp_path, "email,stripe_customer_id\nnoa@example.org,cus_noa\n"))
    plan = db.session.scalar(select(RecurringPlan))
    client = stripe_app.test_client()
    for n, (flag, expected) in enumerate(((True, paid_until), (False, None))):
        changed = {**copy.deepcopy(sub), "cancel_at_period_end": flag}
        assert deliver(client, so.event("customer.subscription.updated", changed,
                                        event_id=f"evt_update_{n}")).status_code == 200
        db.session.expire_all()
        assert (plan.status, plan.ends_at) == (PlanStatus.ACTIVE, expected)


def test_the_staff_pages_job_runs_the_same_import_with_its_switches(stripe_app, httpserver):
    """``run_supporter_import``, as ``app.imports``' background job calls it: the provider
    built from the settings, the switches from the upload's form; two rows for one address
    (any case) make one plan."""
    now = utcnow().replace(microsecond=0)
    serve(httpserver, {"cus_noa": [live_subscription(
        "sub_noa", "cus_noa", created=now - timedelta(5), period_end=now + timedelta(25))]})
    upload = io.BytesIO(b"email,subscribed_to_emails,stripe_customer_id\n"
                        b"noa@example.org,true,cus_noa\nNOA@EXAMPLE.ORG,true,cus_noa\n")
    report = run_supporter_import(
        upload, dry_run=False, actor=Actor(id=None, label="test"), config=stripe_app.config,
        options={"send_opt_in": True, "match_stripe_by_email": False},
        commit=db.session.commit, name="ghost.csv")
    assert report.summary() == "1 created, 0 updated, 0 unchanged, 1 refused"
    assert count(RecurringPlan) == 1
    assert [m.recipient for m in db.session.scalars(select(OutboundEmail))] == [
        "noa@example.org"]


def test_what_an_import_brings_is_in_the_personal_data_export_and_erased(app, tmp_path):
    path = write(tmp_path, OWN_HEADER + "noa@example.org,Noa,Met at the gala,board,,,,,,"
                 "subscribed,v3,2021-03-04,form,2021-03-05T08:00:00Z,double opt-in,,2030-01-01\n")
    run(app, path)
    noa = supporter("noa@example.org")
    data = export_personal_data(noa, now=utcnow())
    assert (data["account"]["note"], data["account"]["labels"]) == ("Met at the gala", "board")
    assert data["account"]["comped_until"] is not None
    consent = data["news"]["daily_email"][0]
    assert (consent["confirmation_source"], consent["imported_from"]) == (
        "double opt-in", "members.csv, line 2")
    erase_supporter(noa, current_provider(), now=utcnow())
    assert (noa.note, noa.labels) == (None, None)
    assert subscriber("noa@example.org") is None


# -- the staff pages ------------------------------------------------------------------------------

def test_admins_import_supporters_from_the_staff_pages(app, client):
    sign_in_as(client, make_person("admin@levantwire.example", roles=(Role.ADMIN,)))
    page = client.get("/staff/imports/supporters")
    assert page.status_code == 200 and "Send the daily email&#39;s opt-in mail" in page.text
    response = client.post("/staff/imports/supporters", data={
        "csrf_token": csrf_token(client), "option_send_opt_in": "y",
        "file": (io.BytesIO(GHOST.encode() + b"1,noa@example.org,Noa,,true,false,,,,,\n"
                            b"2,bad-address,X,,true,false,,,,,\n"), "members.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    run_page = response.headers["Location"]
    checked = client.get(run_page)
    assert "1 to create, 0 to update, 0 unchanged, 1 refused" in checked.text
    assert "&#39;bad-address&#39; is not an email address" in checked.text
    assert supporter("noa@example.org") is None and count(OutboundEmail) == 0

    client.post(f"{run_page}/confirm", data={"csrf_token": csrf_token(client)})
    assert "1 created, 0 updated, 0 unchanged, 1 refused" in client.get(run_page).text
    assert subscriber("noa@example.org").status is SubscriberStatus.PENDING
    # The switch chosen at the upload: the opt-in mail, to the unconfirmed address only.
    assert [m.recipient for m in db.session.scalars(select(OutboundEmail))] == [
        "noa@example.org"]
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "supporters.import")).one()
    assert entry.actor_label == "admin@levantwire.example"


def test_a_file_the_import_refuses_whole_says_why_on_its_page(app, client):
    """The upload's quick check lets Ghost's extra columns through; the dry run then refuses
    our own columns with an unknown one, and the page says so."""
    sign_in_as(client, make_person("admin@levantwire.example", roles=(Role.ADMIN,)))
    response = client.post("/staff/imports/supporters", data={
        "csrf_token": csrf_token(client),
        "file": (io.BytesIO(b"email,shoe_size\nnoa@example.org,42\n"), "members.csv")},
        content_type="multipart/form-data")
    page = client.get(response.headers["Location"])
    assert "unknown column shoe_size" in page.text
    assert supporter("noa@example.org") is None


def test_when_stripe_cannot_take_the_tag_the_import_stops_and_a_rerun_goes_on(
        stripe_app, httpserver, tmp_path):
    now = utcnow().replace(microsecond=0)
    sub = live_subscription("sub_noa", "cus_noa", created=now - timedelta(5),
                            period_end=now + timedelta(25))
    httpserver.expect_request("/v1/subscriptions", method="GET").respond_with_json(
        so.stripe_list([sub], "/v1/subscriptions"))
    httpserver.expect_request("/v1/subscriptions/sub_noa", method="POST").respond_with_json(
        {"error": {"type": "api_error", "message": "Something went wrong"}}, status=500)
    path = write(tmp_path, "email,stripe_customer_id\nnoa@example.org,cus_noa\n")
    result = run(stripe_app, path)
    assert result.exit_code == 1 and "Stripe could not tag subscription sub_noa" in (
        result.output)
    assert count(Supporter) == count(RecurringPlan) == 0  # the batch under way rolled back
    httpserver.clear()
    serve(httpserver, {"cus_noa": [sub]})
    assert "1 created" in run(stripe_app, path).output
    assert count(RecurringPlan) == 1


# -- batches --------------------------------------------------------------------------------------

MIXED = ("email,name,labels,created_at,news_status,news_confirmed_at,news_confirmation_source,"
         "followed_categories\n"
         "new1@example.org,New One,,,subscribed,,,syria\n"  # 2: created, pending, follows
         "old@example.org,Old Renamed,,,,,,\n"  # 3: updated
         "same@example.org,Same,a,,,,,\n"  # 4: unchanged
         "bad@example.org,Bad,,yesterday,,,,\n"  # 5: refused
         "Bad@example.org,Bad,,,,,,\n"  # 6: created: line 5 was refused, so no duplicate
         "NEW1@example.org,Again,,,,,,\n"  # 7: a duplicate of line 2
         "unsub@example.org,U,,,subscribed,2020-01-02,opt-in,\n"  # 8: created; stays unsubscribed
         "pend@example.org,,,,subscribed,2020-01-02,opt-in,\n"  # 9: confirmed: updated
         "x@example.org,X,,,,,,nowhere\n"  # 10: refused
         "same@example.org,Same,,,,,,\n")  # 11: a duplicate of line 4


@pytest.mark.parametrize("batch", [1, 3, 500])
def test_a_batch_of_new_existing_duplicate_and_refused_rows_reports_as_row_by_row(
        app, tmp_path, batch):
    """However the rows fall into batches (a batch is looked up and written at once), the
    report and what is written are those of rows taken one by one; so is a rerun's."""
    from app.accounts.imports import import_supporters
    from app.templating import org_zone

    add_category("Syria", CategoryKind.REGION)
    now = utcnow()
    pend = Supporter(email="pend@example.org", name="Pen")
    db.session.add_all([Supporter(email="old@example.org", name="Old"),
                        Supporter(email="same@example.org", name="Same", labels="a"), pend])
    db.session.flush()
    db.session.add_all([
        NewsSubscriber(email="unsub@example.org", status=SubscriberStatus.UNSUBSCRIBED,
                       consent_version="v1", consented_at=now, consent_source="form",
                       unsubscribed_at=now),
        NewsSubscriber(email="pend@example.org", status=SubscriberStatus.PENDING,
                       consent_version="v1", consented_at=now, consent_source="form",
                       supporter_id=pend.id)])
    db.session.commit()
    path = write(tmp_path, MIXED)

    def run_it(dry_run=False):
        return import_supporters(
            path, file_name="mixed.csv", max_bytes=10_000_000, dry_run=dry_run,
            zone=org_zone(), now=now, currency="USD", org_name="Org", provider=None,
            commit=db.session.commit, actor=Actor(id=None, label="test"), batch=batch)

    refused = [(5, "created_at 'yesterday' is not a date and time (write it as ISO 8601: "
                   "2026-11-25T14:03:12Z)"),
               (7, "a duplicate: the same email as line 2"),
               (10, "unknown category nowhere"),
               (11, "a duplicate: the same email as line 4")]
    before = state()
    dry = run_it(dry_run=True)
    assert dry.summary() == "3 to create, 2 to update, 1 unchanged, 4 refused"
    assert [(r.line, r.reason) for r in dry.refused] == refused
    assert state() == before

    report = run_it()
    assert report.summary() == "3 created, 2 updated, 1 unchanged, 4 refused"
    assert [(r.line, r.reason) for r in report.refused] == refused
    people = {s.email: s for s in db.session.scalars(select(Supporter))}
    assert sorted(people) == ["bad@example.org", "new1@example.org", "old@example.org",
                              "pend@example.org", "same@example.org", "unsub@example.org"]
    assert (people["new1@example.org"].name, people["old@example.org"].name,
            people["bad@example.org"].name) == ("New One", "Old Renamed", "Bad")
    subscribers = {s.email: s for s in db.session.scalars(select(NewsSubscriber))}
    assert {email: (s.status, s.consent_line, s.supporter_id)
            for email, s in subscribers.items()} == {
        "new1@example.org": (SubscriberStatus.PENDING, 2, people["new1@example.org"].id),
        "unsub@example.org": (SubscriberStatus.UNSUBSCRIBED, None,
                              people["unsub@example.org"].id),
        "pend@example.org": (SubscriberStatus.CONFIRMED, 9, pend.id)}
    assert db.session.execute(select(Follow.supporter_id)).scalars().all() == [
        people["new1@example.org"].id]

    after = state()
    again = run_it()
    assert again.summary() == "0 created, 0 updated, 6 unchanged, 4 refused"
    assert [(r.line, r.reason) for r in again.refused] == refused
    assert state() == after
