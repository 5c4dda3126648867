"""Finance fixtures: the request-scoped client (as in the account and staff tests), a finance
staff member signed in on it, and a month of ledger movements around March 2026 (New York)."""

from __future__ import annotations

import pytest

from app.giving.models import Frequency
from app.staff.models import Role
from tests.factories import dispute, make_campaign, paid_gift, refund
from tests.finance.support import at
from tests.support.accounts import RequestScopedClient
from tests.support.staff import make_person, sign_in_as


@pytest.fixture
def client(app):
    app.test_client_class = RequestScopedClient
    return app.test_client()


@pytest.fixture
def finance(client):
    """The client signed in as a member of the finance staff."""
    sign_in_as(client, make_person("finance@levantwire.example", roles=(Role.FINANCE,)))


@pytest.fixture
def ledger_rows(app):
    """Gifts in and around March 2026 (New York), with fees, refunds and disputes."""
    appeal = make_campaign("appeal", fund_code="4100-ANNIV")
    ramadan = make_campaign("ramadan", title="Ramadan Kareem")
    gifts = {}
    gifts["plain"], _ = paid_gift(appeal, amount=5000, when=at(2026, 3, 2, 15), fee=175)
    gifts["fee_unknown"], _ = paid_gift(appeal, amount=2500, when=at(2026, 3, 3, 15))
    gifts["partly_refunded"], charge = paid_gift(ramadan, amount=10000,
                                                 when=at(2026, 3, 4, 15), fee=320)
    refund(charge, 4000, at(2026, 3, 20, 12))
    gifts["disputed"], charge = paid_gift(ramadan, amount=3000, when=at(2026, 3, 5, 15),
                                          fee=117)
    dispute(charge, 3000, at(2026, 3, 25, 12))
    gifts["dispute_won"], charge = paid_gift(appeal, amount=1800, when=at(2026, 3, 6, 15),
                                             fee=82, frequency=Frequency.MONTHLY)
    dispute(charge, 1800, at(2026, 3, 26, 12), won=True)
    # Paid in February, refunded in March: a March row with its refund only.
    gifts["february"], charge = paid_gift(appeal, amount=7000, when=at(2026, 2, 10, 15),
                                          fee=233)
    refund(charge, 7000, at(2026, 3, 10, 12))
    # 23:30 on 31 March in New York is already April in UTC: still March.
    gifts["late"], _ = paid_gift(appeal, amount=1000, when=at(2026, 4, 1, 3, 30), fee=59)
    # 22:00 on 28 February in New York is 1 March in UTC: February.
    gifts["early"], _ = paid_gift(appeal, amount=1200, when=at(2026, 3, 1, 3, 0), fee=65)
    gifts["april"], _ = paid_gift(appeal, amount=9900, when=at(2026, 4, 2, 15), fee=317)
    return gifts
