"""A dashboard page is a read: its GET commits nothing, and a snapshot it had to rebuild is
stored by a job once the response is sent."""

from __future__ import annotations

from flask import has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db
from app.staff import rollup
from tests.factories import make_campaign


def test_a_dashboard_get_commits_nothing_and_its_snapshot_is_stored_after(client, as_role):
    campaign = make_campaign("quiet-appeal")
    db.session.commit()
    as_role("fundraiser")
    assert db.session.get(rollup.DashboardSnapshot, campaign.id) is None  # the GET builds one
    commits = []

    def committed(session) -> None:
        commits.append("in the request" if has_request_context() else "after it")

    event.listen(Session, "after_commit", committed)
    try:
        response = client.get(f"/staff/campaigns/{campaign.slug}")
        assert response.status_code == 200
        response.close()
    finally:
        event.remove(Session, "after_commit", committed)
    assert "in the request" not in commits
    assert "after it" in commits  # the listener sees commits: the job's
    db.session.expire_all()
    assert db.session.get(rollup.DashboardSnapshot, campaign.id) is not None
