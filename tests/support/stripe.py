"""Helpers for the tests of the Stripe provider (the fixtures that use them, ``stripe_app``,
``client``, ``gift`` and ``paid_gift``, are in ``tests/payments/conftest.py``): its settings
against a local server speaking Stripe's API (pytest-httpserver), signed webhook deliveries,
the API answers the event handlers ask for, and scenarios delivered in every order."""

from __future__ import annotations

import itertools
from urllib.parse import parse_qs

from sqlalchemy import delete, func, select

from app.extensions import db
from app.finance.models import Receipt
from app.giving.models import Gift, GiftStatus, RecurringPlan
from app.mail import OutboundEmail
from app.payments.models import Payment, ProviderEvent
from tests.support import stripe_objects as so

#: The test events are created at ``so.NOW`` (November 2025): one of ours that arrives early
#: is answered 409 (not parked) whatever today's date, unless a test sets a bound.
NEVER_PARK_HOURS = 1_000_000


def stripe_config(api_base: str, **extra) -> dict:
    return {"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_WEBHOOK_SECRET": so.WEBHOOK_SECRET,
            "STRIPE_API_BASE": api_base, "STRIPE_MAX_RETRIES": 0, "STRIPE_TIMEOUT_SECONDS": 2,
            "WEBHOOK_PARK_AFTER_HOURS": NEVER_PARK_HOURS, **extra}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def form(request) -> dict[str, str]:
    """The form a request to Stripe's API posted."""
    return {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}


def deliver(client, evt: dict, **sign_kwargs):
    """POST ``evt`` to the Stripe webhook, signed as Stripe signs it."""
    payload, headers = so.encode(evt, **sign_kwargs)
    return client.post("/webhooks/stripe", data=payload, headers=headers)


def serve_charge(httpserver, amount=5000, refunds=(), gift: str | None = None):
    """The API calls handlers make: the payment intent (with ``metadata.gift``, as our
    checkout sets it, when ``gift`` is given: a refund or dispute that comes first asks whose
    it is) with its charge and balance transaction expanded, and the charge's refunds."""
    charge = {**so.charge(amount=amount),
              "balance_transaction": so.balance_transaction(amount=amount)}
    httpserver.expect_request("/v1/payment_intents/pi_test_1", method="GET").respond_with_json(
        {**so.payment_intent(gift=gift, amount=amount), "latest_charge": charge})
    httpserver.expect_request("/v1/refunds", method="GET").respond_with_json(
        so.stripe_list(list(refunds), "/v1/refunds"))


def serve_invoice(httpserver, *, invoice_id: str, intent: str, amount: int, paid_at=so.NOW):
    httpserver.expect_request("/v1/invoice_payments", method="GET",
                              query_string={"invoice": invoice_id, "limit": "10"}
                              ).respond_with_json(so.stripe_list(
                                  [so.invoice_payment(invoice_id=invoice_id, intent=intent,
                                                      amount=amount, paid_at=paid_at)],
                                  "/v1/invoice_payments"))
    httpserver.expect_request(f"/v1/payment_intents/{intent}", method="GET").respond_with_json(
        so.payment_intent(intent_id=intent, gift=None, amount=amount, charge=None))


def ledger_state(gift_id: int):
    rows = db.session.execute(select(Payment.kind, Payment.amount, Payment.provider_id)
                              .order_by(Payment.provider_id)).all()
    return db.session.get(Gift, gift_id).status, rows


def deliver_until_done(client, events) -> int:
    """Deliver every event; redeliver those answered 409 (as Stripe retries) until all land."""
    pending, rounds = list(events), 0
    while pending:
        rounds += 1
        assert rounds <= len(events), "no progress"
        answers = [(evt, deliver(client, evt).status_code) for evt in pending]
        assert {code for _, code in answers} <= {200, 409}
        pending = [evt for evt, code in answers if code == 409]
    return rounds


def reset_ledger(gift):
    """Back to the moment the donor left for Stripe's checkout page."""
    for model in (Receipt, Payment, ProviderEvent, OutboundEmail):
        db.session.execute(delete(model))
    gift.status, gift.paid_at, gift.plan_id = GiftStatus.PENDING, None, None
    db.session.flush()
    db.session.execute(delete(Gift).where(Gift.id != gift.id))
    db.session.execute(delete(RecurringPlan))
    db.session.commit()


