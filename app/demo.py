"""Demo data: the organisation's campaigns and a history of gifts, loaded idempotently.

The demo is a function of the moment it is loaded (``seed-demo --now``), anchored on the real
occasions of the calendar module: every Rosh Hashanah, Ramadan, year-end and founding
anniversary whose campaign window ended in the last :data:`HISTORY_MONTHS` months is an ended
campaign with its gifts, the ones whose window holds ``now`` are live with the gifts of the days
gone so far, and the next of each is scheduled. A year-round membership appeal per calendar year
keeps a campaign live on every day. So whatever the day, the campaigns agree with the calendar,
a live campaign's progress matches how far it has run, and the reports have content: gifts last
year and the years before (lapsed donors, last year's statements, year-over-year dashboards).

Donors come from one pool of demo supporters, so many give again, in other campaigns and years.
``generate_gifts`` writes paid gifts with their ledger rows in bulk, without receipts or mail,
fast enough for a million rows in a few minutes (benchmarks); the demo uses it for its history.
``issue_receipts`` then numbers their receipts in bulk, in the order the gifts were paid, from
the same gapless counter the receipts service uses; no mail is sent for any of it.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from itertools import groupby
from statistics import fmean
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from sqlalchemy import func, insert, select, text

from app import jobs
from app.accounts.models import Supporter
from app.audit import Actor
from app.campaigns.calendar import Occasion, local_midnight, occasions_between, ordinal
from app.campaigns.models import Campaign, CampaignKind, SuggestedAmount
from app.cli import parse_now
from app.db import writing_command
from app.extensions import db
from app.finance.models import Receipt, ReceiptStatus
from app.finance.offline import OfflineGift, record_offline_gift
from app.finance.receipts import receipt_year, reserve_sequences
from app.giving.models import Frequency, Gift, GiftStatus
from app.news.demo import seed_news
from app.payments.models import Payment, PaymentKind
from app.prompts.demo import seed_prompts

FOUNDER = ("Miriam Haddad", "Founder and Editor-in-Chief")
# Ended campaigns are kept this far back: always beyond 1 January of last year, so that the
# donors of the year before last (SYBUNT) and last year's statements exist on any day.
HISTORY_MONTHS = 30
DONOR_POOL = 450

ANNIVERSARY_LETTER = """\
Dear friend,

{Years} years ago I rented a room above a bakery, bought two second-hand laptops and promised a
handful of colleagues that we would report the Middle East as it is lived: from Gaza and Sderot,
from Aleppo and Erbil, from Kabul and Dubai, in the words of the people who live there.

We never took an advertisement. We never took money from a government or a party. Everything
we are, we owe to readers like you.

This year our reporters crossed more front lines than ever. They counted the dead when no one
else would, they sat with families on both sides of every border, and they checked every claim
twice before we published it. That work is slow, dangerous and expensive. **It is also the only
way to deserve your trust.**

For our {nth} anniversary, I am asking you to help us begin the next {years} years. Until the
end of the campaign, the Halabi Family Foundation will match every gift, up to {match}.

With gratitude, and with hope,
"""

SHANA_TOVA_LETTER = """\
Dear friend,

As the shofar sounds and a new year begins, we dip apples in honey and wish one another a year
that is *good and sweet*. It has been a hard year to wish that for.

Our correspondents in Jerusalem, Tel Aviv and the south of Israel spent it beside families
waiting for news, and beside neighbours across the fence whose grief looked very much the same.
Telling both stories honestly is why we exist.

If our reporting helped you understand this year, please help us report the next one. A gift of
$18, *chai*, for life, goes further than you might think.

Shana tova u'metuka,
"""

RAMADAN_LETTER = """\
Dear friend,

Ramadan is a month of patience, generosity and long evenings shared with family. For our
reporters in Gaza, the West Bank, Syria and Afghanistan, it is also a month of working through
the fast to tell the stories of people breaking it in shelters, hospitals and queues for bread.

During this holy month, we ask you to support journalism that listens before it speaks. Every
gift helps us keep local reporters safe and paid, and keeps our reporting free for everyone.

Ramadan Kareem, and Eid Mubarak when it comes,
"""

YEAR_END_LETTER = """\
Dear friend,

