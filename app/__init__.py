"""The application factory. It assembles; it never migrates, writes or calls the network."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from flask import Flask

# The SQLAlchemy extension under another name: the package's ``db`` attribute becomes the
# module app.db as soon as that is imported.
from app.extensions import csrf, limiter, migrate
from app.extensions import db as sqlalchemy


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(Path(__file__).parent.parent / "templates"),
        static_folder=str(Path(__file__).parent.parent / "static"),
    )
    from app.config import load_settings, signing_keys

    app.config.from_mapping(load_settings(Path(app.instance_path)))
    app.config.from_pyfile("config.py", silent=True)
    if config:
        app.config.from_mapping(config)
    # Rate limits shared by every process through Redis when there is one; while it cannot be
    # reached, each process counts in its own memory rather than fail the request.
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    if app.config["REDIS_URL"]:
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": 2,
                                                            "socket_connect_timeout": 2})
    # Form tokens signed with SECRET_KEY, and still taken when signed by a key being rotated
    # out (Flask-WTF reads this setting as the key; itsdangerous takes a list).
    app.config.setdefault("WTF_CSRF_SECRET_KEY", signing_keys(app.config))
    app.config.setdefault(
        "SANDBOX_WEBHOOK_SECRET",
        hmac.new(app.config["SECRET_KEY"].encode(), b"sandbox-webhook", hashlib.sha256).hexdigest(),
    )

    from app import logs, sentry, urls

    logs.init_app(app)  # first: its line for each request sees the final response
    sentry.init_app(app)
    urls.init_app(app)  # PUBLIC_URL checked, the hosts requests may name

    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    sqlalchemy.init_app(app)
    from app.db import init_app as init_database

    init_database(app)  # SQLite's write lock taken up front, a server's connections tested
    migrate.init_app(app, sqlalchemy, directory=str(Path(__file__).parent.parent / "migrations"))
    limiter.init_app(app)  # limits are checked by the limited views themselves
    csrf.init_app(app)

    _import_models()

    from app.accounts.auth import init_login

    init_login(app)

    from app.payments.providers import init_provider

    init_provider(app)

    from app import core, errors, jobs, metrics

    jobs.init_app(app)
    app.session_interface = core.SessionInterface()
    # Before any route is added: ids in URLs within the database's range, and forms whose
    # bytes that are not UTF-8 can be told apart from text (both in app/core.py).
    app.url_map.converters["int"] = core.IdConverter
    app.request_class = core.Request
    from app.accounts.views import bp as accounts_bp
    from app.campaigns.views import bp as campaigns_bp
    from app.embeds.views import bp as embeds_bp
    from app.giving.views import bp as giving_bp
    from app.news.views import bp as news_bp
    from app.payments.views import bp as payments_bp
    from app.prompts.staff_views import bp as prompt_staff_bp
    from app.prompts.views import bp as prompts_bp
    from app.staff.views import bp as staff_bp

    app.register_blueprint(core.bp)
    metrics.init_app(app)
    app.register_blueprint(campaigns_bp)
    app.register_blueprint(giving_bp)
    app.register_blueprint(news_bp)
    app.register_blueprint(embeds_bp)
    app.register_blueprint(prompts_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(accounts_bp)
    from app.finance.views import bp as finance_bp

    app.register_blueprint(finance_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(prompt_staff_bp)
    from app.staff.operations_views import bp as operations_bp

    app.register_blueprint(operations_bp)
    from app.imports.views import bp as imports_bp

    app.register_blueprint(imports_bp)
    if app.extensions["payment_provider"].name == "sandbox":
        from app.payments.sandbox_views import bp as sandbox_bp

        app.register_blueprint(sandbox_bp)
    errors.register(app)

    from app.templating import register_filters

    register_filters(app)

    _register_commands(app)
    from app import edge

    edge.init_app(app)  # last: the outermost layer
    return app


def _register_commands(app: Flask) -> None:
    """Each feature package adds its own ``flask`` commands (``jobs worker`` is added by
    ``jobs.init_app``, with the job queue)."""
    from app import demo, mail
    from app.accounts import cli as accounts_cli
    from app.finance import cli as finance_cli
    from app.news import cli as news_cli
    from app.payments import cli as payments_cli
    from app.staff import cli as staff_cli

    for package in (demo, mail, accounts_cli, finance_cli, news_cli, payments_cli, staff_cli):
        package.init_app(app)


def _import_models() -> None:
    """Every model module, so that metadata (and Alembic) sees the whole schema."""
    import app.accounts.models  # noqa: F401
    import app.audit  # noqa: F401
    import app.campaigns.models  # noqa: F401
    import app.finance.models  # noqa: F401
    import app.giving.models  # noqa: F401
    import app.imports.models  # noqa: F401
    import app.mail  # noqa: F401
    import app.news.models  # noqa: F401
    import app.payments.models  # noqa: F401
    import app.prompts.models  # noqa: F401
    import app.schedule  # noqa: F401
    import app.staff.models  # noqa: F401
    import app.staff.rollup  # noqa: F401
