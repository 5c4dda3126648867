"""A staff refund through Stripe: asked with an idempotency key from the refund form, recorded
in the ledger only when Stripe's charge.refunded event arrives."""

from __future__ import annotations

import json

from sqlalchemy import select
from werkzeug import Response

from app.audit import Actor
from app.extensions import db
from app.giving.models import GiftStatus
from app.giving.services import request_refund
from app.payments.models import Payment, PaymentKind
from app.payments.providers import current_provider
from tests.support import stripe_objects as so
from tests.support.stripe import deliver, form

STAFF = Actor(id=None, label="finance@levantwire.example")


def refunds_in_ledger() -> list[tuple[str, int]]:
    return [tuple(row) for row in db.session.execute(select(
        Payment.provider_id, Payment.amount).where(Payment.kind == PaymentKind.REFUND))]


def test_a_staff_refund_waits_for_stripes_event(client, paid_gift, httpserver):
    seen = []

    def create_refund(request):
        seen.append(request)
        return Response(json.dumps(so.refund(refund_id="re_staff_1", amount=1500,
                                             status="pending")),
                        content_type="application/json")

    httpserver.expect_request("/v1/refunds", method="POST").respond_with_handler(create_refund)
    result = request_refund(paid_gift, current_provider(), amount=1500,
                            reason="Donor gave twice", key="form-key-0123456789", actor=STAFF)
    db.session.commit()
    [request] = seen
    assert form(request) == {"amount": "1500", "payment_intent": "pi_test_1"}
    assert request.headers["Idempotency-Key"] == f"staff-refund-{paid_gift.id}-form-key-0123456789"
    assert (result.id, result.status) == ("re_staff_1", "pending")
    assert refunds_in_ledger() == []  # the click records nothing
    assert db.session.get(type(paid_gift), paid_gift.id).status is GiftStatus.PAID

    httpserver.expect_request("/v1/refunds", method="GET").respond_with_json(
        so.stripe_list([so.refund(refund_id="re_staff_1", amount=1500)], "/v1/refunds"))
    assert deliver(client, so.event("charge.refunded",
                                    so.charge(amount=5000, refunded=1500))).status_code == 200
    assert refunds_in_ledger() == [("re_staff_1", 1500)]
    assert db.session.get(type(paid_gift), paid_gift.id).status is \
        GiftStatus.PARTIALLY_REFUNDED
