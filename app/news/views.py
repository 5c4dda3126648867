"""News pages: "My news" with its follow buttons, and the daily email's subscribe, confirm and
one-click unsubscribe links."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from app import jobs
from app.db import utcnow
from app.extensions import csrf, db, limiter
from app.news import personal_data  # noqa: F401 - registers news in data export and erasure
from app.news.forms import SOURCES, FollowForm, SubscribeForm
from app.news.models import CategoryKind, SubscriberStatus
from app.news.services import (
    ConfirmResult,
    Consent,
    LinkError,
    LinkProblem,
    Signer,
    confirm_subscription,
    followed_category_ids,
    get_category,
    list_categories,
    mask_email,
    recent_articles,
    set_follow,
    subscribe,
    subscriber_for_supporter,
    subscriber_for_unsubscribe,
    unsubscribe,
)
from app.prompts.status_views import remember_status
from app.urls import external_url

bp = Blueprint("news", __name__, url_prefix="/news")

MY_NEWS_ARTICLES = 30


def signer() -> Signer:
    return Signer.from_config(current_app.config)


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) \
        == "application/json"


# ------------------------------------------------------------------ My news


def _my_articles(followed: set[int]):
    if followed:
        return recent_articles(followed, limit=MY_NEWS_ARTICLES), True
    return recent_articles(None, limit=12), False


@bp.get("/my")
@login_required
def my_news():
    categories = list_categories()
    followed = followed_category_ids(current_user.id)
    articles, personal = _my_articles(followed)
    subscriber = subscriber_for_supporter(current_user.id, current_user.email)
    form = SubscribeForm(formdata=None, email=current_user.email, source="my-news")
    unsubscribe_url = None
    if subscriber is not None and subscriber.status is SubscriberStatus.CONFIRMED:
        unsubscribe_url = url_for("news.unsubscribe_page",
                                  token=signer().unsubscribe_token(subscriber.id,
                                                                   subscriber.email))
    return render_template(
        "news/my.html", groups=[(kind, [c for c in categories if c.kind is kind])
                                for kind in CategoryKind],
        followed=followed, articles=articles, personal=personal, follow_form=FollowForm(),
        subscriber=subscriber, form=form, unsubscribe_url=unsubscribe_url)


@bp.post("/follow/<slug>")
@login_required
def follow(slug: str):
    category = get_category(slug) or abort(404)
    form = FollowForm()
    if not form.validate():
        abort(400)
    following = set_follow(current_user.id, category, form.follow.data == "1")
    jobs.commit()
    if _wants_json():
        followed = followed_category_ids(current_user.id)
        articles, personal = _my_articles(followed)
        return jsonify(
            category=category.slug, name=category.name, following=following,
            message=(f"You follow {category.name}." if following
                     else f"You no longer follow {category.name}."),
            articles_html=render_template("news/_articles.html", articles=articles,
                                          personal=personal))
    return redirect(url_for("news.my_news", _anchor=f"category-{category.slug}"), 303)


# ------------------------------------------------------------------ the daily email


def _subscribe_page(form: SubscribeForm, status: int = 200):
    return render_template("news/subscribe.html", form=form), status


@bp.route("/subscribe", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_SUBSCRIBE"], methods=["POST"])
def subscribe_page():
    if request.method == "GET":
        email = current_user.email if current_user.is_authenticated else None
        return _subscribe_page(SubscribeForm(formdata=None, email=email))
    form = SubscribeForm()
    if not form.validate():  # (CSRFProtect has already refused a missing or stale token)
        if form.source.errors:
            form.source.data = "subscribe"
        return _subscribe_page(form, 422)
    start_subscription(form.email.data, SOURCES[form.source.data])
    return redirect(url_for("news.check_inbox"), 303)


def start_subscription(email: str, source: str) -> None:
    """Subscribe ``email`` with the consent given on ``source`` (a form's path) and the
    settings' consent version, mail its confirmation link (double opt-in) and commit. For this
    page's form and the embedded sign-up box (``app.embeds``) alike."""
    config = current_app.config
    subscribe(
        email,
        Consent(version=config["NEWS_CONSENT_VERSION"], source=source, at=utcnow()),
        signer=signer(),
        confirm_url=lambda token: external_url("news.confirm", token=token),
        unsubscribe_url=lambda token: external_url("news.unsubscribe_page", token=token),
        mail_from=config["NEWS_MAIL_FROM"],
        confirm_days=config["NEWS_CONFIRM_MAX_AGE_SECONDS"] // 86400,
        resend_after=timedelta(seconds=config["NEWS_CONFIRM_RESEND_SECONDS"]),
    )
    jobs.commit()


@bp.get("/subscribe/check-inbox")
def check_inbox():
    return render_template("news/check_inbox.html")


LINK_PROBLEMS = {
    # problem: (status, title, message)
    LinkProblem.INVALID: (400, "This link is not valid",
                          "The link is incomplete or has been changed. Open it again from the "
                          "email, or copy the whole link into your browser."),
    LinkProblem.EXPIRED: (410, "This link has expired",
                          "Confirmation links last {days} days. Subscribe again and we will "
                          "send you a new one."),
    LinkProblem.UNKNOWN: (410, "This subscription no longer exists",
                          "We have no subscription for this link any more. You can subscribe "
                          "again at any time."),
}


def _link_problem(error: LinkError):
    db.session.rollback()
    status, title, message = LINK_PROBLEMS[error.problem]
    days = current_app.config["NEWS_CONFIRM_MAX_AGE_SECONDS"] // 86400
    return render_template("news/message.html", title=title, message=message.format(days=days),
                           subscribe_again=error.problem is not LinkProblem.INVALID), status


@bp.get("/confirm/<token>")
def confirm(token: str):
    try:
        result, subscriber = confirm_subscription(
            token, signer=signer(), max_age=current_app.config["NEWS_CONFIRM_MAX_AGE_SECONDS"],
            now=utcnow())
    except LinkError as error:
        return _link_problem(error)
    jobs.commit()
    if result is ConfirmResult.UNSUBSCRIBED:
        return render_template(
            "news/message.html", title="You have unsubscribed since",
            message="This address unsubscribed after this link was sent, so we have not "
                    "subscribed it again. To receive the daily email, subscribe again.",
            subscribe_again=True), 410
    response = make_response(render_template(
        "news/confirmed.html", already=result is ConfirmResult.ALREADY, email=subscriber.email))
    remember_status(response, subscriber=True)  # for the prompts (app.prompts)
    return response


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str):
    """The link in the email's footer: a page with one button, so that a mail scanner that
    opens links cannot unsubscribe anyone."""
    try:
        subscriber = subscriber_for_unsubscribe(token, signer=signer())
    except LinkError as error:
        return _link_problem(error)
    if subscriber.status is SubscriberStatus.UNSUBSCRIBED:
        return render_template("news/unsubscribed.html", already=True)
    return render_template("news/unsubscribe.html", masked_email=mask_email(subscriber.email),
                           token=token)


@bp.post("/unsubscribe/<token>")
@csrf.exempt  # RFC 8058: mail clients POST here with no token and no cookie; the link signs it
def unsubscribe_now(token: str):
    try:
        changed, _ = unsubscribe(token, signer=signer(), now=utcnow())
    except LinkError as error:
        return _link_problem(error)
    jobs.commit()
    return render_template("news/unsubscribed.html", already=not changed)
