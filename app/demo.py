"""Demo data: the organisation's campaigns and a history of gifts, loaded idempotently.

``generate_gifts`` writes paid gifts with their ledger rows in bulk, without receipts or mail,
fast enough for a million rows in a few minutes (benchmarks); the demo uses it for its history.
``issue_receipts`` then numbers their receipts in bulk, in the order the gifts were paid, from
the same gapless counter the receipts service uses; no mail is sent for any of it.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text

from app.accounts.models import Supporter
from app.campaigns.models import Campaign, CampaignKind, SuggestedAmount
from app.extensions import db
from app.finance.models import Receipt, ReceiptStatus
from app.giving.models import Frequency, Gift, GiftStatus
from app.payments.models import Payment, PaymentKind

FOUNDER = ("Miriam Haddad", "Founder and Editor-in-Chief")

ANNIVERSARY_LETTER = """\
Dear friend,

Twenty years ago I rented a room above a bakery, bought two second-hand laptops and promised a
handful of colleagues that we would report the Middle East as it is lived: from Gaza and Sderot,
from Aleppo and Erbil, from Kabul and Dubai, in the words of the people who live there.

We never took an advertisement. We never took money from a government or a party. Everything
we are, we owe to readers like you.

This year our reporters crossed more front lines than ever. They counted the dead when no one
else would, they sat with families on both sides of every border, and they checked every claim
twice before we published it. That work is slow, dangerous and expensive. **It is also the only
way to deserve your trust.**

For our 20th anniversary, I am asking you to help us begin the next twenty years. Until the end
of the campaign, the Halabi Family Foundation will match every gift, up to $100,000.

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


def _campaigns(now: datetime) -> list[dict]:
    last_year = now.year - 1 if now.month < 12 else now.year
    year_end_start = now.replace(year=last_year, month=12, day=1, hour=5, minute=0, second=0,
                                 microsecond=0)
    day = timedelta(days=1)
    return [
        dict(slug="twenty-years", kind=CampaignKind.ANNIVERSARY,
             title="Twenty years of independent reporting",
             summary="Help us begin our next twenty years: every gift matched, up to $100,000.",
             appeal_markdown=ANNIVERSARY_LETTER, starts_at=now - 25 * day,
             ends_at=now + 36 * day, goal_amount=25_000_000, currency="USD",
             default_frequency=Frequency.ONE_TIME, match_amount=10_000_000,
             match_sponsor="the Halabi Family Foundation",
             thank_you_message="Thank you for standing with us as we turn twenty. Your gift "
                               "will be doubled, and it starts our next twenty years.",
             amounts=[(2500, "pays a local fixer for half a day in the field"),
                      (5000, "covers a reporter's safety equipment check"),
                      (10000, "funds a week of translation from Arabic, Hebrew and Dari"),
                      (25000, "sends a reporter to a story no one else will cover"),
                      (100000, "keeps a bureau's lights on for a month")],
             gifts=320),
        dict(slug="shana-tova", kind=CampaignKind.HOLIDAY,
             title="Shana tova: a sweet new year for honest news",
             summary="For the Jewish New Year, help us report the next year from every side.",
             appeal_markdown=SHANA_TOVA_LETTER, starts_at=now - 10 * day,
             ends_at=now + 20 * day, goal_amount=3_600_000, currency="USD",
             default_frequency=Frequency.MONTHLY,
             thank_you_message="Shana tova u'metuka: may your year be good and sweet. Thank "
                               "you for helping us begin ours.",
             amounts=[(1800, "chai: a day of fact-checking"),
                      (3600, "a verified source interview, translated"),
                      (7200, "a reporter's travel to the south for a day"),
                      (18000, "a week of our Jerusalem bureau")],
             gifts=90),
        dict(slug="ramadan-kareem", kind=CampaignKind.HOLIDAY,
             title="Ramadan Kareem: light for the stories that need it",
             summary="This Ramadan, support reporters working through the fast in Gaza, "
                     "Syria and Afghanistan.",
             appeal_markdown=RAMADAN_LETTER, starts_at=now - 5 * day, ends_at=now + 25 * day,
             goal_amount=5_000_000, currency="USD", default_frequency=Frequency.ONE_TIME,
             thank_you_message="Ramadan Kareem. Thank you for your generosity in this holy "
                               "month.",
             amounts=[(3000, "one dollar for each day of Ramadan"),
                      (6000, "a day's pay for a local reporter in Gaza"),
                      (12000, "a satellite data plan for a month"),
                      (30000, "a month of safe transport for our Kabul team")],
             gifts=70),
        dict(slug=f"year-end-{last_year}", kind=CampaignKind.YEAR_END,
             title=f"Year-end {last_year}: stand with independent journalism",
             summary="Our year-end appeal, now closed. Thank you to everyone who gave.",
             appeal_markdown=YEAR_END_LETTER, starts_at=year_end_start,
             ends_at=year_end_start + 31 * day, goal_amount=5_000_000, currency="USD",
             default_frequency=Frequency.ONE_TIME,
             thank_you_message="Thank you for closing the year with us.",
             amounts=[(5000, ""), (10000, ""), (25000, ""), (50000, "")],
             gifts=400),
    ]


