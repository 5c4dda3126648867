"""Settings: embedded defaults, then environment variables, then ``instance/config.py``.

Every external system has a default that needs no keys and no servers (SQLite in ``instance/``,
the sandbox payment provider, an outbox folder for mail, inline jobs); the real component is one
setting away.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _secret_key(instance_path: Path) -> str:
    """SECRET_KEY from the environment, else from ``instance/secret_key``.

    ``make run`` writes that file once. Without either, a random per-process key is used, which is
    fine for a single test process but breaks sessions across workers, so production sets one.
    """
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance_path / "secret_key"
    if key_file.is_file():
        return key_file.read_text().strip()
    return secrets.token_hex(32)


def load_settings(instance_path: Path) -> dict:
    env = os.environ.get
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": env("DATABASE_URL")
        or f"sqlite:///{instance_path / 'newsfund.db'}",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # Payments: the sandbox provider unless a Stripe key is configured.
        "STRIPE_SECRET_KEY": env("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": env("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": env("STRIPE_API_BASE", ""),
        "STRIPE_TIMEOUT_SECONDS": _int("STRIPE_TIMEOUT_SECONDS", 10),
        "STRIPE_MAX_RETRIES": _int("STRIPE_MAX_RETRIES", 2),
        "WEBHOOK_TOLERANCE_SECONDS": _int("WEBHOOK_TOLERANCE_SECONDS", 300),
        # Mail: .eml files in instance/outbox unless MAIL_URL names an SMTP server.
        "MAIL_URL": env("MAIL_URL", ""),
        "MAIL_OUTBOX_DIR": env("MAIL_OUTBOX_DIR") or str(instance_path / "outbox"),
        "MAIL_FROM": env("MAIL_FROM", "Levant Wire <giving@levantwire.example>"),
        "REDIS_URL": env("REDIS_URL", ""),
        # How many reverse proxies (load balancer, nginx) stand in front of the app and set
        # X-Forwarded-For/-Proto/-Host; 0 when it is served directly.
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "RATELIMIT_STORAGE_URI": env("REDIS_URL") or "memory://",
        "RATELIMIT_GIVE": env("RATELIMIT_GIVE", "20 per minute;200 per hour"),
        "RATELIMIT_CHECKOUT": env("RATELIMIT_CHECKOUT", "20 per minute;200 per hour"),
        # The organisation.
        "ORG_NAME": env("ORG_NAME", "Levant Wire"),
        "ORG_LEGAL_NAME": env("ORG_LEGAL_NAME", "Levant Wire News Agency, Inc."),
        "ORG_ADDRESS": env("ORG_ADDRESS", "PO Box 2006, New York, NY 10163, USA"),
        "ORG_TAX_ID": env("ORG_TAX_ID", "EIN 00-0000000"),
        "ORG_TIMEZONE": env("ORG_TIMEZONE", "America/New_York"),
        # The founding date: the campaign calendar counts anniversaries from it.
        "ORG_FOUNDED": env("ORG_FOUNDED", "2006-12-10"),
        "ORG_LOCALE": env("ORG_LOCALE", "en_US"),
        "TAX_STATEMENT": env(
            "TAX_STATEMENT",
            "Levant Wire News Agency, Inc. is a 501(c)(3) non-profit organisation. No goods or "
            "services were provided in exchange for this contribution, which is tax-deductible "
            "to the extent allowed by law.",
        ),
        # Giving rules. Amounts are in minor units of each currency.
        "CURRENCIES": tuple(env("CURRENCIES", "USD,EUR,GBP,ILS").split(",")),
        "GIFT_MIN_MINOR": _int("GIFT_MIN_MINOR", 100),
        "GIFT_MAX_MINOR": _int("GIFT_MAX_MINOR", 5_000_000),
        # The processing fee a donor may choose to cover: percent (in basis points) plus fixed.
        "FEE_PERCENT_BP": _int("FEE_PERCENT_BP", 290),
        "FEE_FIXED_MINOR": _int("FEE_FIXED_MINOR", 30),
    }
