"""Supporters and their accounts: finding and creating supporters, signing up and in, the links
we email (verification, sign-in, reset, email change), passwords and the profile.

Answers never tell whether an address has an account: sign-up, the sign-in link and the reset
request look the same from the outside whatever the address, and what differs goes by email to
the address's owner. They take the same time too: each request does the same work whatever the
address (sign-up hashes the password even for an address that has an account) and queues a
job (``app.accounts.background``) that looks the address up, writes and mails off the request:
on a worker, or once the response is sent (``app.jobs.after_response``). An account can be
signed in to only once its address is proven.

Services take plain arguments, add and flush, and never commit; emails are queued to go out
after the caller's commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import jobs
from app.accounts import tokens
from app.accounts.models import Supporter
from app.accounts.passwords import Hasher, PasswordPolicy, WeakPassword
from app.accounts.sessions import end_all_sessions
from app.accounts.throttle import Refusal, SignInGuard
from app.accounts.tokens import AccountLinks
from app.extensions import db
from app.mail import OutboundEmail, queue_email


class AccountError(Exception):
    """A request that breaks a rule. ``field`` names the form field the message belongs
    beside (None: above the form)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class EmailNotVerified(Exception):
    """The password was right but the address is not proven yet; a new link was sent."""


RESEND_AFTER = timedelta(minutes=5)
WRONG_CREDENTIALS = "The email address or password is not right. Check both and try again."


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_supporter(email: str) -> Supporter | None:
    return db.session.scalar(select(Supporter).where(Supporter.email == normalize_email(email)))


def get_or_create_supporter(email: str, name: str = "") -> Supporter:
    """The supporter with this email, created if new. Safe against a concurrent insert of the
    same address: the loser of the race reads the winner's row."""
    email = normalize_email(email)
    supporter = db.session.scalar(select(Supporter).where(Supporter.email == email))
    if supporter is not None:
        if name and not supporter.name:
            supporter.name = name
        return supporter
    try:
        with db.session.begin_nested():
            supporter = Supporter(email=email, name=name)
            db.session.add(supporter)
    except IntegrityError:
        supporter = db.session.scalar(select(Supporter).where(Supporter.email == email))
    return supporter


def _mail(supporter_or_email: Supporter | str, template: str, subject: str, **context) -> None:
    if isinstance(supporter_or_email, Supporter):
        context.setdefault("supporter", supporter_or_email)
        to = supporter_or_email.email
    else:
        to = supporter_or_email
    # Each request sends its own message; the key only has to be unique.
    queue_email(to=to, subject=subject, template=f"account/{template}",
                dedupe_key=f"account-{template}:{uuid.uuid4().hex}", **context)


def _mailed_since(to: str, template: str, since: datetime) -> bool:
    return db.session.scalar(select(OutboundEmail.id).where(
        OutboundEmail.recipient == to,
        OutboundEmail.dedupe_key.startswith(f"account-{template}:", autoescape=True),
        OutboundEmail.created_at >= since).limit(1)) is not None


def _check_password(policy: PasswordPolicy, password: str, *, email: str, name: str = "",
                    field: str = "password") -> None:
    try:
        policy.check(password, email=email, name=name)
    except WeakPassword as exc:
        raise AccountError(field, str(exc)) from None


def _signed_in(supporter: Supporter, now: datetime) -> Supporter:
    if supporter.email_verified_at is None:
        supporter.email_verified_at = now  # following a link we emailed proves the address
    supporter.last_login_at = now
    return supporter


# -- sign-up and verification -----------------------------------------------------------------

@dataclass(frozen=True)
class AccountTools:
    """What the account services need from the settings."""

    hasher: Hasher
    policy: PasswordPolicy
    links: AccountLinks

    @classmethod
    def from_config(cls, config) -> AccountTools:
        return cls(hasher=Hasher.from_config(config), policy=PasswordPolicy.from_config(config),
                   links=AccountLinks.from_config(config))


def sign_up(*, email: str, password: str, name: str, tools: AccountTools) -> None:
    """Start an account; its owner finishes by following the link we email.

    A new address, or a guest donor's, gets the password and a verification link (a newer
    sign-up for an unproven address replaces the password, and so the older link). An address
    that already has an account gets an email saying so instead. The page looks the same and
    takes as long: here the password is only checked and hashed, whatever the address, and
    :func:`finish_sign_up` does the rest off the request.
    """
    email = normalize_email(email)
    name = name.strip()
    _check_password(tools.policy, password, email=email, name=name)
    from app.accounts.background import finish_sign_up_job  # it calls finish_sign_up here

    jobs.enqueue(finish_sign_up_job, email, name, jobs.Secret(tools.hasher.hash(password)))


