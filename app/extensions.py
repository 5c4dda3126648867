"""Flask extensions, created unbound and bound to the app in ``create_app``; the declarative
base and its constraint naming convention."""

import time

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
csrf = CSRFProtect()


class RouteLimiter(Limiter):
    """Flask-Limiter, checked by its decorators only.

    The app sets no default or application-wide limit: each limited route says so with
    ``@limiter.limit``, whose wrapper checks it. So the before-request pass Flask-Limiter makes
    over every request, which would find nothing to do on every other route (a page view, a
    webhook, the health check) and costs ~60 us each, is taken out. Should a default or
    application limit (or a blueprint's) ever be configured, the pass stays.
    """

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        # One limiter serves every app made in this process (the tests make many): a new app's
        # storage is taken to be up until it fails.
        self._storage_dead = False
        limits = self.limit_manager
        hooks = app.before_request_funcs[None]
        if self._check_request_limit in hooks and not (
                limits._default_limits or limits._application_limits or limits._blueprint_limits):
            hooks.remove(self._check_request_limit)

    def call(self, method: str, *args):
        """Run a rate-limiting strategy's method (``hit``, ``test``, ``get_window_stats``,
        ``clear``) for code that counts on its own (``app.accounts.throttle``): on the storage,
        or, once it cannot be reached, on this process's memory, as the decorators do
        (``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``) until they find the storage back."""
        try:
            return getattr(self.limiter, method)(*args)
        except Exception:
            if not self._in_memory_fallback_enabled or self._storage_dead:
                raise
            self.logger.warning("Rate limit storage unreachable - falling back to memory",
                                exc_info=True)
            self._storage_dead = True
            return getattr(self.limiter, method)(*args)

    def retry_after(self) -> float | None:
        """Seconds until the limits that refused this request let the next one through: the
        latest reset among those checked here that are used up (the one that refused it, and
        any other this request just used up). None when no limit was checked (a 429 not of the
        limiter's making) or the limits' storage cannot be read.

        Flask-Limiter stops at the first limit broken, checking the shortest windows first, so a
        longer limit that is also used up but was not reached is not counted: the next attempt
        after this wait then gets a 429 of its own, naming that longer wait.
        """
        resets = []
        try:
            for checked in self.current_limits:
                reset, remaining = checked.window
                if checked.breached or remaining <= 0:
                    resets.append(reset)
        except Exception:  # storage unreachable: the page falls back to its general wording
            self.logger.warning("Could not read the rate limits' reset time", exc_info=True)
            return None
        return max(0.0, max(resets) - time.time()) if resets else None


limiter = RouteLimiter(key_func=get_remote_address, default_limits=[])
login_manager = LoginManager()
