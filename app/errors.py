"""Error pages: a clear sentence and a way back, never a stack trace."""

import math

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import SecurityError

from app.core import UnreadableText
from app.extensions import limiter

MESSAGES = {
    400: ("This request could not be read", "Something in the request was malformed."),
    403: ("Not allowed", "You do not have access to this page."),
    404: ("Page not found", "We could not find that page. It may have moved or ended."),
    405: ("Not allowed", "That action is not available here."),
    410: ("This link has expired", "Links like this one last a limited time. Ask us for a new "
          "one, or start again from the home page."),
    413: ("Too much was sent", "This request was larger than we accept. Go back, shorten what "
          "you typed and send it again. Nothing was saved."),
    429: ("Too many attempts", "Too many requests in a short time. Wait a minute and try again."),
    503: ("Temporarily unavailable", "A service we depend on did not answer. Nothing was "
          "charged; please try again in a few minutes."),
    500: ("Something went wrong", "An error on our side stopped this page. Nothing was charged "
          "twice; please try again in a moment."),
}


# The blueprints whose forms move money (the donation form, the sandbox's card pages): a refused
# one must say that nothing was charged.
PAYMENT_BLUEPRINTS = frozenset({"giving", "sandbox", "payments"})


def wait_phrase(seconds: float) -> str:
    """How long to wait, rounded up so that trying again after it works: "1 minute",
    "14 minutes", up to 90 minutes in minutes, then "3 hours"."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes <= 90:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"


def register(app: Flask) -> None:
    def render(code: int, detail: str | None = None):
        title, message = MESSAGES[code]
        return render_template("errors/error.html", code=code, title=title,
                               message=detail or message), code

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        """Say what did not happen, for the form that was sent: a gift or a card form took no
        money; any other (staff, account, news) changed nothing."""
        outcome = ("Nothing was charged." if request.blueprint in PAYMENT_BLUEPRINTS
                   else "The change was not saved.")
        return render(400, "This form has expired or was sent without its security token. "
                           f"{outcome} Go back, reload the page and submit it again.")

    @app.errorhandler(UnreadableText)
    def unreadable_text(error):
        return render(400, error.description)

    @app.errorhandler(413)
    def too_large(error):
        """Say how much is accepted, when a limit was set (MAX_CONTENT_LENGTH, or the view's)."""
        limit = request.max_content_length
        if not limit:
            return render(413)
        return render(413, f"This request was larger than the {limit // 1024:,} kB we accept "
                           "here. Go back, shorten what you typed and send it again. Nothing "
                           "was saved.")

    @app.errorhandler(429)
    def too_many(error):
        """Say how long the limit holds, on the page and in ``Retry-After``, when the limiter
        refused the request (otherwise the general wording)."""
        seconds = limiter.retry_after()
        if seconds is None:
            return render(429)
        body, status = render(429, "Too many requests in a short time. Try again in "
                                   f"{wait_phrase(seconds)}.")
        return body, status, {"Retry-After": str(max(1, math.ceil(seconds)))}

    @app.errorhandler(SecurityError)
    def untrusted_host(error):
        # A request for a host we do not serve (app/urls.py). Rendered without the site's
        # layout: its links and the signed-in user would be looked up for that host.
        page = current_app.jinja_env.get_template("errors/untrusted_host.html")
        return page.render(public_url=current_app.config["PUBLIC_URL"],
                           org_name=current_app.config["ORG_NAME"]), 400

    for code in MESSAGES:
        if code not in (413, 429):
            app.register_error_handler(code, lambda error, code=code: render(code))