def seed_demo(now: datetime, rng: random.Random | None = None,
              zone: ZoneInfo | None = None) -> list[str]:
    """Create the demo campaigns that do not exist yet, each with its history of gifts and
    their receipts, and a few offline gifts (a cheque, a wire) for the finance pages.

    Returns the slugs created; running it again creates nothing.
    """
    if zone is None:
        from app.templating import org_zone

        zone = org_zone()
    rng = rng or random.Random(2006)
    created = []
    for spec in _campaigns(now):
        spec = dict(spec)
        if db.session.scalar(select(Campaign.id).where(Campaign.slug == spec["slug"])):
            continue
        amounts, n_gifts = spec.pop("amounts"), spec.pop("gifts")
        campaign = Campaign(**spec, signatory_name=FOUNDER[0], signatory_title=FOUNDER[1])
        campaign.suggested_amounts = [SuggestedAmount(amount=a, impact=t, position=i)
                                      for i, (a, t) in enumerate(amounts)]
        db.session.add(campaign)
        db.session.flush()
        generate_gifts([campaign], n_gifts, now=now, rng=rng)
        created.append(campaign.slug)
    issue_receipts(zone)
    seed_offline_gifts(now, zone)
    return created


def issue_receipts(zone: ZoneInfo, *, batch: int = 20_000,
                   progress: Callable[[int], None] | None = None) -> int:
    """Number a receipt for every paid demo gift that has none, as the gift's payment would
    have (``reconcile_receipt``), but in bulk: in the order the gifts were paid, each year's
    numbers taken from its counter without gaps, issued when the gift was paid. Returns how
    many; running it again issues none."""
    from app.finance.receipts import receipt_year, reserve_sequences

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
    audit entries included, no mail), unless their references are already there."""
    from app.audit import Actor
    from app.finance.offline import OfflineGift, record_offline_gift

    today = now.astimezone(zone).date()
    campaigns = {c.slug: c for c in db.session.scalars(select(Campaign))}
    year_end = next((c for slug, c in campaigns.items() if slug.startswith("year-end-")), None)
    entries = []
    if "twenty-years" in campaigns:
        entries.append(OfflineGift(
            received_on=today - timedelta(days=3), method="cheque", reference="DEMO-004512",
            donor_name="Yusuf Haddad", email="yusuf.haddad@example.org",
            campaign="twenty-years", amount=50_000))
    if year_end is not None:
        entries.append(OfflineGift(
            received_on=min(_day(year_end.starts_at, zone) + timedelta(days=20), today),
            method="wire", reference="DEMO-FT-88213", donor_name="The Halabi Family Foundation",
            email="grants@halabi-foundation.example", campaign=year_end.slug,
            amount=2_500_000, goods_value=15_000,
            goods_description="two seats at the twentieth-anniversary dinner"))
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
                   rng: random.Random | None = None, batch: int = 20_000) -> int:
    """Insert ``n`` paid one-time gifts spread over the campaigns' open days, with their charges.

    Donors come from a pool of about n/3 new supporters, so some give more than once.
    """
    rng = rng or random.Random()
    if n <= 0 or not campaigns:
        return 0
    session = db.session
    run = secrets.token_hex(4)
    base_supporter = session.scalar(select(func.coalesce(func.max(Supporter.id), 0)))
    base_gift = session.scalar(select(func.coalesce(func.max(Gift.id), 0)))
    base_payment = session.scalar(select(func.coalesce(func.max(Payment.id), 0)))
    n_supporters = max(1, n // 3)
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(n_supporters)]
    for start in range(0, n_supporters, batch):
        session.execute(insert(Supporter), [
            {"id": base_supporter + i + 1, "email": f"donor-{run}-{i}@example.org",
             "name": names[i], "created_at": now}
            for i in range(start, min(n_supporters, start + batch))
        ])
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
            donor = rng.randrange(n_supporters)
            gift_id = base_gift + i + 1
            gifts.append({
                "id": gift_id, "public_id": secrets.token_urlsafe(16),
                "campaign_id": campaign.id, "supporter_id": base_supporter + donor + 1,
                "frequency": Frequency.ONE_TIME, "amount": amount, "fee_covered": 0,
                "currency": campaign.currency, "status": GiftStatus.PAID,
                "donor_name": names[donor], "anonymous": rng.random() < 0.1,
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
