"""Receipt PDFs: the supporter downloads their own, finance any; nobody else's."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.finance.models import Receipt
from app.giving.services import GivingRules, record_gift_payment, start_gift
from app.staff.models import Role
from app.templating import org_zone
from tests.factories import gift_request, make_campaign
from tests.support.staff import make_person, sign_in_as


@pytest.fixture
def receipt(app):
    campaign = make_campaign()
    gift = start_gift(campaign, gift_request(email="donor@example.org", donor_name="Noa Levi"),
                      rules=GivingRules.from_config(app.config), now=utcnow())
    db.session.flush()
    record_gift_payment(gift, provider="sandbox", provider_id="pi_dl", payment_intent_id="pi_dl",
                        amount=2500, currency="USD", occurred_at=utcnow(),
                        zone=org_zone())
    db.session.commit()
    return db.session.scalar(select(Receipt))


def test_the_donor_downloads_their_own_receipt(client, receipt):
    donor = make_person("donor@example.org", name="Noa Levi")
    sign_in_as(client, donor)
    page = client.get(f"/account/gifts/{receipt.gift.public_id}/receipt")
    assert f"/account/receipts/{receipt.number}.pdf" in page.get_data(as_text=True)
    response = client.get(f"/account/receipts/{receipt.number}.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert f'filename="receipt-{receipt.number}.pdf"' in response.headers["Content-Disposition"]


def test_another_supporter_gets_a_404(client, receipt):
    sign_in_as(client, make_person("someone-else@example.org"))
    assert client.get(f"/account/receipts/{receipt.number}.pdf").status_code == 404


def test_finance_downloads_any_receipt_and_others_may_not(client, receipt):
    sign_in_as(client, make_person("fundraiser@levantwire.example", roles=(Role.FUNDRAISER,)))
    assert client.get(f"/staff/finance/receipts/{receipt.number}.pdf").status_code == 403
    sign_in_as(client, make_person("finance@levantwire.example", roles=(Role.FINANCE,)))
    response = client.get(f"/staff/finance/receipts/{receipt.number}.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    assert client.get("/staff/finance/receipts/2099-999999.pdf").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, receipt):
    response = client.get(f"/account/receipts/{receipt.number}.pdf")
    assert response.status_code == 302 and "/account/signin" in response.headers["Location"]
