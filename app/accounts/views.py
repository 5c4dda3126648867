"""Account pages: sign-up, sign-in (password or emailed link), reset, the account itself.

Views are thin: a form, one service call, commit (``jobs.commit``) and redirect. Links from
emails open a page with a button, and are followed on its POST, so a mail scanner that fetches
the link does not use it up.
"""

from __future__ import annotations

import math
import uuid
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, fresh_login_required, login_required, login_user, logout_user

from app import jobs
from app.accounts import tokens
from app.accounts.auth import safe_next, session_max_age
from app.accounts.forms import (
    ButtonForm,
    CancelPlanForm,
    ChangeAmountForm,
    ChangePasswordForm,
    DeleteAccountForm,
    EmailChangeForm,
    EmailOnlyForm,
    FollowLinkForm,
    ProfileForm,
    ResetPasswordForm,
    RestartPlanForm,
    SignInForm,
    SignUpForm,
)
from app.accounts.history import (
    gift_for,
    giving_history,
    plan_for,
    restart_plan,
    supporter_plans,
)
from app.accounts.membership import current_levels, current_membership, requires_perk
from app.accounts.personal_data import erase_supporter, export_json
from app.accounts.services import (
    AccountError,
    AccountTools,
    EmailNotVerified,
    Profile,
    SignInRefused,
    cancel_email_change,
    change_password,
    confirm_email_change,
    normalize_email,
    request_email_change,
    request_password_reset,
    request_signin_link,
    reset_password,
    sign_in_with_link,
    sign_in_with_password,
    sign_up,
    update_profile,
    verify_email,
)
from app.accounts.sessions import end_all_sessions, end_session, open_session
from app.accounts.throttle import USE_LINK, Refusal, SignInGuard, client_key
from app.accounts.tokens import LinkError
from app.db import utcnow
from app.errors import wait_phrase
from app.extensions import db, limiter
from app.finance.receipts import current_receipt
from app.giving.models import PlanStatus
from app.giving.services import (
    GiftError,
    GivingRules,
    begin_checkout,
    cancel_plan,
    change_plan_amount,
)
from app.money import AmountError, parse_amount, to_decimal
from app.pages import field_error, form_page
from app.payments.base import ProviderError
from app.payments.providers import current_provider
from app.urls import external_url

bp = Blueprint("accounts", __name__, url_prefix="/account")


