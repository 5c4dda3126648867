"""The demo data's receipts and offline gifts: every paid demo gift receipted once, numbered in
the order the gifts were paid without gaps in each year, and nothing twice on a second run."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from app.extensions import db
from app.finance.models import Receipt, ReceiptCounter, ReceiptStatus
from app.finance.receipts import next_sequence
from app.giving.models import Gift, GiftStatus
from app.mail import OutboundEmail
from app.payments.models import Payment


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def check_receipts() -> dict[int, int]:
    """Every paid gift has one current receipt for its amount; each year's numbers run
    1..n in the order the gifts were paid. Returns the receipts per year."""
    rows = db.session.execute(
        select(Receipt.year, Receipt.sequence, Receipt.number, Receipt.amount, Receipt.status,
               Gift.amount.label("gift_amount"), Gift.paid_at, Gift.id)
        .join(Gift, Gift.id == Receipt.gift_id)).all()
    assert {r.status for r in rows} == {ReceiptStatus.ISSUED}
    assert all(r.amount == r.gift_amount for r in rows)
    assert all(r.number == f"{r.year}-{r.sequence:06d}" for r in rows)
    assert len({r.id for r in rows}) == len(rows) == count(Gift, Gift.status == GiftStatus.PAID)
    years = defaultdict(list)
    for r in rows:
        years[r.year].append(r)
    for year, receipts in years.items():
        by_number = sorted(receipts, key=lambda r: r.sequence)
        assert [r.sequence for r in by_number] == list(range(1, len(receipts) + 1)), year
        counter = db.session.get(ReceiptCounter, year)
        assert counter.last_sequence == len(receipts)
    return {year: len(receipts) for year, receipts in years.items()}


def demo_in_paid_order():
    """The demo gifts' receipts (offline ones aside) follow the order the gifts were paid."""
    rows = db.session.execute(
        select(Receipt.year, Receipt.sequence, Gift.paid_at, Gift.id)
        .join(Gift, Gift.id == Receipt.gift_id).where(Gift.provider == "demo")
        .order_by(Receipt.year, Receipt.sequence)).all()
    assert rows
    assert rows == sorted(rows, key=lambda r: (r.year, r.paid_at, r.id))


def test_seed_demo_receipts_its_gifts_once_in_paid_order(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    per_year = check_receipts()
    assert sum(per_year.values()) == count(Gift) > 800
    demo_in_paid_order()

    cheque = db.session.scalar(select(Payment).where(Payment.provider == "cheque"))
    wire = db.session.scalar(select(Payment).where(Payment.provider == "wire"))
    assert cheque.provider_id == "DEMO-004512" and cheque.amount == 50_000
    assert wire.provider_id == "DEMO-FT-88213"
    assert db.session.get(Gift, wire.gift_id).goods_value == 15_000
    assert count(Gift, Gift.provider == "offline") == 2
    assert count(OutboundEmail) == 0  # demo data mails nobody

    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert check_receipts() == per_year
    assert count(Gift, Gift.provider == "offline") == 2

    # A real gift's receipt continues the year's numbers.
    year = max(per_year)
    assert next_sequence(year) == per_year[year] + 1


def test_bulk_gifts_are_receipted_too(app):
    result = app.test_cli_runner().invoke(args=["seed-demo", "--gifts", "3000"])
    assert result.exit_code == 0, result.output
    assert "numbered 3,000 receipts" in result.output
    per_year = check_receipts()
    assert sum(per_year.values()) == count(Gift) > 3800
