"""Flask-Login wiring: how a session or "remember me" cookie becomes a supporter.

A cookie names ``"<id>:<key>"``, one sign-in kept on the server (``app.accounts.sessions``):
it works while that sign-in is open, and signing out, or out everywhere, ends it. Only a proven,
not erased address can be signed in as (``Supporter.is_active``).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, redirect, request, url_for
from flask_login.utils import decode_cookie, encode_cookie

from app.accounts.models import Supporter
from app.accounts.sessions import session_supporter
from app.db import utcnow
from app.extensions import login_manager


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "accounts.signin"
    login_manager.login_message = "Sign in to see that page."
    login_manager.login_message_category = "info"
    login_manager.refresh_view = "accounts.signin"
    login_manager.needs_refresh_message = "For your security, please sign in again to do that."
    login_manager.needs_refresh_message_category = "info"
    if not getattr(login_manager, "takes_fallback_keys", False):  # one manager, many apps
        login_manager._load_user_from_remember_cookie = _remembered_under_any_key(
            login_manager._load_user_from_remember_cookie)
        login_manager.takes_fallback_keys = True


def _remembered_under_any_key(load):
    """Flask-Login's reading of a "remember me" cookie, which takes only SECRET_KEY's
    signature, also taking one by a key being rotated out (``SECRET_KEY_FALLBACKS``): such a
    cookie is read as if SECRET_KEY had signed it."""

    def load_user(cookie: str):
        if decode_cookie(cookie) is None:
            for key in current_app.config["SECRET_KEY_FALLBACKS"] or ():
                payload = decode_cookie(cookie, key=key)
                if payload is not None:
                    cookie = encode_cookie(payload)
                    break
        return load(cookie)

    return load_user


@login_manager.user_loader
def load_supporter(user_id: str) -> Supporter | None:
    return session_supporter(user_id, now=utcnow(), max_age=session_max_age(current_app.config))


def session_max_age(config) -> timedelta:
    """How long a sign-in lasts on the server, remembered or not: as long as the remember
    cookie (``REMEMBER_DAYS``)."""
    duration = config["REMEMBER_COOKIE_DURATION"]
    return duration if isinstance(duration, timedelta) else timedelta(seconds=duration)


@login_manager.needs_refresh_handler
def needs_refresh():
    """Ask to sign in again, then come back to the page (for a form, the page it was on)."""
    flash(login_manager.needs_refresh_message, "info")
    back = safe_next(request.full_path if request.method == "GET" else request.referrer)
    return redirect(url_for("accounts.signin", next=back or url_for("accounts.overview")))


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None: never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        if parts.netloc != request.host:
            return None
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return None
    return target.rstrip("?") or None
