"""With ``REDIS_URL``, sign-up, the sign-in link and reset queue one job whatever the address and
write or mail nothing themselves; a worker does the rest (``app/accounts/background.py``)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.accounts.models import Supporter
from app.accounts.passwords import Hasher
from app.extensions import db
from app.mail import OutboundEmail
from tests.support.accounts import PASSWORD, make_account, post_form
from tests.support.jobs import work


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_requests_queue_the_same_job_and_the_worker_does_the_rest(make_app, database_url,
                                                                        app, redis_url, outbox):
    make_account("noa@example.org")
    queue_app = make_app(database_url, REDIS_URL=redis_url)
    client = queue_app.test_client()
    queue = queue_app.extensions["jobs"].queue
    supporters, mails = count(Supporter), count(OutboundEmail)
    for path, fields in [("/account/signin/link", {}), ("/account/reset", {}),
                         ("/account/signup", {"password": PASSWORD, "name": "Dana"})]:
        for email in ("noa@example.org", "dana@example.org"):
            assert post_form(client, path, email=email, **fields).status_code == 303
    jobs_queued = queue.get_jobs()
    assert [job.func_name.rsplit(".", 1)[1] for job in jobs_queued] == [
        "mail_account_link_job"] * 4 + ["finish_sign_up_job"] * 2
    assert [job.args[:2] for job in jobs_queued] == [
        ("signin", "noa@example.org"), ("signin", "dana@example.org"),
        ("reset", "noa@example.org"), ("reset", "dana@example.org"),
        ("noa@example.org", "Dana"), ("dana@example.org", "Dana")]
    # The password's hash travels with the sign-up job, never the password, and stays out of
    # the job's description (which RQ logs).
    password_hash = jobs_queued[-1].args[2]
    assert Hasher.from_config(queue_app.config).verify(password_hash, PASSWORD)
    assert "argon2" not in jobs_queued[-1].description
    assert (count(Supporter), count(OutboundEmail)) == (supporters, mails)

    work(queue_app)

    dana = db.session.scalar(select(Supporter).where(Supporter.email == "dana@example.org"))
    assert dana is not None and dana.email_verified_at is None
    assert Hasher.from_config(queue_app.config).verify(dana.password_hash, PASSWORD)
    subjects = sorted((m["To"], m["Subject"]) for m in outbox())
    assert subjects == [
        ("dana@example.org", "Confirm your email address to finish your account"),
        ("noa@example.org", "Reset your password"),
        ("noa@example.org", "You already have an account"),
        ("noa@example.org", "Your sign-in link"),
    ]
