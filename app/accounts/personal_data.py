"""A supporter's personal data: "download my data" and "delete my account".

Other packages that keep data about a supporter (the news package's categories and follows, for
instance) take part through two small registries rather than being imported here::

    from app.accounts.personal_data import eraser, exporter

    @exporter("news")
    def export_news(supporter) -> dict | list: ...   # JSON-ready; becomes export["news"]

    @eraser("news")
    def erase_news(supporter) -> None: ...           # delete or blank what is theirs

Both run inside the caller's transaction and must not commit. Erasure cancels the supporter's
plans first (at the provider), then blanks every personal field while keeping the gifts and the
ledger rows finance must keep (amounts, dates, campaigns), now attached to an anonymous row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select

from app.accounts.models import LatestAccountLink, Supporter, UsedAccountLink
from app.accounts.sessions import end_all_sessions
from app.extensions import db
from app.giving.models import Gift, PlanStatus, RecurringPlan
from app.giving.services import cancel_plan
from app.mail import OutboundEmail
from app.payments.base import PaymentProvider
from app.payments.models import Payment, ProviderEvent

Exporter = Callable[[Supporter], Any]
Eraser = Callable[[Supporter], None]

EXPORTERS: dict[str, Exporter] = {}
ERASERS: dict[str, Eraser] = {}

EXPORT_FORMAT = 1


def exporter(name: str) -> Callable[[Exporter], Exporter]:
    def register(func: Exporter) -> Exporter:
        EXPORTERS[name] = func
        return func
    return register


def eraser(name: str) -> Callable[[Eraser], Eraser]:
    def register(func: Eraser) -> Eraser:
        ERASERS[name] = func
        return func
    return register


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- export ----------------------------------------------------------------------------------

def export_personal_data(supporter: Supporter, *, now: datetime) -> dict:
    """Everything held about the supporter, as JSON-ready data."""
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": _iso(now),
        "note": "Amounts are in minor units of their currency (cents): 2500 USD is $25.00.",
    }
    for name, export in {"account": _export_account, "gifts": _export_gifts,
                         "plans": _export_plans, "emails": _export_emails,
                         **EXPORTERS}.items():
        data[name] = export(supporter)
    return data


def export_json(supporter: Supporter, *, now: datetime) -> str:
    return json.dumps(export_personal_data(supporter, now=now), indent=2, ensure_ascii=False)


def _export_account(s: Supporter) -> dict:
    return {
        "email": s.email, "email_verified_at": _iso(s.email_verified_at),
        "pending_email": s.pending_email, "name": s.name, "has_password": bool(s.password_hash),
        "postal_address": {"line1": s.address_line1, "line2": s.address_line2, "city": s.city,
                           "region": s.region, "postal_code": s.postal_code,
                           "country": s.country},
        "created_at": _iso(s.created_at), "last_login_at": _iso(s.last_login_at),
        # Staff's note and labels about them, and a membership given (an import brings these).
        "note": s.note, "labels": s.labels, "comped_until": _iso(s.comped_until),
    }


def _export_gifts(s: Supporter) -> list[dict]:
    gifts = db.session.scalars(select(Gift).where(Gift.supporter_id == s.id).order_by(Gift.id))
    payments: dict[int, list[dict]] = {}
    for p in db.session.scalars(select(Payment).join(Gift).where(Gift.supporter_id == s.id)
                                .order_by(Payment.id)):
        payments.setdefault(p.gift_id, []).append({
            "kind": p.kind.value, "amount": p.amount, "currency": p.currency,
            "occurred_at": _iso(p.occurred_at)})
    return [{
        "reference": g.public_id, "campaign": g.campaign.title, "campaign_slug": g.campaign.slug,
        "frequency": g.frequency.value, "amount": g.amount, "fee_covered": g.fee_covered,
        "currency": g.currency, "status": g.status.value, "created_at": _iso(g.created_at),
        "paid_at": _iso(g.paid_at), "donor_name": g.donor_name, "anonymous": g.anonymous,
        "comment": g.comment, "dedication": g.dedication.value if g.dedication else None,
        "dedication_name": g.dedication_name, "dedication_email": g.dedication_email,
        "utm": {k: getattr(g, k) for k in ("utm_source", "utm_medium", "utm_campaign",
                                           "utm_term", "utm_content") if getattr(g, k)},
        "payments": payments.get(g.id, []),
    } for g in gifts]


def _export_plans(s: Supporter) -> list[dict]:
    plans = db.session.scalars(select(RecurringPlan).where(RecurringPlan.supporter_id == s.id)
                               .order_by(RecurringPlan.id))
    return [{
        "campaign": p.campaign.title, "frequency": p.frequency.value, "amount": p.amount,
        "fee_covered": p.fee_covered, "currency": p.currency, "status": p.status.value,
        "started_at": _iso(p.started_at), "next_charge_at": _iso(p.next_charge_at),
        "periods_paid": p.periods_paid, "canceled_at": _iso(p.canceled_at),
        "cancel_reason": p.cancel_reason,
    } for p in plans]


def _export_emails(s: Supporter) -> list[dict]:
    rows = db.session.scalars(select(OutboundEmail).where(OutboundEmail.recipient == s.email)
                              .order_by(OutboundEmail.id))
    return [{"subject": r.subject, "queued_at": _iso(r.created_at), "sent_at": _iso(r.sent_at)}
            for r in rows]


# -- erasure ---------------------------------------------------------------------------------

PERSONAL_EVENT_KEYS = frozenset({"email", "customer_email", "name", "customer_name", "phone",
                                 "address", "shipping", "receipt_email", "billing_details"})


def erase_supporter(supporter: Supporter, provider: PaymentProvider, *, now: datetime) -> None:
    """Cancel the supporter's plans, then anonymise them. Raises the provider's error (and
    changes nothing here) when a plan cannot be cancelled."""
    plans = db.session.scalars(select(RecurringPlan).where(
        RecurringPlan.supporter_id == supporter.id,
        RecurringPlan.status != PlanStatus.CANCELED))
    for plan in plans:
        cancel_plan(plan, provider, now=now, reason="The supporter deleted their account.")

    email = supporter.email
    gifts = db.session.scalars(select(Gift).where(Gift.supporter_id == supporter.id)).all()
    for erase in ERASERS.values():
        erase(supporter)

    # Messages to them, and the dedication notes that name them.
    db.session.execute(delete(OutboundEmail).where(or_(
        func.lower(OutboundEmail.recipient) == email,
        OutboundEmail.dedupe_key.in_([f"dedication:{gift.id}" for gift in gifts]),
    )).execution_options(synchronize_session=False))
    _scrub_provider_events(email)

    for gift in gifts:
        gift.donor_name = ""
        gift.comment = None
        gift.dedication = None
        gift.dedication_name = None
        gift.dedication_email = None
    for plan in db.session.scalars(select(RecurringPlan).where(
            RecurringPlan.supporter_id == supporter.id)):
        plan.cancel_reason = None

    db.session.execute(delete(UsedAccountLink).where(
        UsedAccountLink.supporter_id == supporter.id))
    db.session.execute(delete(LatestAccountLink).where(
        LatestAccountLink.supporter_id == supporter.id))
    supporter.email = f"erased-{supporter.id}@invalid"
    supporter.name = ""
    supporter.password_hash = None
    supporter.email_verified_at = None
    supporter.pending_email = None
    supporter.last_login_at = None
    supporter.address_line1 = supporter.address_line2 = None
    supporter.city = supporter.region = supporter.postal_code = supporter.country = None
    supporter.note = supporter.labels = None
    end_all_sessions(supporter)
    supporter.erased_at = now
    db.session.flush()


def _scrub_provider_events(email: str) -> None:
    """The raw webhook events we keep carry the donor's name and address in the provider's
    customer details: blank those fields in every event that mentions the address."""
    like = "%" + email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    events = db.session.scalars(select(ProviderEvent).where(
        func.lower(ProviderEvent.payload).like(like, escape="\\")))
    for event in events:
        try:
            payload = json.loads(event.payload)
        except ValueError:
            event.payload = "{}"
            continue
        event.payload = json.dumps(_redact(payload), separators=(",", ":"))


def _redact(value):
    if isinstance(value, dict):
        return {k: (None if k in PERSONAL_EVENT_KEYS else _redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value
