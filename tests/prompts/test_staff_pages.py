"""The fundraisers' prompt pages: the form (CSRF, the rules, the audit log), the results per
variant with the z-test, the daily email's switch."""

from __future__ import annotations

from sqlalchemy import select

from app.audit import AuditEntry
from app.extensions import db
from app.prompts.models import EmailAppeal, Prompt, PromptCount, Reset, Segment
from app.prompts.services import attribution, two_proportion_z
from tests.factories import paid_gift, refund
from tests.support.staff import csrf_token

FORM = {"name": "Bar for engaged readers", "placement": "bottom_bar", "segment": "engaged",
        "priority": "10", "min_views": "5", "category": "", "starts_at": "2026-12-01T09:00",
        "ends_at": "2027-01-15T09:00", "enabled": "y", "start_at_view": "2",
        "every_nth_view": "3", "max_times": "4", "reset": "weekly", "gave_hide_days": "14",
        "headline_a": "You read us often", "body_a": "Help keep it free.", "button_a": "Give",
        "headline_b": "", "body_b": "", "button_b": ""}


def test_a_fundraiser_creates_and_edits_a_prompt(client, as_role, campaign):
    as_role("fundraiser")
    assert client.get("/staff/prompts/new").status_code == 200
    response = client.post("/staff/prompts/new", data={
        **FORM, "campaign": str(campaign.id), "csrf_token": csrf_token(client)})
    assert response.status_code == 303, response.get_data(as_text=True)
    prompt = db.session.scalars(select(Prompt)).one()
    assert (prompt.segment, prompt.min_views, prompt.reset, prompt.max_times) == (
        Segment.ENGAGED, 5, Reset.WEEKLY, 4)
    assert prompt.variants == ("a",)
    assert response.headers["Location"].endswith(f"/staff/prompts/{prompt.id}")
    edit = client.post(f"/staff/prompts/{prompt.id}/edit", data={
        **FORM, "campaign": str(campaign.id), "headline_b": "Four articles this week",
        "button_b": "Support us", "csrf_token": csrf_token(client)})
    assert edit.status_code == 303
    assert prompt.variants == ("a", "b")
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "prompt")).all()
    assert sorted(actions) == ["prompt.create", "prompt.update"]
    page = client.get("/staff/prompts/").get_data(as_text=True)
    assert "Bar for engaged readers" in page and "At least N article views (5)" in page


def test_the_forms_rules_and_its_csrf(client, as_role, campaign):
    as_role("fundraiser")
    data = {**FORM, "campaign": str(campaign.id), "min_views": ""}
    refused = client.post("/staff/prompts/new", data={**data, "csrf_token": csrf_token(client)})
    assert refused.status_code == 422
    assert "how many article views" in refused.get_data(as_text=True)
    backwards = client.post("/staff/prompts/new", data={
        **FORM, "campaign": str(campaign.id), "ends_at": "2026-11-01T09:00",
        "csrf_token": csrf_token(client)})
    assert backwards.status_code == 422
    assert client.post("/staff/prompts/new", data=data).status_code in (400, 422)
    assert db.session.scalars(select(Prompt)).all() == []


def test_results_per_variant_gifts_and_money_from_the_ledger(client, as_role, campaign,
                                                              prompt, now):
    db.session.add_all([
        PromptCount(prompt_id=prompt.id, variant="a", day=now.date(), impressions=1000,
                    dismissals=40, clicks=30),
        PromptCount(prompt_id=prompt.id, variant="b", day=now.date(), impressions=1000,
                    dismissals=20, clicks=60)])
    paid_gift(campaign, "a@example.org", amount=5000,
              utm={"utm_content": attribution(prompt.id, "a")})
    _, charge = paid_gift(campaign, "b1@example.org", amount=2500,
                          utm={"utm_content": attribution(prompt.id, "b")})
    refund(charge, 500, now)
    for n in range(2):
        paid_gift(campaign, f"b{n + 2}@example.org", amount=1000,
                  utm={"utm_content": attribution(prompt.id, "b")})
    paid_gift(campaign, "other@example.org", amount=9900)  # not through the prompt
    as_role("fundraiser")
    page = client.get(f"/staff/prompts/{prompt.id}")
    assert page.status_code == 200
    html = " ".join(page.get_data(as_text=True).split())
    assert '<td class="num">1,000</td> <td class="num">40</td> <td class="num">30</td> ' \
           '<td class="num">1</td> <td class="num">$50.00</td> <td class="num">0.10%</td>' in html
    assert '<td class="num">1,000</td> <td class="num">20</td> <td class="num">60</td> ' \
           '<td class="num">3</td> <td class="num">$40.00</td> <td class="num">0.30%</td>' in html
    significance = two_proportion_z(1, 1000, 3, 1000)
    assert f"z = {significance.z:.2f}, p = {significance.p_value:.3f}" in html
    assert "Keep this newsroom free" in html  # the preview of B


def test_the_two_proportion_z_test():
    # 200/1000 against 250/1000: pooled 0.225, z = 0.05 / sqrt(.225 * .775 * .002) = 2.6774.
    result = two_proportion_z(200, 1000, 250, 1000)
    assert round(result.z, 4) == 2.6774
    assert round(result.p_value, 4) == 0.0074 and result.significant
    assert not two_proportion_z(20, 1000, 22, 1000).significant
    assert two_proportion_z(0, 100, 0, 100) is None
    assert two_proportion_z(1, 0, 1, 10) is None


def test_the_daily_email_appeal_switch(client, as_role, campaign):
    as_role("fundraiser")
    on = client.post(f"/staff/prompts/email-appeal/{campaign.id}",
                     data={"on": "1", "csrf_token": csrf_token(client)})
    assert on.status_code == 303
    assert db.session.get(EmailAppeal, campaign.id) is not None
    assert "Switch off" in client.get("/staff/prompts/").get_data(as_text=True)
    client.post(f"/staff/prompts/email-appeal/{campaign.id}",
                data={"on": "0", "csrf_token": csrf_token(client)})
    assert db.session.get(EmailAppeal, campaign.id) is None
    assert db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.action == "campaign.email_appeal")).all() == ["campaign.email_appeal"] * 2
    assert client.post(f"/staff/prompts/email-appeal/{campaign.id}",
                       data={"on": "1"}).status_code == 400
