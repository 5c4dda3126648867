"""Account work done off the request: what a sign-up, sign-in link or reset request writes and
mails.

Whether such a request finds an account, and so which mail it sends and what it writes, must not
show in how long its answer takes. So the request does the same whatever the address (a
sign-up hashes the password even for an address that has an account) and queues one of these
jobs, which looks the address up: on a worker with Redis, or once the response has been sent
when jobs run inline (``app.jobs.after_response``). A sign-up's job carries the password's
Argon2id hash (``jobs.Secret``: out of logs), never the password.
"""

from __future__ import annotations

from flask import current_app

from app import jobs
from app.accounts.services import finish_sign_up, mail_account_link
from app.accounts.tokens import AccountLinks


def _links() -> AccountLinks:
    return AccountLinks.from_config(current_app.config)


@jobs.after_response
def finish_sign_up_job(email: str, name: str, password_hash: str) -> None:
    finish_sign_up(email, name, str(password_hash), links=_links())
    jobs.commit()


@jobs.after_response
def mail_account_link_job(purpose: str, email: str) -> None:
    mail_account_link(purpose, email, links=_links())
    jobs.commit()
