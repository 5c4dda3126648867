"""Links that leave the app (emails, the command line, a payment provider's return and cancel
addresses) and the hosts the app answers to.

Every such link is built by :func:`external_url` from ``PUBLIC_URL``, never from the request's
``Host`` header: a request sent with ``Host: evil.example`` must not make us mail a victim a
sign-in link to evil.example. It works the same in a request, in a background job (RQ) and in a
CLI command, since it needs no request, only the app.

Requests whose ``Host`` (or ``X-Forwarded-Host`` from a trusted proxy) is not ``PUBLIC_URL``'s
host or one listed in the ``TRUSTED_HOSTS`` setting are refused with 400 (Flask's own
``TRUSTED_HOSTS`` check, with the list computed here by :func:`trusted_hosts`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from werkzeug import routing
from werkzeug.exceptions import SecurityError
from werkzeug.routing import MapAdapter

#: Names of this machine: with a PUBLIC_URL on one of them (development, ``make run``), the
#: others are trusted too, so http://127.0.0.1:5000 and http://localhost:5000 both open the app.
#: Links still use PUBLIC_URL's own.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def public_url_parts(public_url: str):
    """``PUBLIC_URL`` split, checked: an http(s) address with a host. Raises ValueError."""
    parts = urlsplit(public_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"PUBLIC_URL must be an http:// or https:// address with a host, such "
                         f"as https://donate.example.org, not {public_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"PUBLIC_URL must have no query or fragment: {public_url!r}")
    return parts


def trusted_hosts(public_url: str, extra: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """The hosts requests may name: PUBLIC_URL's, the extra ones (a comma-separated string or a
    list; a name starting with a dot admits its subdomains), and, when PUBLIC_URL is on this
    machine, every loopback name. Ports are not compared."""
    if isinstance(extra, str):
        extra = extra.split(",")
    host = public_url_parts(public_url).hostname
    hosts = [host]
    if host in LOOPBACK_HOSTS:
        hosts += LOOPBACK_HOSTS
    hosts += [name.strip().lower() for name in extra or () if name.strip()]
    return list(dict.fromkeys(hosts))


class Rule(routing.Rule):
    """Werkzeug's URL rule, whose two URL builders are made the first time a URL is built from
    it rather than when the rule is added.

    Werkzeug writes and compiles Python code for each rule's builders (with and without extra
    query arguments): for this app's hundred-odd rules that was nine tenths of building the app
    (60 of 70 ms on a quiet machine), paid by every process at start (each gunicorn worker, each
    command) and by every app the tests build, for rules most of those processes never build a
    URL from. The builders are Werkzeug's own, made by its own ``_compile_builder`` (a private
    method, hence the Werkzeug version range in pyproject.toml); only the moment changes.
    Two threads building the first URL of a rule at once each make the same builder.
    """

    def _compile_builder(self, append_unknown: bool = True):
        make = super()._compile_builder
        name = "_build_unknown" if append_unknown else "_build"

        def build(rule: Rule, *args, **kwargs):
            builder = make(append_unknown).__get__(rule, None)
            setattr(rule, name, builder)
            return builder(*args, **kwargs)

        return build


def _adapter(app: Flask) -> MapAdapter:
    """A URL map bound to PUBLIC_URL (host, scheme and any path prefix), made once per value."""
    public_url = app.config["PUBLIC_URL"]
    cached = app.extensions.get("public_url_adapter")
    if cached is None or cached[0] != public_url:
        parts = public_url_parts(public_url)
        adapter = app.url_map.bind(parts.netloc, script_name=parts.path.rstrip("/") or "/",
                                   url_scheme=parts.scheme)
        cached = app.extensions["public_url_adapter"] = (public_url, adapter)
    return cached[1]


def external_url(endpoint: str, **values) -> str:
    """The absolute address of ``endpoint`` (a full name, ``"accounts.signin"``) on PUBLIC_URL,
    with ``values`` filling its rule and the rest as the query string, like ``url_for``;
    ``_anchor`` adds a fragment. Works in a request, a job or a CLI command alike."""
    anchor = values.pop("_anchor", None)
    url = _adapter(current_app).build(endpoint, values, force_external=True)
    return f"{url}#{anchor}" if anchor else url


def _refuse_untrusted_host() -> None:
    """Refuse a request for an unknown host before anything else looks at it (session user,
    CSRF check, the view). Flask records the refusal as the request's routing exception."""
    if isinstance(request.routing_exception, SecurityError):
        raise request.routing_exception


def init_app(app: Flask) -> None:
    """Check PUBLIC_URL, set Flask's TRUSTED_HOSTS from it and the ``TRUSTED_HOSTS`` setting
    (the extra hosts), and offer ``external_url`` to templates. Rules added from here on are
    :class:`Rule` (called before any blueprint is registered)."""
    app.url_rule_class = Rule
    app.config["TRUSTED_HOSTS"] = trusted_hosts(app.config["PUBLIC_URL"],
                                                app.config.get("TRUSTED_HOSTS"))
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_untrusted_host)
    app.add_template_global(external_url)