As the year closes, I want to thank you. You made it possible for us to keep three bureaus open
and to train eleven new local reporters.

A gift before December 31 is tax-deductible for this year, and it lets us plan next year's
coverage with confidence.

Warmly,
"""

MEMBERSHIP_LETTER = """\
Dear friend,

Levant Wire has no paywall, no advertisers and no owner but its readers. Every story we publish,
from Gaza to Kabul, is free for anyone to read, because members like you pay for it.

A monthly gift is the most useful one we receive: it lets us promise a local reporter a year of
work, not a week. Members get our correspondents' analysis in their daily email, and our thanks
every single day.

Thank you for keeping us independent,
"""

_UNITS = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """1 to 99 in English words: 20 is "twenty", 21 "twenty-one" (anniversary slugs, letters)."""
    if not 0 < n < 100:
        raise ValueError(f"{n} is outside 1..99")
    if n < 20:
        return _UNITS[n]
    return _TENS[n // 10] + (f"-{_UNITS[n % 10]}" if n % 10 else "")


def _dollars(minor: int) -> str:
    return f"${minor // 100:,}"


def _anniversary(occasion: Occasion) -> dict:
    years = int(occasion.key.rsplit("-", 1)[1])
    words = number_words(years)
    match = 10_000_000 if years % 5 == 0 else 2_500_000
    return dict(
        slug=f"{words}-years", kind=CampaignKind.ANNIVERSARY,
        title=f"{words.capitalize()} years of independent reporting",
        summary=f"Help us begin our next {words} years: every gift matched, up to "
                f"{_dollars(match)}.",
        appeal_markdown=ANNIVERSARY_LETTER.format(Years=words.capitalize(), years=words,
                                                  nth=ordinal(years), match=_dollars(match)),
        default_frequency=Frequency.ONE_TIME, match_amount=match,
        match_sponsor="the Halabi Family Foundation",
        thank_you_message=f"Thank you for standing with us as we turn {words}. Your gift will "
                          f"be doubled, and it starts our next {words} years.",
        amounts=[(2500, "pays a local fixer for half a day in the field"),
                 (5000, "covers a reporter's safety equipment check"),
                 (10000, "funds a week of translation from Arabic, Hebrew and Dari"),
                 (25000, "sends a reporter to a story no one else will cover"),
                 (100000, "keeps a bureau's lights on for a month")],
        gifts=260 if years % 5 == 0 else 120)


def _rosh_hashanah(occasion: Occasion) -> dict:
    year = occasion.key.rsplit("-", 1)[1]
    return dict(
        slug=f"rosh-hashanah-{year}", kind=CampaignKind.HOLIDAY,
        title=f"Shana tova {year}: a sweet new year for honest news",
        summary="For the Jewish New Year, help us report the next year from every side.",
        appeal_markdown=SHANA_TOVA_LETTER, default_frequency=Frequency.MONTHLY,
        thank_you_message="Shana tova u'metuka: may your year be good and sweet. Thank you "
                          "for helping us begin ours.",
        amounts=[(1800, "chai: a day of fact-checking"),
                 (3600, "a verified source interview, translated"),
                 (7200, "a reporter's travel to the south for a day"),
                 (18000, "a week of our Jerusalem bureau")],
        gifts=80)


def _ramadan(occasion: Occasion) -> dict:
    year = occasion.key.rsplit("-", 1)[1]
    return dict(
        slug=f"ramadan-{year}", kind=CampaignKind.HOLIDAY,
        title=f"Ramadan Kareem {year} AH: light for the stories that need it",
        summary="This Ramadan, support reporters working through the fast in Gaza, Syria and "
                "Afghanistan.",
        appeal_markdown=RAMADAN_LETTER, default_frequency=Frequency.ONE_TIME,
        thank_you_message="Ramadan Kareem. Thank you for your generosity in this holy month.",
        amounts=[(3000, "one dollar for each day of Ramadan"),
                 (6000, "a day's pay for a local reporter in Gaza"),
                 (12000, "a satellite data plan for a month"),
                 (30000, "a month of safe transport for our Kabul team")],
        gifts=90)


def _year_end(occasion: Occasion) -> dict:
    year = occasion.key.rsplit("-", 1)[1]
    return dict(
        slug=f"year-end-{year}", kind=CampaignKind.YEAR_END,
        title=f"Year-end {year}: stand with independent journalism",
        summary=f"Our year-end appeal: a gift before December 31 counts for {year}'s taxes.",
        appeal_markdown=YEAR_END_LETTER, default_frequency=Frequency.ONE_TIME,
        thank_you_message="Thank you for closing the year with us.",
        amounts=[(5000, ""), (10000, ""), (25000, ""), (50000, "")],
        gifts=170)


# The occasions the demo appeals around, by their key's prefix in the calendar module.
OCCASIONS: dict[str, Callable[[Occasion], dict]] = {
    "anniversary": _anniversary, "rosh-hashanah": _rosh_hashanah, "ramadan": _ramadan,
    "year-end": _year_end,
}


def _membership(year: int, zone: ZoneInfo) -> dict:
    return dict(
        slug=f"membership-{year}", kind=CampaignKind.GENERAL,
        title=f"Become a member in {year}: keep our reporting free for everyone",
        summary="Our year-round appeal: a monthly gift keeps a local reporter working.",
        appeal_markdown=MEMBERSHIP_LETTER, default_frequency=Frequency.MONTHLY,
        thank_you_message="Welcome, and thank you: you keep our reporting free for everyone.",
        amounts=[(1000, "a month of our daily email for a hundred readers"),
                 (2500, "a translated interview"), (5000, "a day of local reporting"),
                 (10000, "a reporter's safety training")],
        gifts=150, starts_at=local_midnight(date(year, 1, 1), zone),
        ends_at=local_midnight(date(year + 1, 1, 1), zone))


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def demo_campaigns(now: datetime, zone: ZoneInfo, founded: date) -> list[dict]:
    """The demo's campaigns at ``now``: each a dict of Campaign fields plus ``amounts`` (the
    suggested amounts with their impact) and ``gifts`` (how many gifts it has had by ``now``),
    in the order they start."""
    today = now.astimezone(zone).date()
    since = _months_before(today, HISTORY_MONTHS)
    specs = []
    upcoming: set[str] = set()
    for occasion in occasions_between(since, today + timedelta(days=400), founded=founded):
        family = occasion.key.rsplit("-", 1)[0]
        if family not in OCCASIONS:
            continue
        starts_at = local_midnight(occasion.starts, zone)
        ends_at = local_midnight(occasion.ends, zone)
        if ends_at.date() < since:
            continue
        if starts_at > now:  # only the next of each is scheduled already
            if family in upcoming:
                continue
            upcoming.add(family)
        specs.append({**OCCASIONS[family](occasion), "starts_at": starts_at,
                      "ends_at": ends_at})
    specs.extend(_membership(year, zone) for year in range(since.year, today.year + 1))
    for spec in specs:
        _size(spec, now)
    return sorted(specs, key=lambda s: (s["starts_at"], s["slug"]))


def _size(spec: dict, now: datetime) -> None:
    """The goal and the gifts so far: a full window's gifts raise about the goal (70-125% of
    it, drawn per campaign), a live campaign has had its share of them for the time gone."""
    rng = random.Random(f"goal:{spec['slug']}")
    amounts = [a for a, _ in spec["amounts"]]
    # generate_gifts: a suggested amount 80% of the time, else $10-$499.
    expected = spec["gifts"] * (0.8 * fmean(amounts) + 0.2 * 25_450)
    goal = expected / rng.uniform(0.7, 1.25)
    step = 100_000 if goal >= 1_000_000 else 50_000
    spec["goal_amount"] = max(step, round(goal / step) * step)
    span = (spec["ends_at"] - spec["starts_at"]).total_seconds()
    done = min(1.0, max(0.0, (now - spec["starts_at"]).total_seconds() / span))
    spec["gifts"] = 0 if done == 0 else max(3, round(spec["gifts"] * done))
    spec["currency"] = "USD"


def _demo_donors(since: datetime) -> list[tuple[int, str]]:
    """The pool of demo donors (created once), as (supporter id, name)."""
    rng = random.Random(2006)
    wanted = {}
    for i in range(DONOR_POOL):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        wanted[f"{first}.{last}.{i}@example.org".lower()] = f"{first} {last}"
    found = dict(db.session.execute(
        select(Supporter.email, Supporter.id).where(Supporter.email.in_(wanted))).all())
    missing = [e for e in wanted if e not in found]
    if missing:
        db.session.execute(insert(Supporter), [
            {"email": e, "name": wanted[e], "created_at": since} for e in missing])
        found = dict(db.session.execute(
            select(Supporter.email, Supporter.id).where(Supporter.email.in_(wanted))).all())
    return [(found[e], wanted[e]) for e in wanted]


def demo_origin(config) -> tuple[ZoneInfo, date]:
    """The organisation's zone and founding day from the app's settings (``ORG_TIMEZONE``,
    ``ORG_FOUNDED``): what :func:`seed_demo` is given by a command or a script."""
    return ZoneInfo(config["ORG_TIMEZONE"]), date.fromisoformat(config["ORG_FOUNDED"])


def seed_demo(now: datetime, rng: random.Random | None = None, *, zone: ZoneInfo,
              founded: date) -> list[str]:
    """Create the demo campaigns that do not exist yet, each with its history of gifts and
    their receipts, a few offline gifts (a cheque, a wire) for the finance pages, and prompts
    for the live campaigns that have none (``app.prompts.demo``).

    Returns the slugs created; running it again at the same ``now`` creates nothing (a later
    ``now`` adds the campaigns that its calendar has and the database has not yet).
    """
    specs = demo_campaigns(now, zone, founded)
    since = local_midnight(_months_before(now.astimezone(zone).date(), HISTORY_MONTHS), zone)
    donors = _demo_donors(since)
    created = []
    for spec in specs:
        spec = dict(spec)
        if db.session.scalar(select(Campaign.id).where(Campaign.slug == spec["slug"])):
            continue
        amounts, n_gifts = spec.pop("amounts"), spec.pop("gifts")
        campaign = Campaign(**spec, signatory_name=FOUNDER[0], signatory_title=FOUNDER[1])
        campaign.suggested_amounts = [SuggestedAmount(amount=a, impact=t, position=i)
                                      for i, (a, t) in enumerate(amounts)]
        db.session.add(campaign)
        db.session.flush()
        generate_gifts([campaign], n_gifts, now=now, donors=donors,
                       rng=rng or random.Random(f"gifts:{campaign.slug}"))
        created.append(campaign.slug)
    issue_receipts(zone)
    seed_offline_gifts(now, zone)
    seed_prompts(now)
    return created


def issue_receipts(zone: ZoneInfo, *, batch: int = 20_000,
                   progress: Callable[[int], None] | None = None) -> int:
    """Number a receipt for every paid demo gift that has none, as the gift's payment would
    have (``reconcile_receipt``), but in bulk: in the order the gifts were paid, each year's
    numbers taken from its counter without gaps, issued when the gift was paid. Returns how
    many; running it again issues none."""
    session = db.session
    receipted = select(Receipt.id).where(Receipt.gift_id == Gift.id).exists()
    result = session.execute(
        select(Gift.id, Gift.paid_at, Gift.amount, Gift.currency)
        .where(Gift.provider == "demo", Gift.status == GiftStatus.PAID,
               Gift.paid_at.is_not(None), ~receipted)
        .order_by(Gift.paid_at, Gift.id).execution_options(yield_per=batch))
    issued = 0
    for rows in result.partitions():
        receipts = []
        for year, group in groupby(rows, key=lambda r: receipt_year(r.paid_at, zone)):
            group = list(group)
            first = reserve_sequences(year, len(group))
            receipts.extend(
                {"gift_id": r.id, "year": year, "sequence": first + i,
                 "number": f"{year}-{first + i:06d}", "amount": r.amount,
                 "currency": r.currency, "issued_at": r.paid_at,
                 "status": ReceiptStatus.ISSUED}
                for i, r in enumerate(group))
        session.execute(insert(Receipt), receipts)
        issued += len(receipts)
        if progress is not None:
            progress(issued)
    if issued and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT setval(pg_get_serial_sequence('receipt', 'id'), "
                             "(SELECT COALESCE(MAX(id), 1) FROM receipt))"))
    return issued


def seed_offline_gifts(now: datetime, zone: ZoneInfo) -> int:
    """A cheque and a bank transfer, recorded through the offline gifts service (receipts and
    audit entries included, no mail), unless their references are already there: the cheque
    came three days ago for the campaign then live (the anniversary if it was), the wire
    during the last year-end appeal that has ended."""
    today = now.astimezone(zone).date()
    cheque_day = today - timedelta(days=3)
    cheque_at = local_midnight(cheque_day, zone) + timedelta(hours=12)
    campaigns = list(db.session.scalars(select(Campaign).order_by(Campaign.starts_at)))
    live_then = [c for c in campaigns if c.starts_at <= cheque_at < c.ends_at]
    cheque_for = next((c for c in live_then if c.kind == CampaignKind.ANNIVERSARY),
                      live_then[-1] if live_then else None)
    year_ends = [c for c in campaigns
                 if c.kind == CampaignKind.YEAR_END and c.has_ended(now)]
    entries = []
    if cheque_for is not None:
        entries.append(OfflineGift(
            received_on=cheque_day, method="cheque", reference="DEMO-004512",
            donor_name="Yusuf Haddad", email="yusuf.haddad@example.org",
            campaign=cheque_for.slug, amount=50_000))
    if year_ends:
        year_end = year_ends[-1]
        entries.append(OfflineGift(
            received_on=_day(year_end.starts_at, zone) + timedelta(days=20),
            method="wire", reference="DEMO-FT-88213", donor_name="The Halabi Family Foundation",
            email="grants@halabi-foundation.example", campaign=year_end.slug,
            amount=1_000_000, goods_value=15_000,
            goods_description="two seats at the anniversary dinner"))
    done = 0
    for entry in entries:
        if db.session.scalar(select(Payment.id).where(Payment.provider == entry.method,
                                                      Payment.provider_id == entry.reference)):
            continue
        record_offline_gift(entry, actor=Actor(id=None, label="demo"), zone=zone, now=now,
                            send_receipt=False)
        done += 1
    return done


def _day(when: datetime, zone: ZoneInfo) -> date:
    return when.astimezone(zone).date()


FIRST = ["Noa", "Omar", "Leila", "David", "Sara", "Yusuf", "Hannah", "Karim", "Maya", "Ali",
         "Rachel", "Samir", "Dana", "Tariq", "Ruth", "Nadia", "Eitan", "Zeynep", "Farah", "Ben"]
LAST = ["Cohen", "Haddad", "Levi", "Nasser", "Mizrahi", "Khoury", "Friedman", "Rahimi",
        "Ben-David", "Saleh", "Goldberg", "Aziz", "Peretz", "Darwish", "Stein", "Karimi"]


def generate_gifts(campaigns: list[Campaign], n: int, *, now: datetime,
                   rng: random.Random | None = None, batch: int = 20_000,
                   donors: list[tuple[int, str]] | None = None) -> int:
    """Insert ``n`` paid one-time gifts spread over the campaigns' open days up to ``now``,
    with their charges.

    Donors are drawn from ``donors`` (supporter id, name), or else from a pool of about n/3
    new supporters, so some give more than once.
    """
    rng = rng or random.Random()
    if n <= 0 or not campaigns:
        return 0
    session = db.session
    run = secrets.token_hex(4)
    base_supporter = session.scalar(select(func.coalesce(func.max(Supporter.id), 0)))
    base_gift = session.scalar(select(func.coalesce(func.max(Gift.id), 0)))
    base_payment = session.scalar(select(func.coalesce(func.max(Payment.id), 0)))
    if donors is None:
        n_supporters = max(1, n // 3)
        names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(n_supporters)]
        for start in range(0, n_supporters, batch):
            session.execute(insert(Supporter), [
                {"id": base_supporter + i + 1, "email": f"donor-{run}-{i}@example.org",
                 "name": names[i], "created_at": now}
                for i in range(start, min(n_supporters, start + batch))
            ])
        donors = [(base_supporter + i + 1, name) for i, name in enumerate(names)]
    windows = []
    for c in campaigns:
        amounts = [s.amount for s in c.suggested_amounts] or [2500, 5000, 10000]
        end = min(c.ends_at, now)
        windows.append((c, amounts, c.starts_at, max(1, int((end - c.starts_at).total_seconds()))))
    for start in range(0, n, batch):
        gifts, payments = [], []
        for i in range(start, min(n, start + batch)):
            campaign, amounts, opened, span = windows[i % len(windows)]
            when = opened + timedelta(seconds=rng.randrange(span))
            amount = rng.choice(amounts) if rng.random() < 0.8 else rng.randrange(10, 500) * 100
            donor_id, donor_name = donors[rng.randrange(len(donors))]
            gift_id = base_gift + i + 1
            gifts.append({
                "id": gift_id, "public_id": secrets.token_urlsafe(16),
                "campaign_id": campaign.id, "supporter_id": donor_id,
                "frequency": Frequency.ONE_TIME, "amount": amount, "fee_covered": 0,
                "currency": campaign.currency, "status": GiftStatus.PAID,
                "donor_name": donor_name, "anonymous": rng.random() < 0.1,
                "provider": "demo", "created_at": when, "paid_at": when,
                "utm_source": rng.choice([None, "newsletter", "facebook", "site-banner"]),
            })
            payments.append({
                "id": base_payment + i + 1, "gift_id": gift_id, "campaign_id": campaign.id,
                "kind": PaymentKind.CHARGE, "amount": amount, "currency": campaign.currency,
                "provider": "demo", "provider_id": f"demo_{run}_{i}", "occurred_at": when,
                "created_at": when,
            })
        session.execute(insert(Gift), gifts)
        session.execute(insert(Payment), payments)
    _reset_sequences()
    return n


def _reset_sequences() -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the inserted rows."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for table in ("supporter", "gift", "payment"):
        db.session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))


# ------------------------------------------------------------------ flask seed-demo


@click.command("seed-demo")
@writing_command
@click.option("--gifts", type=click.IntRange(min=0), default=0,
              help="Also add this many paid gifts spread over the live campaigns (benchmarks).")
@click.option("--now", "now_text", metavar="ISO-DATETIME",
              help="Load the demo as it would be at this time (UTC unless it names a zone).")
def seed_demo_command(gifts: int, now_text: str | None) -> None:
    """Load the demo campaigns and their history (idempotent): the occasions of the calendar
    around now, ended, live and scheduled, with their gifts so far."""
    now = parse_now(now_text)
    zone, founded = demo_origin(current_app.config)
    created = seed_demo(now, zone=zone, founded=founded)
    jobs.commit()
    click.echo(f"demo campaigns created: {', '.join(created) or 'none (already there)'}")
    categories, stories = seed_news(now, zone)
    jobs.commit()
    click.echo(f"news categories created: {len(categories)}; sample feed: {stories.new} new "
               f"stories, {stories.unchanged + stories.updated} already there")
    if gifts:
        campaigns = [c for c in db.session.scalars(select(Campaign)) if c.is_live(now)]
        started = time.perf_counter()
        done = 0
        step = 100_000
        while done < gifts:
            chunk = min(step, gifts - done)
            generate_gifts(campaigns, chunk, now=now)
            jobs.commit()
            done += chunk
            click.echo(f"  {done:,}/{gifts:,} gifts ({time.perf_counter() - started:.1f}s)")
        click.echo(f"added {gifts:,} gifts in {time.perf_counter() - started:.1f}s")
        _demo_receipts(gifts, zone)


def _demo_receipts(gifts: int, zone: ZoneInfo) -> None:
    """Number the bulk gifts' receipts, in the order they were paid (one transaction)."""
    started = time.perf_counter()
    every = max(100_000, gifts // 10)
    shown = [0]

    def progress(done: int) -> None:
        if done - shown[0] >= every:
            shown[0] = done
            click.echo(f"  {done:,} receipts ({time.perf_counter() - started:.1f}s)")

    issued = issue_receipts(zone, progress=progress)
    jobs.commit()
    click.echo(f"numbered {issued:,} receipts in {time.perf_counter() - started:.1f}s")


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
