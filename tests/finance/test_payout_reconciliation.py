"""Reconciliation per payout: the page's and the command's payout table, each payout's figures
equal to the CSV its links download (the export's ``payout`` filter), a payout that does not
match the ledger flagged, and the filter's bad input answered beside its field."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from html import unescape

import pytest

from app.db import utcnow
from app.extensions import db
from app.finance.common import FinanceError
from app.finance.exports import export_filter, iter_rows, totals
from app.finance.reconciliation import PAYOUTS_CAMPAIGN_NOTE, reconcile
from app.giving.services import GivingRules, record_gift_payment, start_gift
from app.payments import ledger, payouts
from app.payments.base import BalanceTransaction
from app.templating import org_zone
from tests.factories import gift_request, make_campaign
from tests.finance.support import COLUMN, MARCH, at, column_sum, invoke, rows_of

ARRIVES = int(datetime(2026, 3, 12, tzinfo=UTC).timestamp())


def stripe_gift(app, campaign, letter: str, amount: int, fee: int | None, when):
    gift = start_gift(campaign, gift_request(amount=amount),
                      rules=GivingRules.from_config(app.config), now=utcnow())
    db.session.flush()
    charge = record_gift_payment(gift, provider="stripe", provider_id=f"pi_{letter}",
                                 payment_intent_id=f"pi_{letter}", charge_id=f"ch_{letter}",
                                 amount=gift.total, currency="USD", occurred_at=when,
                                 zone=org_zone())
    charge.fee, charge.net = fee, None if fee is None else amount - fee
    return charge


def txn(txn_id, type_, amount, source, fee=0, category=None):
    return BalanceTransaction(id=txn_id, type=type_, source_id=source, amount=amount, fee=fee,
                              net=amount - fee, currency="USD", reporting_category=category)


def stripe_payout(payout_id: str, transactions, *, status="paid", arrival=ARRIVES):
    amount = sum(t.net for t in transactions)
    record = payouts.record_payout("stripe", {
        "id": payout_id, "object": "payout", "amount": amount, "currency": "usd",
        "status": status, "arrival_date": arrival, "automatic": True, "created": arrival,
        "reconciliation_status": "completed"})
    payouts.record_transactions(record, transactions)
    db.session.flush()
    return record


@pytest.fixture
def paid_out(app):
    """Two payouts in March: po_one pays out three gifts (one refunded in it, one disputed)
    paid across February and March, a Stripe fee and a charge made elsewhere; po_two pays
    out a gift whose fee the ledger does not know yet. A gift in no payout beside them."""
    campaign = make_campaign("appeal")
    a = stripe_gift(app, campaign, "a", 5000, 175, at(2026, 2, 27, 15))
    b = stripe_gift(app, campaign, "b", 10000, 320, at(2026, 3, 2, 15))
    c = stripe_gift(app, campaign, "c", 3000, 117, at(2026, 3, 3, 15))
    ledger.record_refund(b, refund_id="re_b", amount=4000, occurred_at=at(2026, 3, 4, 12))
    ledger.record_dispute(c, dispute_id="du_c", amount=3000, occurred_at=at(2026, 3, 5, 12))
    d = stripe_gift(app, campaign, "d", 2000, None, at(2026, 3, 6, 15))
    stripe_gift(app, campaign, "z", 7000, 233, at(2026, 3, 3, 15))  # paid out later
    one = stripe_payout("po_one", [
        txn("txn_a", "charge", 5000, a.charge_id, 175),
        txn("txn_b", "charge", 10000, b.charge_id, 320),
        txn("txn_c", "charge", 3000, c.charge_id, 117),
        txn("txn_re_b", "refund", -4000, "re_b"),
        txn("txn_du_c", "adjustment", -3000, "du_c", category="dispute"),
        txn("txn_fee", "stripe_fee", -200, None),
        txn("txn_x", "charge", 2500, "ch_elsewhere", 102),
    ])
    two = stripe_payout("po_two", [txn("txn_d", "charge", 2000, d.charge_id, 88)],
                        arrival=int(datetime(2026, 3, 20, tzinfo=UTC).timestamp()))
    stripe_payout("po_april", [txn("txn_q", "stripe_fee", -100, None)],
                  arrival=int(datetime(2026, 4, 2, tzinfo=UTC).timestamp()))
    db.session.commit()
    return one, two


def test_each_payout_equals_its_ledger_rows_and_their_export(app, paid_out):
    result = reconcile(MARCH)
    one, two = result.payouts
    assert [p.label for p in result.payouts] == ["po_one", "po_two"]  # April's is not shown
    assert (one.charges, one.gross, one.fees, one.refunds, one.disputes) == (
        3, 18000, 612, 4000, 3000)
    assert one.net == 18000 - 612 - 4000 - 3000
    assert (one.unmatched_count, one.unmatched_net) == (2, -200 + 2500 - 102)
    assert one.amount == 12586
    assert one.amount == one.net + one.unmatched_net and one.difference == 0
    assert one.transactions == 7 and one.provider_fees == 175 + 320 + 117 + 102
    # Its rows fall on 27 February to 5 March (New York): the export of those days.
    assert [d.isoformat() for d in one.span] == ["2026-02-27", "2026-03-05"]
    assert two.fees_unknown == 1 and two.difference == -88  # the fee we do not know yet

    for line in (one, two):
        flt = export_filter(MARCH.__class__(*line.span, MARCH.zone), **line.filters)
        sums = totals(iter_rows(flt))["USD"]
        assert (sums["gross_minor"], sums["provider_fee_minor"], sums["refunded_minor"],
                sums["disputed_minor"], sums["dispute_fee_minor"], sums["net_minor"]) == (
            line.gross, line.fees, line.refunds, line.disputes, line.dispute_fees,
            line.net), line.label


def test_payouts_are_not_split_by_campaign(app, paid_out):
    from app.campaigns.models import Campaign

    campaign_id = db.session.query(Campaign.id).scalar()
    result = reconcile(MARCH, campaign_id=campaign_id)
    assert result.payouts == [] and result.payouts_note == PAYOUTS_CAMPAIGN_NOTE


def test_an_unknown_payout_is_refused_by_the_export(app, paid_out):
    with pytest.raises(FinanceError) as caught:
        export_filter(MARCH, payout="po_nowhere")
    assert caught.value.field == "payout" and "po_nowhere" in caught.value.message


def payout_rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-payout="([^"]+)"[^>]*>(.*?)</tr>', html, re.S))


def test_the_page_shows_each_payout_and_its_links_download_its_rows(client, finance,
                                                                   paid_out):
    html = client.get("/staff/finance/reconciliation",
                      query_string={"from": "2026-03-01", "to": "2026-03-31"}).get_data(
        as_text=True)
    shown = payout_rows(html)
    assert set(shown) == {"po_one", "po_two"}
    assert "data-payouts-note" not in html
    one = shown["po_one"]
    assert "March 12, 2026" in one and "<td data-status>paid</td>" in one
    assert 'data-figure="amount" data-minor="12586"' in one and "$125.86" in one
    assert 'data-minor="2198" data-count="2"' in one  # not in our ledger
    assert 'data-figure="difference" data-minor="0"' in one
    assert '<tr data-payout="po_one">' in html
    # po_two does not match: flagged in its row and above the table's end.
    assert 'data-figure="difference" data-minor="-88"' in shown["po_two"]
    assert "<strong>-$0.88</strong>" in shown["po_two"]
    assert '<tr data-payout="po_two" class="recon-off">' in html
    assert "1 payout does not match our ledger" in html

    links = re.findall(r'<a href="([^"]+)" data-figure="(\w+)" data-minor="(-?\d+)"', one)
    assert {figure for _, figure, _ in links} == set(COLUMN)
    href = unescape(links[0][0])
    assert "payout=po_one" in href and "from=2026-02-27" in href and "to=2026-03-05" in href
    rows = rows_of(client.get(href))
    assert len(rows) == 3  # gifts a, b and c: not z, not d, not the charge made elsewhere
    for link, figure, minor in links:
        assert unescape(link) == href  # every figure of the payout: the same rows
        assert column_sum(rows, COLUMN[figure]) == int(minor), figure
    form = re.search(r'<a href="([^"]+)">Export form</a>', one).group(1)
    page = client.get(unescape(form)).get_data(as_text=True)
    assert re.search(r'<input [^>]*name="payout"[^>]*value="po_one"', page)


def test_a_payout_not_listed_yet_says_so(client, finance, app):
    payouts.record_payout("stripe", {
        "id": "po_wait", "object": "payout", "amount": 1000, "currency": "usd",
        "status": "paid", "arrival_date": ARRIVES, "automatic": True, "created": ARRIVES,
        "reconciliation_status": "in_progress"})
    payouts.record_payout("stripe", {
        "id": "po_manual", "object": "payout", "amount": 500, "currency": "usd",
        "status": "paid", "arrival_date": ARRIVES, "automatic": False, "created": ARRIVES,
        "reconciliation_status": "not_applicable"})
    db.session.commit()
    html = client.get("/staff/finance/reconciliation",
                      query_string={"from": "2026-03-01", "to": "2026-03-31"}).get_data(
        as_text=True)
    row = payout_rows(html)["po_wait"]
    assert "has not listed this payout's transactions yet" in row
    assert "data-figure=\"gross\"" not in row
    assert "A manual payout" in payout_rows(html)["po_manual"]


@pytest.mark.parametrize(("payout", "message"), [
    ("po_nowhere", "There is no payout 'po_nowhere'."),
    ("po one;", "Write the payout's id as the provider shows it"),
])
def test_the_export_answers_a_bad_payout_beside_its_field(client, finance, paid_out, payout,
                                                         message):
    response = client.get("/staff/finance/exports/download", query_string={
        "from": "2026-03-01", "to": "2026-03-31", "payout": payout, "format": "csv"})
    assert response.status_code == 422 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    error = re.search(r'id="payout-error"[^>]*>(.*?)</', html, re.S)
    assert error and message in unescape(error.group(1))


def test_the_command_prints_the_payouts(app, paid_out, tmp_path):

    result = invoke(app, "reconcile", "--from", "2026-03-01", "--to", "2026-03-31")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()
             if line.strip().startswith("po_")}
    assert lines["po_one"][1:] == ["2026-03-12", "paid", "USD", "125.86", "103.88", "21.98",
                                   "2", "0.00"]
    assert lines["po_two"][1:] == ["2026-03-20", "paid", "USD", "19.12", "20.00", "0.00", "0",
                                   "-0.88", "<--", "DOES", "NOT", "MATCH"]
    assert "1 payout(s) do not match the ledger" in result.output

    out = tmp_path / "po_one.csv"
    exported = invoke(app, "export", "--from", "2026-02-27", "--to", "2026-03-05",
                      "--payout", "po_one", "-o", str(out))
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert sum(int(r["net_minor"]) for r in rows) == 10388 and len(rows) == 3
