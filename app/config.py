"""Settings: embedded defaults, then environment variables, then ``instance/config.py``.

Every external system has a default that needs no keys and no servers (SQLite in ``instance/``,
the sandbox payment provider, an outbox folder for mail, inline jobs); the real component is one
setting away.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def _json(name: str, default):
    value = os.environ.get(name)
    return json.loads(value) if value not in (None, "") else default


# Membership levels, lowest first. A supporter holds the highest level whose minimum they reach
# in any one currency (amounts in different currencies are never added together): the net
# giving of the last 12 months, where an active monthly or yearly plan counts as a full year of
# its current amount. Each level has its own perks plus those of the levels below it.
MEMBERSHIP_PERKS = {
    "supporter_letter": {
        "name": "The supporters' letter",
        "description": "A letter from the newsroom each quarter on what your support made "
                       "possible.",
    },
    "briefings": {
        "name": "Live briefings",
        "description": "A monthly online briefing with our correspondents, with time for "
                       "your questions.",
    },
    "daily_digest_plus": {
        "name": "The daily email, extended",
        "description": "Our correspondents' analysis added to the daily news email.",
    },
    "founder_call": {
        "name": "A call with the founder",
        "description": "A yearly call with our founder for Patrons.",
    },
    "annual_report_credit": {
        "name": "Thanked in the annual report",
        "description": "Your name among our Patrons in the annual report, if you wish.",
    },
}
MEMBERSHIP_LEVELS = [
    {"key": "friend", "name": "Friend", "perks": ["supporter_letter"],
     "minimum": {"USD": 100, "EUR": 100, "GBP": 100, "ILS": 400}},
    {"key": "sustainer", "name": "Sustainer", "perks": ["briefings", "daily_digest_plus"],
     "minimum": {"USD": 12000, "EUR": 12000, "GBP": 10000, "ILS": 45000}},
    {"key": "patron", "name": "Patron", "perks": ["founder_call", "annual_report_credit"],
     "minimum": {"USD": 100000, "EUR": 100000, "GBP": 80000, "ILS": 350000}},
]


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


def signing_keys(config) -> list[str]:
    """The keys signed data is checked with: ``SECRET_KEY_FALLBACKS`` (older keys, still
    accepted while a key is rotated), then ``SECRET_KEY``, in the order itsdangerous takes them
    (it signs with the last, and accepts a signature by any)."""
    return [*(config.get("SECRET_KEY_FALLBACKS") or ()), config["SECRET_KEY"]]


def load_settings(instance_path: Path) -> dict:
    env = os.environ.get
    return {
        "SECRET_KEY": _secret_key(instance_path),
        # Keys being rotated out, comma-separated: what they signed (sessions, remember-me
        # cookies, form tokens, emailed links) is still accepted; new signatures use SECRET_KEY.
        "SECRET_KEY_FALLBACKS": [key.strip() for key in env("SECRET_KEY_FALLBACKS", "").split(",")
                                 if key.strip()],
        "SQLALCHEMY_DATABASE_URI": env("DATABASE_URL")
        or f"sqlite:///{instance_path / 'newsfund.db'}",
        # Payments: the sandbox provider unless a Stripe key is configured.
        "STRIPE_SECRET_KEY": env("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": env("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": env("STRIPE_API_BASE", ""),
        "STRIPE_TIMEOUT_SECONDS": _int("STRIPE_TIMEOUT_SECONDS", 10),
        "STRIPE_MAX_RETRIES": _int("STRIPE_MAX_RETRIES", 2),
        "WEBHOOK_TOLERANCE_SECONDS": _int("WEBHOOK_TOLERANCE_SECONDS", 300),
        # An event of ours that still waits for another this long after the provider created
        # it is parked (acknowledged, left for staff in the operations inbox) instead of
        # being answered 409 again: Stripe retries for about three days.
        "WEBHOOK_PARK_AFTER_HOURS": _int("WEBHOOK_PARK_AFTER_HOURS", 72),
        # Mail: .eml files in instance/outbox unless MAIL_URL names an SMTP server.
        "MAIL_URL": env("MAIL_URL", ""),
        "MAIL_OUTBOX_DIR": env("MAIL_OUTBOX_DIR") or str(instance_path / "outbox"),
        "MAIL_FROM": env("MAIL_FROM", "Levant Wire <giving@levantwire.example>"),
        # Background jobs (and rate limits) on Redis when set; inline jobs otherwise.
        "REDIS_URL": env("REDIS_URL", ""),
        "JOBS_QUEUE": env("JOBS_QUEUE", "newsfund"),
        # Seconds before each retry of a failed job (its count is the number of retries).
        "JOBS_RETRY_INTERVALS": [10, 60, 300, 1800, 3600, 6 * 3600],
        # The periodic work `flask jobs scheduler` starts (app/schedule.py): the daily news
        # email at this local time (HH:MM in ORG_TIMEZONE), the rest every so many seconds;
        # empty or 0 turns one off.
        "SCHEDULE_DAILY_EMAIL_AT": env("SCHEDULE_DAILY_EMAIL_AT", "06:00"),
        "SCHEDULE_SANDBOX_RENEW_SECONDS": _int("SCHEDULE_SANDBOX_RENEW_SECONDS", 3600),
        "SCHEDULE_SETTLE_FEES_SECONDS": _int("SCHEDULE_SETTLE_FEES_SECONDS", 900),
        "SCHEDULE_PROCESS_PENDING_SECONDS": _int("SCHEDULE_PROCESS_PENDING_SECONDS", 300),
        "SCHEDULE_SEND_MAIL_SECONDS": _int("SCHEDULE_SEND_MAIL_SECONDS", 300),
        "SCHEDULE_ROLLUP_SECONDS": _int("SCHEDULE_ROLLUP_SECONDS", 600),
        "SCHEDULE_STRIPE_SYNC_SECONDS": _int("SCHEDULE_STRIPE_SYNC_SECONDS", 3600),
        "SCHEDULER_TICK_SECONDS": _float("SCHEDULER_TICK_SECONDS", 15.0),
        # Watching it: logs (one JSON line per record on stderr, or "text"), /metrics for
        # loopback clients or this bearer token, errors to Sentry when a DSN is set.
        "LOG_FORMAT": env("LOG_FORMAT", "json"),
        "LOG_LEVEL": env("LOG_LEVEL", "INFO"),
        "METRICS_TOKEN": env("METRICS_TOKEN", ""),
        "SENTRY_DSN": env("SENTRY_DSN", ""),
        "SENTRY_ENVIRONMENT": env("SENTRY_ENVIRONMENT", "production"),
        "SENTRY_TRACES_SAMPLE_RATE": _float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        # How many reverse proxies (load balancer, nginx) stand in front of the app and set
        # X-Forwarded-For/-Proto/-Host; 0 when it is served directly.
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "RATELIMIT_GIVE": env("RATELIMIT_GIVE", "20 per minute;200 per hour"),
        "RATELIMIT_CHECKOUT": env("RATELIMIT_CHECKOUT", "20 per minute;200 per hour"),
        # Supporter accounts.
        "PASSWORD_MIN_LENGTH": _int("PASSWORD_MIN_LENGTH", 10),
        # Argon2id cost (RFC 9106's second recommended profile by default).
        "ARGON2_TIME_COST": _int("ARGON2_TIME_COST", 3),
        "ARGON2_MEMORY_KIB": _int("ARGON2_MEMORY_KIB", 65536),
        "ARGON2_PARALLELISM": _int("ARGON2_PARALLELISM", 4),
        # How long the links we email stay valid, in seconds.
        "SIGNIN_LINK_MAX_AGE": _int("SIGNIN_LINK_MAX_AGE", 15 * 60),
        "VERIFY_LINK_MAX_AGE": _int("VERIFY_LINK_MAX_AGE", 3 * 24 * 3600),
        "RESET_LINK_MAX_AGE": _int("RESET_LINK_MAX_AGE", 3600),
        "EMAIL_CHANGE_LINK_MAX_AGE": _int("EMAIL_CHANGE_LINK_MAX_AGE", 24 * 3600),
        # "Remember me" keeps a supporter signed in on that browser for this long.
        "REMEMBER_COOKIE_DURATION": timedelta(days=_int("REMEMBER_DAYS", 30)),
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Behind https (production), cookies are sent over https only.
        "SESSION_COOKIE_SECURE": bool(_int("SECURE_COOKIES", 0)),
        "REMEMBER_COOKIE_SECURE": bool(_int("SECURE_COOKIES", 0)),
        # ... and browsers are told to use https only, for this long (Strict-Transport-Security;
        # 0: not sent), on this host and its subdomains unless HSTS_INCLUDE_SUBDOMAINS=0.
        "HSTS_MAX_AGE": _int("HSTS_MAX_AGE", 365 * 24 * 3600),
        "HSTS_INCLUDE_SUBDOMAINS": bool(_int("HSTS_INCLUDE_SUBDOMAINS", 1)),
        # The largest request body taken, in bytes, refused with 413 before it is read: every
        # form (the longest, a campaign's 20,000-character letter, is ~120 kB in Hebrew or
        # Arabic), and each text field of a multipart form; webhooks have their own (Stripe's
        # events are at most a few hundred kB).
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 256 * 1024),
        "MAX_FORM_MEMORY_SIZE": _int("MAX_FORM_MEMORY_SIZE", 128 * 1024),
        "WEBHOOK_MAX_BYTES": _int("WEBHOOK_MAX_BYTES", 1024 * 1024),
        # The largest CSV an import takes (`flask finance import`, `flask supporters import`
        # and their staff pages' uploads), refused before it is read: a million gifts in the
        # export's columns are about 400 MB.
        "IMPORT_MAX_BYTES": _int("IMPORT_MAX_BYTES", 512 * 1024 * 1024),
        # How long a staff page's import keeps the uploaded file and its reports (which hold
        # the refused rows' donor data): past it only the run's state and counts remain.
        "IMPORT_KEEP_DAYS": _int("IMPORT_KEEP_DAYS", 30),
        # Sign-in attempts per client address (every attempt, any account); failed ones per
        # account and client (past them that client waits, app/accounts/throttle.py), and per
        # account from anywhere (past it, clients that failed on it are asked to use a link).
        "RATELIMIT_SIGNIN": env("RATELIMIT_SIGNIN", "20 per minute;200 per hour"),
        "RATELIMIT_SIGNIN_FAILURES": env("RATELIMIT_SIGNIN_FAILURES",
                                         "5 per minute;10 per 15 minutes;20 per day"),
        "RATELIMIT_SIGNIN_ACCOUNT": env("RATELIMIT_SIGNIN_ACCOUNT", "10 per 15 minutes"),
        # Forms that send mail (sign-up, sign-in link, password reset): per address, and per
        # email they are sent to, across all of those forms.
        "RATELIMIT_ACCOUNT_MAIL": env("RATELIMIT_ACCOUNT_MAIL", "10 per 10 minutes;50 per day"),
        "RATELIMIT_ACCOUNT_MAIL_PER_EMAIL": env("RATELIMIT_ACCOUNT_MAIL_PER_EMAIL",
                                                "3 per 15 minutes;10 per day"),
        "MEMBERSHIP_PERKS": _json("MEMBERSHIP_PERKS", MEMBERSHIP_PERKS),
        "MEMBERSHIP_LEVELS": _json("MEMBERSHIP_LEVELS", MEMBERSHIP_LEVELS),
        # The organisation.
        "ORG_NAME": env("ORG_NAME", "Levant Wire"),
        "ORG_LEGAL_NAME": env("ORG_LEGAL_NAME", "Levant Wire News Agency, Inc."),
        "ORG_ADDRESS": env("ORG_ADDRESS", "PO Box 2006, New York, NY 10163, USA"),
        "ORG_TAX_ID": env("ORG_TAX_ID", "EIN 00-0000000"),
        "ORG_TIMEZONE": env("ORG_TIMEZONE", "America/New_York"),
        # The operations inbox (/staff/operations): an active plan whose period ended this
        # long ago with no paid renewal is a renewal expected but not seen (a missed webhook);
        # a charge whose provider fee is still unknown this long after it is listed.
        "RENEWAL_GRACE_HOURS": _int("RENEWAL_GRACE_HOURS", 48),
        "FEE_UNKNOWN_AFTER_HOURS": _int("FEE_UNKNOWN_AFTER_HOURS", 24),
        # Where readers write, named in mail a stranger may have asked us to send them (a
        # dedication's note) to report it; empty: the address receipts come from (MAIL_FROM's).
        "ORG_CONTACT_EMAIL": env("ORG_CONTACT_EMAIL", ""),
        # How long a reader's campaign page may go without asking the database whether its
        # total moved (app/campaigns/pages.py); donors' pages always ask. Also how long each
        # process keeps an embedded campaign box and its figures (app/edge.py). 0: every
        # request.
        "CAMPAIGN_PAGE_RECHECK_SECONDS": _float("CAMPAIGN_PAGE_RECHECK_SECONDS", 1.0),
        # Each process serves the embeds' answers that are the same for every reader (the
        # script, the boxes) from its memory for a moment, ahead of Flask (app/edge.py); 0 off.
        # At most this many answers are kept per process.
        "EDGE_CACHE": bool(_int("EDGE_CACHE", 1)),
        "EDGE_CACHE_ENTRIES": _int("EDGE_CACHE_ENTRIES", 1024),
        # The founding date: the campaign calendar counts anniversaries from it.
        "ORG_FOUNDED": env("ORG_FOUNDED", "2006-12-10"),
        "ORG_LOCALE": env("ORG_LOCALE", "en_US"),
        # What a new campaign's form and a calendar draft start with.
        "CAMPAIGN_SIGNATORY_NAME": env("CAMPAIGN_SIGNATORY_NAME", "Miriam Haddad"),
        "CAMPAIGN_SIGNATORY_TITLE": env("CAMPAIGN_SIGNATORY_TITLE",
                                        "Founder and Editor-in-Chief"),
        "CAMPAIGN_DRAFT_GOAL_MINOR": _int("CAMPAIGN_DRAFT_GOAL_MINOR", 2_500_000),
        "TAX_STATEMENT": env(
            "TAX_STATEMENT",
            "Levant Wire News Agency, Inc. is a 501(c)(3) non-profit organisation. No goods or "
            "services were provided in exchange for this contribution, which is tax-deductible "
            "to the extent allowed by law.",
        ),
        # On a receipt for a gift with goods or services in return (a dinner ticket): {goods},
        # {value} (their fair-market value) and {deductible} (the gift less that) filled in.
        "TAX_STATEMENT_GOODS": env(
            "TAX_STATEMENT_GOODS",
            "Levant Wire News Agency, Inc. is a 501(c)(3) non-profit organisation. In exchange "
            "for this contribution you received {goods}, with an estimated fair-market value "
            "of {value}; the amount deductible to the extent allowed by law is {deductible}.",
        ),
        # On the year-end statement, below the list of the year's gifts.
        "TAX_STATEMENT_YEAR": env(
            "TAX_STATEMENT_YEAR",
            "Levant Wire News Agency, Inc. is a 501(c)(3) non-profit organisation. Except where "
            "noted above, no goods or services were provided in exchange for these "
            "contributions, which are tax-deductible to the extent allowed by law.",
        ),
        # PDF receipts and statements: a Unicode TrueType font and its bold cut (Debian's
        # fonts-dejavu-core) for names in any script; the page size (letter or A4).
        "PDF_FONT_PATH": env("PDF_FONT_PATH", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        "PDF_BOLD_FONT_PATH": env("PDF_BOLD_FONT_PATH",
                                  "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
        "PDF_PAGE_FORMAT": env("PDF_PAGE_FORMAT", "letter"),
        # News: the daily email, its consent text and the links it carries.
        # The site's canonical address: every link that leaves the app (mail, the command
        # line, the payment provider's return addresses) is built on it (app/urls.py), never
        # on a request's Host header.
        "PUBLIC_URL": env("PUBLIC_URL", "http://127.0.0.1:5000"),
        # The newsroom's sites that show the embeds (embed.js and the /embed/... boxes): their
        # origins (https://www.levantwire.example), comma-separated. Only they may frame the
        # /embed/ pages (CSP frame-ancestors) and read the embeds' JSON (CORS); every other
        # page, and every page when this is empty, keeps frame-ancestors 'none'.
        "EMBED_ORIGINS": env("EMBED_ORIGINS", ""),
        # Hosts requests may name besides PUBLIC_URL's (comma-separated; ".example.org" admits
        # its subdomains); any other is refused with 400.
        "TRUSTED_HOSTS": env("TRUSTED_HOSTS", ""),
        "NEWS_MAIL_FROM": env("NEWS_MAIL_FROM", "Levant Wire News <news@levantwire.example>"),
        # Bump the version whenever the text (or the terms it points to) changes: each
        # subscriber's row keeps the version they agreed to.
        "NEWS_CONSENT_VERSION": env("NEWS_CONSENT_VERSION", "2026-11-terms-v1"),
        "NEWS_CONSENT_TEXT": env(
            "NEWS_CONSENT_TEXT",
            "I agree to the Terms of Use and the Privacy Policy, and to receive the daily news "
            "email. I can unsubscribe at any time, with one click.",
        ),
        "NEWS_TERMS_URL": env("NEWS_TERMS_URL", "https://levantwire.example/terms"),
        "NEWS_PRIVACY_URL": env("NEWS_PRIVACY_URL", "https://levantwire.example/privacy"),
        "NEWS_CONFIRM_MAX_AGE_SECONDS": _int("NEWS_CONFIRM_MAX_AGE_SECONDS", 7 * 24 * 3600),
        # A pending address asked again within this time gets no second confirmation email.
        "NEWS_CONFIRM_RESEND_SECONDS": _int("NEWS_CONFIRM_RESEND_SECONDS", 600),
        "NEWS_DIGEST_MAX_ARTICLES": _int("NEWS_DIGEST_MAX_ARTICLES", 12),
        "NEWS_DIGEST_TOP_STORIES": _int("NEWS_DIGEST_TOP_STORIES", 8),
        # Feed category terms marking a correspondent's analysis (comma-separated, any letter
        # case): such stories make the daily email's analysis section, the daily_digest_plus
        # perk, and at most NEWS_DIGEST_ANALYSIS_STORIES of them a day.
        "NEWS_ANALYSIS_TERMS": tuple(t.strip() for t in env("NEWS_ANALYSIS_TERMS", "analysis")
                                     .split(",") if t.strip()),
        "NEWS_DIGEST_ANALYSIS_STORIES": _int("NEWS_DIGEST_ANALYSIS_STORIES", 5),
        "RATELIMIT_SUBSCRIBE": env("RATELIMIT_SUBSCRIBE", "10 per minute;50 per hour"),
        # A prompt box's counters (impressions, dismissals, the give link's clicks), per
        # address: a box counts once per article view, so a reader stays far below it.
        "RATELIMIT_PROMPT_EVENTS": env("RATELIMIT_PROMPT_EVENTS", "60 per minute;600 per hour"),
        # Giving rules. Amounts are in minor units of each currency.
        "CURRENCIES": tuple(env("CURRENCIES", "USD,EUR,GBP,ILS").split(",")),
        "GIFT_MIN_MINOR": _int("GIFT_MIN_MINOR", 100),
        "GIFT_MAX_MINOR": _int("GIFT_MAX_MINOR", 5_000_000),
        # Where a gift above GIFT_MAX_MINOR is arranged instead (named by the form's refusal);
        # empty: the address receipts come from (MAIL_FROM's).
        "MAJOR_GIFTS_EMAIL": env("MAJOR_GIFTS_EMAIL", ""),
        # The processing fee a donor may choose to cover: percent (in basis points) plus fixed.
        "FEE_PERCENT_BP": _int("FEE_PERCENT_BP", 290),
        "FEE_FIXED_MINOR": _int("FEE_FIXED_MINOR", 30),
    }
