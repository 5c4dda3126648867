"""Errors to Sentry, when ``SENTRY_DSN`` is set: sentry-sdk with its Flask integration (every
unhandled error in a request), its RQ integration (every job that failed its last try) and its
default logging integration (every record logged at ERROR, but the request and job lines of
``app.logs``). Without a DSN nothing is imported or started.

What is sent is kept clear of personal data and secrets: no request body, cookies, query
string, client address or local variables of the traceback's frames (a password, a token), and
the request's address is replaced by its route (the URL rule, ``/account/link/<token>``), since
emailed links carry tokens in their path.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    dsn = app.config["SENTRY_DSN"]
    if not dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import ignore_logger
    from sentry_sdk.integrations.rq import RqIntegration

    # A request's or job's own line (a 5xx, a failed job) repeats the error already sent.
    ignore_logger("newsfund.request")
    ignore_logger("newsfund.job")

    sentry_sdk.init(
        dsn=dsn, environment=app.config["SENTRY_ENVIRONMENT"],
        traces_sample_rate=app.config["SENTRY_TRACES_SAMPLE_RATE"],
        integrations=[FlaskIntegration(transaction_style="url"), RqIntegration()],
        send_default_pii=False, max_request_body_size="never", include_local_variables=False,
        before_send=scrub)


def scrub(event: dict, hint: dict) -> dict:
    """What leaves for Sentry: the request reduced to its method, route and a few headers."""
    request = event.get("request")
    if request:
        for key in ("query_string", "data", "cookies", "env"):
            request.pop(key, None)
        headers = request.get("headers") or {}
        request["headers"] = {name: value for name, value in headers.items()
                              if name.lower() in ("host", "user-agent", "x-request-id")}
        request["url"] = event.get("transaction") or ""
    return event