def converge_in_every_order(client, events: list, check) -> int:
    """Deliver ``events`` in each order of :func:`every_order`, from the state the test is in,
    as :func:`deliver_until_done` would (a first round in the order, then the events answered
    409 again until all land), and ``check(order)`` the end state of each. Returns how many
    orders were checked.

    Orders that begin alike share their beginning, delivered once: the first round walks the
    tree of the orders' prefixes depth first, each delivery under a SAVEPOINT of the test's
    connection that is rolled back once the orders below it are checked, so the next order
    starts from the same state without deleting and rebuilding the ledger. The end state is the
    one each order delivered alone reaches: after a prefix of the first round, the database
    and the events still owed (those answered 409, which rolls its request back and changes
    nothing) depend on that prefix only, and the rollback puts the database back where the
    prefix left it. Five events: 325 deliveries in the first rounds instead of 600."""
    orders = every_order(events)
    connection = db.session.get_bind()
    db.session.commit()  # whatever the test set up is part of every order's start

    def walk(depth: int, owed: list, below: list[tuple]) -> None:
        if depth == len(events):
            [order] = below
            if owed:
                deliver_until_done(client, owed)
            check(order)
            return
        following: dict[int, list[tuple]] = {}
        for order in below:
            following.setdefault(id(order[depth]), []).append(order)
        for group in following.values():
            evt = group[0][depth]
            savepoint = connection.begin_nested()
            answer = deliver(client, evt)
            code = answer.status_code
            # Never a duplicate: each order's events are new to the state it starts from.
            assert code == 409 or (code, answer.get_json()["duplicate"]) == (200, False), (
                evt["type"], code)
            walk(depth + 1, owed + [evt] if code == 409 else owed, group)
            db.session.rollback()  # ends the session's own savepoint, inside ours
            savepoint.rollback()
    walk(0, [], orders)
    db.session.expire_all()
    return len(orders)


def every_order(events: list) -> list[tuple]:
    """The delivery orders a convergence test runs: on SQLite every permutation; on
    PostgreSQL, which runs the same code and differs only in the database, each rotation of
    ``events`` and its reverse. There every event comes first once and last once (so each is
    the one that arrives early, and the one that arrives last after all the others), and every
    pair of events comes in both relative orders (a rotation starting at either of the two
    puts it first), at 2n orders instead of n!."""
    if db.session.get_bind().dialect.name == "sqlite":
        return list(itertools.permutations(events))
    rotations = [tuple(events[i:] + events[:i]) for i in range(len(events))]
    orders = {tuple(map(id, order)): order for order in rotations + [o[::-1] for o in rotations]}
    return list(orders.values())


def one_time_scenario(g: str) -> list[dict]:
    """The events of a one-time gift of $50 (``g``: its public id): paid (the checkout and
    the payment intent), $20 refunded, $30 disputed and the dispute won."""
    return [
        so.event("checkout.session.completed", so.checkout_session(gift=g, amount=5000)),
        so.event("payment_intent.succeeded", so.payment_intent(gift=g, amount=5000)),
        so.event("charge.refunded", so.charge(amount=5000, refunded=2000)),
        so.event("charge.dispute.created", so.dispute(amount=3000)),
        so.event("charge.dispute.closed", so.dispute(amount=3000, status="won")),
    ]


def make_monthly(gift, httpserver) -> None:
    """Make ``gift`` monthly, and serve its subscription's first invoice (in_test_1, paid by
    pi_test_sub_1) as the handlers ask for it."""
    gift.frequency = gift.frequency.MONTHLY
    db.session.commit()
    httpserver.expect_request("/v1/invoice_payments", method="GET").respond_with_json(
        so.stripe_list([so.invoice_payment(amount=5000)], "/v1/invoice_payments"))
    httpserver.expect_request("/v1/payment_intents/pi_test_sub_1", method="GET"
                              ).respond_with_json(so.payment_intent(
                                  intent_id="pi_test_sub_1", gift=None, amount=5000,
                                  charge=None))