@bp.after_request
def private(response: Response) -> Response:
    """Account pages are personal: no shared cache keeps them, no back-button copy after
    signing out."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- rate limits ------------------------------------------------------------------------------

def _config(name: str):
    return lambda: current_app.config[name]


def _email_key() -> str:
    """Rate-limit key of the account a form names: its email, normalised (or, without one, the
    client's address)."""
    email = normalize_email(request.form.get("email") or request.form.get("new_email") or "")
    return f"email:{email[:254]}" if email else f"addr:{get_remote_address()}"


def _accepted(response: Response) -> bool:
    """The form went through (its redirect): a mail went out, or, to an address with no
    account, would have. A refused form (a weak password, a wrong current password, a
    malformed address) sent nothing and is not counted against the address. Accepted requests
    for unknown addresses count too, so that the limit cannot tell which addresses have
    accounts."""
    return response.status_code == 303


def _client() -> str:
    return client_key(get_remote_address())


# Every sign-in attempt per client, whatever the account; failed ones per account are counted
# by the sign-in guard (app/accounts/throttle.py), which slows a guesser without refusing the
# owner.
signin_limits = [
    limiter.limit(_config("RATELIMIT_SIGNIN"), key_func=_client, methods=["POST"]),
]
# Shared by every form that emails someone: per client address, every POST; per email
# address, only the requests accepted (so a donor who fumbles the sign-up password can still
# have a sign-in link sent).
mail_limits = [
    limiter.shared_limit(_config("RATELIMIT_ACCOUNT_MAIL"), scope="account-mail",
                         methods=["POST"]),
    limiter.shared_limit(_config("RATELIMIT_ACCOUNT_MAIL_PER_EMAIL"), scope="account-mail-email",
                         key_func=_email_key, methods=["POST"], deduct_when=_accepted),
]


def limited(limits):
    def decorate(view):
        for limit in limits:
            view = limit(view)
        return view
    return decorate


# -- helpers ----------------------------------------------------------------------------------

def _tools() -> AccountTools:
    return AccountTools.from_config(current_app.config)


def _sign_in(supporter, *, remember: bool) -> None:
    """Sign this browser in under a new sign-in kept on the server; the browser's previous one,
    if any, ends."""
    end_session(session.get("_user_id"))
    open_session(supporter, now=utcnow(), max_age=session_max_age(current_app.config))
    login_user(supporter, remember=remember)


def _sign_out() -> None:
    """End this browser's sign-in on the server, so that no copy of its session or remember
    cookie works any more, and forget it here. The caller commits."""
    if current_user.is_authenticated:  # loads the sign-in from the remember cookie if need be
        end_session(session.get("_user_id"))
    logout_user()
    session.pop("inbox", None)


def _check_inbox(email: str, kind: str):
    session["inbox"] = {"email": normalize_email(email), "kind": kind}
    return redirect(url_for("accounts.check_inbox"), 303)


def _link_problem(error: LinkError, purpose: str):
    status = 400 if error.kind == "invalid" else 410
    return render_template("accounts/link_problem.html", error=error, purpose=purpose), status


# -- sign-up, sign-in, sign-out ---------------------------------------------------------------

@bp.route("/signup", methods=["GET", "POST"])
@limited(mail_limits)
def signup():
    form = SignUpForm()
    if form.validate_on_submit():
        try:
            sign_up(email=form.email.data, password=form.password.data, name=form.name.data,
                    tools=_tools())
        except AccountError as exc:
            db.session.rollback()
            field_error(form, exc.field, exc.message)
        else:
            jobs.commit()
            return _check_inbox(form.email.data, "signup")
    return form_page("accounts/signup.html", form)


@bp.get("/check-email")
def check_inbox():
    inbox = session.get("inbox")
    if not inbox:
        return redirect(url_for("accounts.signin"))
    links = _tools().links
    return render_template("accounts/check_inbox.html", email=inbox["email"],
                           kind=inbox["kind"], max_ages=links.max_ages)


@bp.route("/signin", methods=["GET", "POST"])
@limited(signin_limits)
def signin():
    form = SignInForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        guard = SignInGuard.from_config(current_app.config, limiter.call) \
            if limiter.enabled else None
        try:
            supporter = sign_in_with_password(
                email=form.email.data, password=form.password.data, client=_client(),
                guard=guard, tools=_tools(), now=utcnow())
        except SignInRefused as exc:
            return _refused_sign_in(form, exc.refusal)
        except AccountError as exc:
            db.session.rollback()
            field_error(form, exc.field, exc.message)
        except EmailNotVerified:
            jobs.commit()
            return _check_inbox(form.email.data, "verify")
        else:
            _sign_in(supporter, remember=form.remember.data)
            jobs.commit()
            return redirect(safe_next(form.next.data) or url_for("accounts.overview"), 303)
    return form_page("accounts/signin.html", form)


def _refused_sign_in(form, refusal: Refusal):
    """The sign-in page, 429, saying how long this client must wait and offering an emailed
    link (the same words whether or not the address has an account)."""
    wait = wait_phrase(refusal.seconds)
    if refusal.reason == USE_LINK:
        form.form_errors.append(
            "This account has had many failed sign-ins lately. To keep it safe, sign in with a "
            f"link we email you, or try your password again in {wait}.")
    else:
        form.form_errors.append(
            "Too many failed sign-ins to this account from your connection. Try again in "
            f"{wait}, or sign in with a link we email you.")
    body = render_template("accounts/signin.html", form=form, offer_link=True)
    return body, 429, {"Retry-After": str(max(1, math.ceil(refusal.seconds)))}


@bp.route("/signin/link", methods=["GET", "POST"])
@limited(mail_limits)
def signin_link():
    return _ask_for_link(request_signin_link, "signin", "accounts/signin_link.html")


def _ask_for_link(send, kind: str, template: str):
    """A page asking for an address to email a link to (sign-in, reset): the link is sent and
    the 'check your inbox' page shown, the same whether or not the address has an account."""
    form = EmailOnlyForm()
    if form.validate_on_submit():
        send(form.email.data)
        jobs.commit()
        return _check_inbox(form.email.data, kind)
    return form_page(template, form)


def _follow(token: str, purpose: str, follow, template: str, done: str, **context):
    """The page an emailed link opens (GET), and following it (POST)."""
    links = _tools().links
    form = FollowLinkForm()
    try:
        link = links.check(purpose, token)
        if form.validate_on_submit():
            supporter = follow(token, links=links, now=utcnow())
            _sign_in(supporter, remember=form.remember.data)
            jobs.commit()
            flash(done, "success")
            return redirect(url_for("accounts.overview"), 303)
    except LinkError as exc:
        db.session.rollback()
        return _link_problem(exc, purpose)
    return form_page(template, form, supporter=link.supporter, claims=link.claims, **context)


@bp.route("/link/<token>", methods=["GET", "POST"])
def follow_signin_link(token: str):
    return _follow(token, tokens.SIGNIN, sign_in_with_link, "accounts/follow_signin.html",
                   "You are signed in.")


@bp.route("/verify/<token>", methods=["GET", "POST"])
def follow_verify_link(token: str):
    return _follow(token, tokens.VERIFY, verify_email, "accounts/follow_verify.html",
                   "Your email address is confirmed and your account is ready.")


@bp.post("/signout")
def signout():
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    _sign_out()
    jobs.commit()
    flash("You are signed out.", "success")
    return redirect(url_for("campaigns.home"), 303)


@bp.post("/signout/everywhere")
@login_required
def signout_everywhere():
    """End every sign-in of the account, this browser's included (the page says so)."""
    if not ButtonForm().validate_on_submit():
        abort(400)
    end_all_sessions(current_user._get_current_object())
    _sign_out()
    jobs.commit()
    flash("You are signed out everywhere: on every device and browser, this one included. "
          "Links we emailed you before no longer work. Sign in again to continue.", "success")
    return redirect(url_for("accounts.signin"), 303)


# -- password reset ---------------------------------------------------------------------------

@bp.route("/reset", methods=["GET", "POST"])
@limited(mail_limits)
def reset_request():
    return _ask_for_link(request_password_reset, "reset", "accounts/reset_request.html")


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_with_link(token: str):
    tools = _tools()
    form = ResetPasswordForm()
    try:
        link = tools.links.check(tokens.RESET, token)
        if form.validate_on_submit():
            try:
                supporter = reset_password(token, form.password.data, tools=tools, now=utcnow())
            except AccountError as exc:
                db.session.rollback()
                field_error(form, exc.field, exc.message)
            else:
                _sign_in(supporter, remember=form.remember.data)
                jobs.commit()
                flash("Your new password is set, and you are signed in.", "success")
                return redirect(url_for("accounts.overview"), 303)
    except LinkError as exc:
        db.session.rollback()
        return _link_problem(exc, tokens.RESET)
    return form_page("accounts/reset_password.html", form, supporter=link.supporter)


# -- the account ------------------------------------------------------------------------------

@bp.get("")
@login_required
def overview():
    gifts = giving_history(current_user)
    return render_template("accounts/overview.html", membership=current_membership(),
                           levels=current_levels(), plans=supporter_plans(current_user),
                           recent=gifts[:3], gift_count=len(gifts), signout_form=ButtonForm())


@bp.get("/gifts")
@login_required
def gifts():
    return render_template("accounts/gifts.html", gifts=giving_history(current_user))


@bp.get("/gifts/<public_id>/receipt")
@login_required
def receipt(public_id: str):
    gift = gift_for(current_user, public_id) or abort(404)
    return render_template("accounts/receipt.html", gift=gift, campaign=gift.campaign,
                           receipt=current_receipt(gift))


@bp.get("/briefings")
@login_required
@requires_perk("briefings")
def briefings():
    return render_template("accounts/briefings.html", membership=current_membership())


# -- plans ------------------------------------------------------------------------------------

def _plan_page(plan, *, amount_form=None, restart_form=None, status=200):
    if amount_form is None:
        amount_form = ChangeAmountForm(formdata=None, amount=str(
            to_decimal(plan.amount, plan.currency)))
    restart_form = restart_form or RestartPlanForm(formdata=None,
                                                   submission_key=uuid.uuid4().hex)
    return render_template("accounts/plan.html", plan=plan, amount_form=amount_form,
                           card_form=ButtonForm(formdata=None), restart_form=restart_form,
                           ), status


def _own_plan(plan_id: int):
    return plan_for(current_user, plan_id) or abort(404)


# The provider sends the donor back with this marker only once a new card is saved (the
# sandbox portal's save, Stripe's card-update flow completed); its plain way back carries none.
# Anyone can type it, but it only ever speaks to the person who did.
CARD_UPDATED = "updated"


@bp.get("/plans/<int:plan_id>")
@login_required
def plan(plan_id: int):
    plan = _own_plan(plan_id)
    if request.args.get("card") == CARD_UPDATED:
        flash("Your card is updated: your next payments are charged to the new card.",
              "success")
        return redirect(url_for("accounts.plan", plan_id=plan.id), 303)
    return _plan_page(plan)


@bp.post("/plans/<int:plan_id>/amount")
@login_required
def change_amount(plan_id: int):
    plan = _own_plan(plan_id)
    form = ChangeAmountForm()
    if form.validate_on_submit():
        try:
            amount = parse_amount(form.amount.data, plan.currency)
            change_plan_amount(plan, current_provider(), amount=amount,
                               rules=GivingRules.from_config(current_app.config))
        except AmountError as exc:
            field_error(form, "amount", str(exc))
        except (GiftError, ProviderError) as exc:
            db.session.rollback()
            field_error(form, "amount", getattr(exc, "message", str(exc)))
        else:
            jobs.commit()
            flash("Your gift is changed. The new amount applies from your next payment.",
                  "success")
            return redirect(url_for("accounts.plan", plan_id=plan.id), 303)
    return _plan_page(plan, amount_form=form, status=422)


@bp.route("/plans/<int:plan_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel(plan_id: int):
    """Are you sure? The plan page's cancel button opens this page (GET); its "Yes, cancel"
    button cancels (POST)."""
    plan = _own_plan(plan_id)
    if plan.status is PlanStatus.CANCELED:
        return redirect(url_for("accounts.plan", plan_id=plan.id), 303)
    form = CancelPlanForm()
    if form.validate_on_submit():
        try:
            cancel_plan(plan, current_provider(), now=utcnow(), reason=form.reason.data)
        except ProviderError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            jobs.commit()
            flash("Your gift is cancelled: there will be no further payments. Thank you for "
                  "your support.", "success")
            return redirect(url_for("accounts.plan", plan_id=plan.id), 303)
    return form_page("accounts/cancel_plan.html", form, plan=plan)


@bp.post("/plans/<int:plan_id>/card")
@login_required
def update_card(plan_id: int):
    plan = _own_plan(plan_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if not plan.provider_customer_id:
        flash("We cannot open the card page for this gift. Please write to us.", "error")
        return redirect(url_for("accounts.plan", plan_id=plan.id), 303)
    try:
        url = current_provider().billing_portal_url(
            customer_id=plan.provider_customer_id,
            return_url=external_url("accounts.plan", plan_id=plan.id),
            updated_url=external_url("accounts.plan", plan_id=plan.id, card=CARD_UPDATED))
    except ProviderError as exc:
        flash(str(exc), "error")
        return redirect(url_for("accounts.plan", plan_id=plan.id), 303)
    return redirect(url, 303)


@bp.post("/plans/<int:plan_id>/restart")
@login_required
def restart(plan_id: int):
    plan = _own_plan(plan_id)
    form = RestartPlanForm()
    if form.validate_on_submit():
        try:
            gift = restart_plan(plan, rules=GivingRules.from_config(current_app.config),
                                now=utcnow(), submission_key=form.submission_key.data)
            url = begin_checkout(
                gift, current_provider(),
                success_url=external_url("giving.thanks", public_id=gift.public_id),
                cancel_url=external_url("accounts.plan", plan_id=plan.id))
        except (GiftError, ProviderError) as exc:
            db.session.rollback()
            form.form_errors.append(getattr(exc, "message", str(exc)))
        else:
            jobs.commit()
            return redirect(url, 303)
    return _plan_page(plan, restart_form=form, status=422)


# -- profile, email and password --------------------------------------------------------------

def _profile_page(*, profile_form=None, email_form=None, password_form=None, status=200):
    return render_template(
        "accounts/profile.html",
        profile_form=profile_form or ProfileForm(formdata=None, obj=current_user),
        email_form=email_form or EmailChangeForm(formdata=None),
        password_form=password_form or ChangePasswordForm(formdata=None),
        cancel_email_form=ButtonForm(formdata=None),
    ), status


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    form = ProfileForm()
    if request.method == "GET":
        return _profile_page()
    if form.validate_on_submit():
        try:
            update_profile(current_user, Profile(
                name=form.name.data, address_line1=form.address_line1.data,
                address_line2=form.address_line2.data, city=form.city.data,
                region=form.region.data, postal_code=form.postal_code.data,
                country=form.country.data))
        except AccountError as exc:
            db.session.rollback()
            field_error(form, exc.field, exc.message)
        else:
            jobs.commit()
            flash("Your details are saved.", "success")
            return redirect(url_for("accounts.profile"), 303)
    return _profile_page(profile_form=form, status=422)


@bp.post("/profile/email")
@fresh_login_required
@limited(mail_limits)
def change_email():
    form = EmailChangeForm()
    if form.validate_on_submit():
        try:
            request_email_change(current_user, new_email=form.new_email.data,
                                 password=form.password.data or "", tools=_tools())
        except AccountError as exc:
            db.session.rollback()
            field_error(form, exc.field, exc.message)
        else:
            jobs.commit()
            flash(f"We sent a link to {normalize_email(form.new_email.data)}. Your account "
                  "moves to that address once you follow it; until then it keeps this one.",
                  "success")
            return redirect(url_for("accounts.profile"), 303)
    return _profile_page(email_form=form, status=422)


@bp.post("/profile/email/cancel")
@login_required
def cancel_change_email():
    if not ButtonForm().validate_on_submit():
        abort(400)
    cancel_email_change(current_user)
    jobs.commit()
    flash("The change of email address is called off.", "success")
    return redirect(url_for("accounts.profile"), 303)


@bp.route("/email/<token>", methods=["GET", "POST"])
def follow_email_change_link(token: str):
    links = _tools().links
    form = FollowLinkForm()
    try:
        link = links.check(tokens.EMAIL_CHANGE, token)
        if form.validate_on_submit():
            try:
                supporter = confirm_email_change(token, links=links, now=utcnow())
            except AccountError as exc:
                db.session.rollback()
                field_error(form, exc.field, exc.message)
            else:
                _sign_in(supporter, remember=form.remember.data)
                jobs.commit()
                flash(f"Your account's email address is now {supporter.email}.", "success")
                return redirect(url_for("accounts.profile"), 303)
    except LinkError as exc:
        db.session.rollback()
        return _link_problem(exc, tokens.EMAIL_CHANGE)
    return form_page("accounts/follow_email_change.html", form, supporter=link.supporter,
                   new_email=link.claims["new"])


@bp.post("/profile/password")
@fresh_login_required
def password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        supporter = current_user._get_current_object()
        try:
            change_password(supporter, current=form.current_password.data or "",
                            new=form.new_password.data, tools=_tools())
        except AccountError as exc:
            db.session.rollback()
            field_error(form, exc.field, exc.message)
        else:
            # Other sessions are now signed out; this one signs in again under the new version.
            remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") \
                in request.cookies
            _sign_in(supporter, remember=remember)
            jobs.commit()
            flash("Your password is changed. Other devices have been signed out.", "success")
            return redirect(url_for("accounts.profile"), 303)
    return _profile_page(password_form=form, status=422)


# -- your data: download and delete -----------------------------------------------------------

@bp.get("/data")
@fresh_login_required
def data():
    return render_template("accounts/data.html", export_form=ButtonForm(formdata=None),
                           delete_form=DeleteAccountForm(formdata=None,
                                                         email=current_user.email),
                           plans=supporter_plans(current_user))


@bp.post("/export")
@fresh_login_required
def export():
    if not ButtonForm().validate_on_submit():
        abort(400)
    body = export_json(current_user, now=utcnow())
    filename = f"levant-wire-my-data-{date.today().isoformat()}.json"
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/delete")
@fresh_login_required
def delete():
    form = DeleteAccountForm(email=current_user.email)
    if form.validate_on_submit():
        try:
            erase_supporter(current_user._get_current_object(), current_provider(),
                            now=utcnow())
        except ProviderError as exc:
            db.session.rollback()
            form.form_errors.append(f"We could not cancel your monthly gift, so nothing was "
                                    f"deleted: {exc}")
        else:
            _sign_out()
            jobs.commit()
            return redirect(url_for("accounts.deleted"), 303)
    return render_template("accounts/data.html", export_form=ButtonForm(formdata=None),
                           delete_form=form, plans=supporter_plans(current_user)), 422


@bp.get("/deleted")
def deleted():
    return render_template("accounts/deleted.html")
