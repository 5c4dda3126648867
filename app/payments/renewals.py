"""Renewals in the sandbox: it has no billing clock of its own, so the app charges each plan
that is due (``flask sandbox renew``, and the scheduler's ``sandbox-renew`` task)."""

from __future__ import annotations

import time
from datetime import datetime

from app.extensions import db
from app.giving.services import due_plans
from app.payments.ledger import last_card
from app.payments.providers import provider_named
from app.payments.sandbox_views import deliver


class RenewalError(Exception):
    """A renewal could not be charged or recorded; the message says which and why."""


def renew_due_plans(now: datetime) -> int:
    """Charge every sandbox plan due at ``now`` as its next monthly or yearly period, each
    through the webhook pipeline and applied at once (even with a job queue), committed one by
    one. A plan several periods behind catches up one period per pass. Returns the periods
    charged; raises :class:`RenewalError`."""
    provider = provider_named("sandbox")
    if provider is None:
        raise RenewalError("The sandbox is not the payment provider here.")
    renewed = 0
    while plans := due_plans("sandbox", now):
        for plan in plans:
            period = plan.periods_paid
            event = provider.invoice_paid_event(
                subscription_id=plan.provider_subscription_id,
                customer=plan.provider_customer_id, period=plan.periods_paid + 1,
                amount=plan.total, currency=plan.currency,
                metadata={"campaign": plan.campaign.slug}, now=time.time(),
                card=last_card(plan.id))
            deliver(provider, event, defer=False)
            if db.session.get(type(plan), plan.id).periods_paid == period:
                raise RenewalError(f"plan {plan.id}: the renewal was not recorded; see the "
                                   "provider event log")
            renewed += 1
    return renewed
