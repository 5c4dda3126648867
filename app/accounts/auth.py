"""Flask-Login wiring: how a session or "remember me" cookie becomes a supporter.

A session names ``"<id>:<session_version>"``; a reset or email change raises the version, so
every other session and remember cookie of the account stops working at once. Only a proven,
not erased address can be signed in as (``Supporter.is_active``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, flash, redirect, request, url_for

from app.accounts.models import Supporter
from app.extensions import db, login_manager


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "accounts.signin"
    login_manager.login_message = "Sign in to see that page."
    login_manager.login_message_category = "info"
    login_manager.refresh_view = "accounts.signin"
    login_manager.needs_refresh_message = "For your security, please sign in again to do that."
    login_manager.needs_refresh_message_category = "info"


@login_manager.user_loader
def load_supporter(user_id: str) -> Supporter | None:
    supporter_id, _, version = user_id.partition(":")
    if not supporter_id.isdigit() or not version.isdigit():
        return None
    supporter = db.session.get(Supporter, int(supporter_id))
    if supporter is None or not supporter.is_active or supporter.session_version != int(version):
        return None
    return supporter


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
