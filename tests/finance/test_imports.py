"""``flask finance import``: one instance's export imported into an empty second database gives
the same rows, sums and reconciliation; a rerun adds nothing; bad input is refused and named;
nothing is sent."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.audit import AuditEntry
from app.campaigns.models import Campaign
from app.db import utcnow
from app.extensions import db
from app.finance.common import make_period
from app.finance.exports import totals
from app.finance.models import Receipt
from app.finance.offline import OfflineGift, record_offline_gift
from app.finance.receipts import reserve_sequences
from app.finance.reconciliation import reconcile
from app.finance.statements import count_donors
from app.giving.models import Dedication, Frequency, Gift
from app.mail import OutboundEmail
from app.payments.models import Payment
from app.templating import org_zone
from tests.conftest import migrated_url
from tests.factories import dispute, make_campaign, paid_gift, refund
from tests.finance.support import NY, at

EVERYTHING = ("--from", "2000-01-01", "--to", "2099-12-31")
# Columns that are the old database's own numbers: not carried over.
OWN_IDS = ("gift_id", "recurring_plan_id")


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=["finance", *args])


def build_history() -> None:
    """Gifts in two currencies with fees, an unknown fee, partial and full refunds, disputes
    lost and won, an offline cheque, and text that looks like a formula."""
    appeal = make_campaign("appeal", fund_code="4100-ANNIV")
    euros = make_campaign("euro-appeal", title="=Appel en euros", currency="EUR")
    paid_gift(appeal, amount=5000, when=at(2026, 3, 2, 15), fee=175,
              utm={"utm_source": "newsletter"}, cover_fee=True)
    paid_gift(appeal, "omar@example.org", name="=cmd|' /C calc'!A0", amount=2500,
              when=at(2026, 3, 3, 15), dedication=Dedication.MEMORY,
              dedication_name="Nadia Khoury")
    _, charge = paid_gift(appeal, amount=10000, when=at(2026, 3, 4, 15), fee=320,
                          frequency=Frequency.MONTHLY)
    refund(charge, 4000, at(2026, 3, 20, 12))
    refund(charge, 1000, at(2026, 4, 20, 12))
    _, charge = paid_gift(euros, "leila@example.org", amount=3000, when=at(2026, 3, 5, 15),
                          fee=117)
    dispute(charge, 3000, at(2026, 3, 25, 12))
    _, charge = paid_gift(euros, "leila@example.org", amount=1800, when=at(2026, 3, 6, 15),
                          fee=82)
    dispute(charge, 1800, at(2026, 3, 26, 12), won=True)
    _, charge = paid_gift(appeal, "Ruth@Example.org", amount=7000, when=at(2025, 12, 31, 23),
                          fee=233)
    refund(charge, 7000, at(2026, 3, 10, 12))
    record_offline_gift(OfflineGift(
        received_on=datetime(2026, 3, 9).date(), method="cheque", reference="CHQ-1001",
        donor_name="Yusuf Haddad", email="yusuf@example.org", campaign="appeal", amount=25000,
        goods_value=4000, goods_description="a dinner"),
        actor=_cli(), zone=NY, now=at(2026, 3, 9, 17), send_receipt=False)
    db.session.commit()


def _cli():
    from app.audit import Actor
    return Actor(id=None, label="test")


def _figures(result):
    return [[(line.currency, line.label, line.charges, line.gross, line.fees, line.fees_unknown,
              line.refunds, line.disputes, line.dispute_fees, line.net) for line in lines]
            for lines in (result.by_currency, result.by_campaign, result.by_method)]


def _rows(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: v for k, v in row.items() if k not in OWN_IDS}
                for row in csv.DictReader(f)]


def _counts() -> dict:
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Gift, Payment, Receipt, Campaign, OutboundEmail)}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_export_imports_into_an_empty_database_with_the_same_money(
        request, make_app, backend, tmp_path):
    source = make_app(migrated_url(request, backend, f"import_source_{backend}"))
    target = make_app(migrated_url(request, backend, f"import_target_{backend}"))
    exported, again = tmp_path / "gifts.csv", tmp_path / "again.csv"
    with source.app_context():
        build_history()
        assert invoke(source, "export", *EVERYTHING, "-o", str(exported)).exit_code == 0
        period = make_period("2000-01-01", "2099-12-31", org_zone())
        before = _figures(reconcile(period))
        receipts = sorted(db.session.scalars(select(Receipt.number).where(
            Receipt.status == "issued")))
        donors = count_donors(2026)
        db.session.remove()

    with target.app_context():
        dry = invoke(target, "import", str(exported), "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "dry run, nothing written: 7 to create, 0 to update, 0 unchanged, 0 refused" \
            in dry.output
        assert _counts() == {"gift": 0, "payment": 0, "receipt": 0, "campaign": 0,
                             "outbound_email": 0}

        done = invoke(target, "import", str(exported), "--by", "finance@levantwire.example")
        assert done.exit_code == 0, done.output
        assert "imported: 7 created, 0 updated, 0 unchanged, 0 refused" in done.output
        assert invoke(target, "export", *EVERYTHING, "-o", str(again)).exit_code == 0
        assert _rows(again) == _rows(exported)
        sums = totals(list(csv.reader(io.StringIO(exported.read_text())))[1:])
        assert set(sums) == {"USD", "EUR"} and sums["USD"]["refunded_minor"] == 12000
        assert totals(list(csv.reader(io.StringIO(again.read_text())))[1:]) == sums
        assert _figures(reconcile(period)) == before

        # The old receipts keep their numbers, issued elsewhere, on the statements; the
        # counter moved past them; nothing was mailed.
        imported = db.session.scalars(select(Receipt).order_by(Receipt.number)).all()
        assert [r.number for r in imported] == receipts
        assert all(r.issued_elsewhere for r in imported)
        assert count_donors(2026) == donors == 4  # noa, omar, leila (won), yusuf
        issued = max(int(n[5:]) for n in receipts if n.startswith("2026"))
        assert reserve_sequences(2026, 1) > issued
        db.session.rollback()
        counts = _counts()
        assert counts["outbound_email"] == 0
        campaigns = db.session.scalars(select(Campaign).order_by(Campaign.slug)).all()
        assert [(c.slug, c.title, c.currency, c.published) for c in campaigns] == [
            ("appeal", "A test appeal", "USD", False),
            ("euro-appeal", "=Appel en euros", "EUR", False)]
        assert all(c.imported_at and c.state(utcnow()) == "ended" for c in campaigns)
        supporters = db.session.scalar(select(func.count(func.distinct(Gift.supporter_id))))
        assert supporters == 5
        audit = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "finance.import")).one()
        assert audit.actor_label == "finance@levantwire.example" and '"create": 7' in audit.after

        rerun = invoke(target, "import", str(exported))
        assert rerun.exit_code == 0, rerun.output
        assert "imported: 0 created, 0 updated, 7 unchanged, 0 refused" in rerun.output
        assert _counts() == counts
        db.session.remove()



@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_demos_export_round_trips(request, make_app, backend, tmp_path):
    """The demo's history (ended and live campaigns, a cheque and a wire with goods in return,
    receipts numbered per year), exported and imported into an empty database."""
    from app.demo import demo_origin, seed_demo

    source = make_app(migrated_url(request, backend, f"demo_source_{backend}"))
    target = make_app(migrated_url(request, backend, f"demo_target_{backend}"))
    exported, again = tmp_path / "demo.csv", tmp_path / "again.csv"
    now = datetime(2026, 11, 20, 15, tzinfo=UTC)
    with source.app_context():
        zone, founded = demo_origin(source.config)
        seed_demo(now, zone=zone, founded=founded)
        db.session.commit()
        assert invoke(source, "export", *EVERYTHING, "-o", str(exported)).exit_code == 0
        period = make_period("2000-01-01", "2099-12-31", zone)
        before = _figures(reconcile(period))
        db.session.remove()
    with target.app_context():
        done = invoke(target, "import", str(exported))
        assert done.exit_code == 0, done.output
        assert invoke(target, "export", *EVERYTHING, "-o", str(again)).exit_code == 0
        assert len(_rows(again)) > 1000 and _rows(again) == _rows(exported)
        assert _figures(reconcile(period)) == before
        assert _counts()["outbound_email"] == 0
        db.session.remove()