def finish_sign_up(email: str, name: str, password_hash: str, *, links: AccountLinks) -> None:
    """What a sign-up does once its password is hashed, to the account as it stands now: an
    address with an account is told so by email; any other gets the password (a guest donor's
    supporter, or a new one) and a verification link."""
    supporter = find_supporter(email)
    if supporter is not None and supporter.is_verified:
        _mail(supporter, "exists", "You already have an account")
        return
    supporter = get_or_create_supporter(email, name)
    supporter.password_hash = password_hash
    db.session.flush()
    send_verification(supporter, links)


def mail_account_link(purpose: str, email: str, *, links: AccountLinks) -> None:
    """Email a sign-in (``tokens.SIGNIN``) or reset (``tokens.RESET``) link to the supporter
    with this address, if there is one (a guest donor too)."""
    supporter = find_supporter(email)
    if supporter is None or supporter.erased_at is not None:
        return
    if purpose == tokens.SIGNIN:
        send_signin_link(supporter, links)
    elif purpose == tokens.RESET:
        _mail(supporter, "reset", "Reset your password",
              token=links.make(tokens.RESET, supporter),
              minutes=links.max_ages[tokens.RESET] // 60)
    else:
        raise ValueError(f"no such account link to mail: {purpose!r}")


def send_signin_link(supporter: Supporter, links: AccountLinks) -> str:
    """Mail ``supporter`` a new sign-in link and return its token (the command line prints the
    link it mails: an older link stops working once a newer one is made)."""
    token = links.make(tokens.SIGNIN, supporter)
    _mail(supporter, "signin", "Your sign-in link", token=token,
          minutes=links.max_ages[tokens.SIGNIN] // 60)
    return token


def _queue_account_link(purpose: str, email: str) -> None:
    from app.accounts.background import mail_account_link_job  # it calls mail_account_link

    jobs.enqueue(mail_account_link_job, purpose, normalize_email(email))


def send_verification(supporter: Supporter, links: AccountLinks) -> None:
    _mail(supporter, "verify", "Confirm your email address to finish your account",
          token=links.make(tokens.VERIFY, supporter),
          hours=links.max_ages[tokens.VERIFY] // 3600)


def verify_email(token: str, *, links: AccountLinks, now: datetime) -> Supporter:
    """Follow a verification link: the address is proven and its owner signed in."""
    link = links.check(tokens.VERIFY, token)
    links.spend(link, now=now)
    return _signed_in(link.supporter, now)


# -- signing in -------------------------------------------------------------------------------

def authenticate(*, email: str, password: str, tools: AccountTools, now: datetime) -> Supporter:
    """The supporter this email and password sign in, or AccountError with one message for
    every wrong combination (unknown address, guest without password, wrong password)."""
    supporter = find_supporter(email)
    password_hash = supporter.password_hash if supporter is not None else None
    if not tools.hasher.verify(password_hash, password) or supporter.erased_at is not None:
        raise AccountError(None, WRONG_CREDENTIALS)
    if not supporter.is_verified:
        # Whoever knows the password may sign in again and again: one link per few minutes,
        # so that cannot flood the inbox.
        if not _mailed_since(supporter.email, "verify", now - RESEND_AFTER):
            send_verification(supporter, tools.links)
        raise EmailNotVerified(supporter.email)
    if tools.hasher.needs_rehash(password_hash):
        supporter.password_hash = tools.hasher.hash(password)
    return _signed_in(supporter, now)


class SignInRefused(Exception):
    """Too many failed sign-ins for this account (``app.accounts.throttle``); the password was
    not checked."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.reason)
        self.refusal = refusal


def sign_in_with_password(*, email: str, password: str, client: str, guard: SignInGuard | None,
                          tools: AccountTools, now: datetime) -> Supporter:
    """:func:`authenticate`, throttled by ``guard`` for this client (None: not throttled):
    SignInRefused, before the password is looked at, while this client must wait or use an
    emailed link; each wrong password counted, a right one forgets this client's failures."""
    if guard is None:
        return authenticate(email=email, password=password, tools=tools, now=now)
    refusal = guard.check(email, client)
    if refusal is not None:
        raise SignInRefused(refusal)
    try:
        supporter = authenticate(email=email, password=password, tools=tools, now=now)
    except AccountError:
        guard.failed(email, client)
        raise
    except EmailNotVerified:
        guard.succeeded(email, client)
        raise
    guard.succeeded(email, client)
    return supporter


def request_signin_link(email: str) -> None:
    """Email a one-time sign-in link to any supporter with this address, guests included
    (their gifts are theirs to see once they prove the address). Unknown: nothing is sent;
    the request does the same either way (:func:`mail_account_link` looks, off the request)."""
    _queue_account_link(tokens.SIGNIN, email)


def sign_in_with_link(token: str, *, links: AccountLinks, now: datetime) -> Supporter:
    link = links.check(tokens.SIGNIN, token)
    links.spend(link, now=now)
    return _signed_in(link.supporter, now)


# -- passwords --------------------------------------------------------------------------------

def request_password_reset(email: str) -> None:
    """Email a reset link to any supporter with this address (a guest's sets a first
    password). Unknown addresses get nothing; the request does the same either way."""
    _queue_account_link(tokens.RESET, email)


def reset_password(token: str, password: str, *, tools: AccountTools,
                   now: datetime) -> Supporter:
    """Set a new password from a reset link: signs out every other session, signs this one
    in, and tells the owner by email."""
    link = tools.links.check(tokens.RESET, token)
    supporter = link.supporter
    _check_password(tools.policy, password, email=supporter.email, name=supporter.name)
    tools.links.spend(link, now=now)
    _set_password(supporter, password, tools.hasher)
    return _signed_in(supporter, now)


def change_password(supporter: Supporter, *, current: str, new: str,
                    tools: AccountTools) -> None:
    """Change (or, for an account without one, set) the password; signs out other sessions."""
    if supporter.password_hash and not tools.hasher.verify(supporter.password_hash, current):
        raise AccountError("current_password", "Your current password is not right.")
    _check_password(tools.policy, new, email=supporter.email, name=supporter.name,
                    field="new_password")
    _set_password(supporter, new, tools.hasher)


def _set_password(supporter: Supporter, password: str, hasher: Hasher) -> None:
    had_password = bool(supporter.password_hash)
    supporter.password_hash = hasher.hash(password)
    end_all_sessions(supporter)
    _mail(supporter, "password_changed",
          "Your password was changed" if had_password else "Your password was set",
          first=not had_password)


# -- profile and email change ----------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    name: str
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


def update_profile(supporter: Supporter, profile: Profile) -> None:
    if not profile.name.strip():
        raise AccountError("name", "Enter your name.")
    supporter.name = profile.name.strip()
    for field in ("address_line1", "address_line2", "city", "region", "postal_code", "country"):
        value = getattr(profile, field)
        setattr(supporter, field, value.strip() or None if value else None)
    if supporter.country:
        supporter.country = supporter.country.upper()


def request_email_change(supporter: Supporter, *, new_email: str, password: str,
                         tools: AccountTools) -> None:
    """Ask to move the account to ``new_email``: takes effect once a link sent there is
    followed. If that address already belongs to someone, the mail sent there says so, and
    this page does not."""
    new_email = normalize_email(new_email)
    if supporter.password_hash and not tools.hasher.verify(supporter.password_hash, password):
        raise AccountError("password", "Your password is not right.")
    if new_email == supporter.email:
        raise AccountError("new_email", "That is already your email address.")
    if find_supporter(new_email) is not None:
        _mail(new_email, "email_taken", "Someone asked to use this address for an account")
        return
    supporter.pending_email = new_email
    db.session.flush()
    _mail(new_email, "email_change", "Confirm your new email address",
          token=tools.links.make(tokens.EMAIL_CHANGE, supporter, new=new_email),
          hours=tools.links.max_ages[tokens.EMAIL_CHANGE] // 3600, supporter=supporter)


def confirm_email_change(token: str, *, links: AccountLinks, now: datetime) -> Supporter:
    """Follow the link sent to the new address: the account moves there, the old address is
    told, and other sessions are signed out."""
    link = links.check(tokens.EMAIL_CHANGE, token)
    supporter = link.supporter
    new_email = link.claims["new"]
    if find_supporter(new_email) is not None:
        raise AccountError(None, "This address was taken by another account meanwhile, so "
                                 "your account keeps its current address.")
    links.spend(link, now=now)
    old_email = supporter.email
    supporter.email = new_email
    supporter.pending_email = None
    supporter.email_verified_at = now
    end_all_sessions(supporter)
    try:
        db.session.flush()
    except IntegrityError:  # the same address claimed by a concurrent request
        raise AccountError(None, "This address was taken by another account meanwhile.") \
            from None
    _mail(old_email, "email_changed", "Your account's email address was changed",
          new_email=new_email)
    return _signed_in(supporter, now)


def cancel_email_change(supporter: Supporter) -> None:
    supporter.pending_email = None

