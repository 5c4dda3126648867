"""Staff pages under /staff/. Each route names the roles it allows at its decorator
(``roles_required``); an admin passes everywhere. Views parse a form, call one service, then
flash and redirect (one commit per request)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from babel.dates import format_date, format_skeleton, get_timezone_location
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app import jobs
from app.accounts.models import Supporter
from app.audit import Actor, find_entries
from app.campaigns.calendar import start_passed, upcoming_occasions
from app.campaigns.services import (
    CampaignError,
    campaign_by_slug,
    campaign_progress,
    create_campaign,
    draft_for_occasion,
    end_campaign,
    occasion_calendar,
    pause_campaign,
    publish_campaign,
    resume_campaign,
    update_campaign,
)
from app.db import utcnow
from app.extensions import db
from app.money import minor_digits, to_decimal
from app.pages import field_error, form_page
from app.staff import charts, operations
from app.staff.dashboards import (
    campaign_dashboard,
    campaign_state,
    overview,
    staff_home,
    year_over_year,
)
from app.staff.forms import AuditFilterForm, ButtonForm, CampaignForm, OccasionDraftForm, RoleForm
from app.staff.models import Role, StaffRole
from app.staff.reports import (
    LAPSED_KINDS,
    lapsed_csv,
    lapsed_donors,
    search_supporters,
    supporter_profile,
)
from app.staff.roles import (
    ADMIN,
    ALL_STAFF,
    FINANCE,
    FUNDRAISING,
    RoleError,
    allows,
    current_roles,
    grant_role,
    revoke_role,
    roles_required,
    staff_members,
    staff_pages,
)
from app.templating import format_moment, org_zone

bp = staff_pages(Blueprint("staff", __name__, url_prefix="/staff"))


def _actor() -> Actor:
    return Actor.of(current_user)


def _currencies() -> tuple[str, ...]:
    return tuple(current_app.config["CURRENCIES"])


def _money(currency: str):
    locale = current_app.config["ORG_LOCALE"]
    from app.money import format_money

    return lambda minor: format_money(minor, currency, locale, whole=True)


def _chart_text(currency: str) -> dict:
    """How a chart writes amounts (whole units of ``currency``, its axis in steps of one) and
    days, through Babel in the organisation's locale: ``charts.daily_chart``'s keywords."""
    locale = current_app.config["ORG_LOCALE"]
    return {"money": _money(currency), "unit": 10 ** minor_digits(currency),
            "day_label": lambda day: format_skeleton("MMMd", day, locale=locale),
            "long_day": lambda day: format_date(day, "long", locale=locale)}


def _moment_text(when: datetime) -> str:
    return format_moment(when, zone=org_zone(), locale=current_app.config["ORG_LOCALE"])


def _campaign(slug: str):
    return campaign_by_slug(slug) or abort(404)


# Every page's header links staff to their pages (a signed-in visitor's roles, read once per
# request; an anonymous one costs nothing).
bp.add_app_template_global(current_roles, "current_staff_roles")


# -- home -------------------------------------------------------------------------------------

@bp.get("/")
@roles_required(*ALL_STAFF)
def index():
    """Today's gifts and money, the live campaigns (for fundraising staff), and the pages the
    roles may open."""
    zone = org_zone()
    home = staff_home(now=utcnow(), zone=zone,
                      campaigns=allows(current_roles(), FUNDRAISING))
    # Finance sees how many money problems wait in the operations inbox (counts only).
    ops = operations.inbox(now=utcnow(), settings=operations.Settings.from_config(
        current_app.config), backend=jobs.backend(), limit=0) \
        if allows(current_roles(), FINANCE) else None
    return render_template("staff/index.html", home=home, operations=ops,
                           zone_city=get_timezone_location(
                               zone, current_app.config["ORG_LOCALE"], return_city=True))


# -- campaigns --------------------------------------------------------------------------------

@bp.get("/campaigns")
@roles_required(*FUNDRAISING)
def campaigns():
    now = utcnow()
    rows = overview(now=now, zone=org_zone())
    charted = [r for r in rows if r.state in ("live", "ended", "paused")][:12]
    # One chart per currency: bars of dollars and shekels on one scale would mislead.
    currencies = sorted({r.campaign.currency for r in charted})
    chart_list = [charts.bar_chart(
        [(r.campaign.title, r.raised) for r in charted if r.campaign.currency == currency],
        money=_money(currency), title=f"Net raised by campaign, in {currency}",
        chart_id=f"overview-chart-{currency.lower()}") for currency in currencies]
    return render_template("staff/campaigns.html", rows=rows, pairs=year_over_year(rows),
                           now=now, charts=chart_list)


def _campaign_form(**kwargs) -> CampaignForm:
    return CampaignForm(currencies=_currencies(), zone=org_zone(), **kwargs)


@bp.route("/campaigns/new", methods=["GET", "POST"])
@roles_required(*FUNDRAISING)
def campaign_new():
    form = _campaign_form()
    if request.method == "GET":
        now = utcnow().astimezone(org_zone()).replace(second=0, microsecond=0, tzinfo=None)
        form.starts_at.data, form.ends_at.data = now + timedelta(days=7), now + timedelta(days=37)
        form.signatory_name.data = current_app.config["CAMPAIGN_SIGNATORY_NAME"]
        form.signatory_title.data = current_app.config["CAMPAIGN_SIGNATORY_TITLE"]
        form.suggested_amounts.data = "25\n50\n100\n250"
    if form.validate_on_submit():
        try:
            campaign = create_campaign(form.fields(), form.amounts(), actor=_actor(),
                                       currencies=_currencies())
        except CampaignError as exc:
            _field_error(form, exc)
        else:
            jobs.commit()
            flash("Draft saved. Preview it, then publish it when it is ready.", "success")
            return redirect(url_for("staff.dashboard", slug=campaign.slug), 303)
    return form_page("staff/campaign_form.html", form, campaign=None)


@bp.route("/campaigns/<slug>/edit", methods=["GET", "POST"])
@roles_required(*FUNDRAISING)
def campaign_edit(slug: str):
    campaign = _campaign(slug)
    form = _campaign_form()
    if request.method == "GET":
        form.fill(campaign)
    if form.validate_on_submit():
        try:
            changed = update_campaign(campaign, form.fields(), form.amounts(), actor=_actor(),
                                      currencies=_currencies(), now=utcnow())
        except CampaignError as exc:
            db.session.rollback()
            _field_error(form, exc)
        else:
            jobs.commit()
            flash("Changes saved." if changed else "Nothing changed.", "success")
            return redirect(url_for("staff.dashboard", slug=campaign.slug), 303)
    return form_page("staff/campaign_form.html", form, campaign=campaign)


def _field_error(form, exc: CampaignError) -> None:
    field_error(form, "goal" if exc.field == "goal_amount" else exc.field, exc.message)


@bp.get("/campaigns/<slug>/preview")
@roles_required(*FUNDRAISING)
def campaign_preview(slug: str):
    """The campaign page as a reader will see it, drafts included (nothing can be given)."""
    from app.campaigns.views import _fee_display
    from app.giving.forms import donation_form

    campaign = _campaign(slug)
    now = utcnow()
    form = donation_form(campaign)
    return render_template("campaigns/campaign.html", campaign=campaign, form=form, now=now,
                           progress=campaign_progress(campaign, now), live_elsewhere=None,
                           fee=_fee_display(campaign, form), preview=True)


STATE_ACTIONS = {"publish": publish_campaign, "pause": pause_campaign,
                 "resume": resume_campaign, "end": end_campaign}
STATE_MESSAGES = {"publish": "Published.", "pause": "Paused: the page says gifts are paused.",
                  "resume": "Gifts are open again.", "end": "The campaign has ended."}


@bp.post("/campaigns/<slug>/<any(publish, pause, resume, end):action>")
@roles_required(*FUNDRAISING)
def campaign_state_change(slug: str, action: str):
    campaign = _campaign(slug)
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    now = utcnow()
    try:
        STATE_ACTIONS[action](campaign, actor=_actor(), now=now)
    except CampaignError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        jobs.commit()
        message = STATE_MESSAGES[action]
        if action == "publish" and campaign.starts_at > now:
            message = "Scheduled: it goes live on its start date."
        elif action == "end" and not campaign.published:  # end_campaign: it never started
            message = "It had not started, so it is a draft again, off the site."
        flash(message, "success")
    return redirect(url_for("staff.dashboard", slug=slug), 303)


# -- dashboards -------------------------------------------------------------------------------

@bp.get("/campaigns/<slug>")
@roles_required(*FUNDRAISING)
def dashboard(slug: str):
    campaign = _campaign(slug)
    now = utcnow()
    dash = campaign_dashboard(campaign, now=now, zone=org_zone())
    text = _chart_text(campaign.currency)
    points = [charts.Point(d.day, d.raised, d.cumulative) for d in dash.days]
    return render_template(
        "staff/dashboard.html", dash=dash, campaign=campaign, state=campaign_state(campaign, now),
        now=now, button_form=ButtonForm(),
        daily_chart=charts.daily_chart(points, title=f"Money raised each day: {campaign.title}",
                                       **text),
        total_chart=charts.total_chart(points, goal=campaign.goal_amount,
                                       title=f"Running total and goal: {campaign.title}",
                                       **text),
        source_chart=charts.bar_chart([(s.source, s.raised) for s in dash.sources[:8]],
                                      money=text["money"], title="Net raised by source",
                                      chart_id="source-chart"))


@bp.get("/campaigns/<slug>/figures.json")
@roles_required(*FUNDRAISING)
def dashboard_figures(slug: str):
    """The headline figures, for the page's live refresh (static/js/staff.js)."""
    campaign = _campaign(slug)
    now = utcnow()
    dash = campaign_dashboard(campaign, now=now, zone=org_zone())
    money = _money(campaign.currency)
    data = dash.as_json()
    data["state"] = campaign_state(campaign, now)
    data["text"] = {key: money(data[key]) for key in (
        "raised", "goal", "charged", "refunded", "disputed", "average_gift", "median_gift",
        "monthly_recurring", "match_used")}
    data["text"].update({key: f"{data[key]:,}" for key in (
        "gifts", "donors", "new_donors", "returning_donors")})
    data["text"]["percent"] = f"{data['percent']}%"
    # Written here as the page writes it (the organisation's zone, its date): the script
    # inserts it as is.
    data["text"]["as_of"] = _moment_text(dash.as_of)
    return jsonify(data)


# -- calendar ---------------------------------------------------------------------------------

def _founded() -> date:
    return date.fromisoformat(current_app.config["ORG_FOUNDED"])


@bp.get("/calendar")
@roles_required(*FUNDRAISING)
def calendar():
    entries = occasion_calendar(now=utcnow(), zone=org_zone(), founded=_founded())
    return render_template("staff/calendar.html", entries=entries, form=OccasionDraftForm())


@bp.post("/calendar/draft")
@roles_required(*FUNDRAISING)
def calendar_draft():
    form = OccasionDraftForm()
    if not form.validate_on_submit():
        abort(400)
    zone = org_zone()
    today = utcnow().astimezone(zone).date()
    occasion = next((o for o in upcoming_occasions(today, founded=_founded(), months=24)
                     if o.key == form.occasion.data), None)
    if occasion is None:
        abort(404)
    config = current_app.config
    campaign, new = draft_for_occasion(
        occasion, actor=_actor(), zone=zone, today=today, currency=_currencies()[0],
        goal=config["CAMPAIGN_DRAFT_GOAL_MINOR"], signatory_name=config["CAMPAIGN_SIGNATORY_NAME"],
        signatory_title=config["CAMPAIGN_SIGNATORY_TITLE"])
    jobs.commit()
    if not new:
        flash("A campaign for this occasion already exists.", "success")
        if campaign.published:
            return redirect(url_for("staff.dashboard", slug=campaign.slug), 303)
    elif start_passed(occasion, today):
        locale = config["ORG_LOCALE"]
        flash(f"Draft created. Its suggested start, {format_date(occasion.starts, 'long', locale)}"
              f", has passed, so it starts today, {format_date(today, 'long', locale)}: "
              "publishing it opens it to gifts at once. Check the dates and write the letter "
              "first.", "warning")
    else:
        flash("Draft created: write the letter, check the dates, then publish.", "success")
    return redirect(url_for("staff.campaign_edit", slug=campaign.slug), 303)


# -- supporters and reports -------------------------------------------------------------------

@bp.get("/supporters")
@roles_required(*FUNDRAISING)
def supporters():
    query = request.args.get("q", "").strip()[:200]
    found = search_supporters(query) if query else []
    return render_template("staff/supporters.html", query=query, found=found)


@bp.get("/supporters/<int:supporter_id>")
@roles_required(*FUNDRAISING)
def supporter(supporter_id: int):
    from app.accounts.membership import current_levels

    person = db.session.get(Supporter, supporter_id) or abort(404)
    if person.erased_at is not None:
        abort(404)
    profile = supporter_profile(person, levels=current_levels(), now=utcnow())
    return render_template("staff/supporter.html", profile=profile, person=person)


def _lapsed_kind() -> str:
    kind = request.args.get("kind", "lybunt")
    if kind not in LAPSED_KINDS:
        abort(404)
    return kind


@bp.get("/reports/lapsed")
@roles_required(*FUNDRAISING)
def lapsed():
    kind = _lapsed_kind()
    rows = lapsed_donors(kind, now=utcnow(), zone=org_zone(), limit=501)
    return render_template("staff/lapsed.html", kind=kind, kinds=LAPSED_KINDS, rows=rows[:500],
                           more=len(rows) > 500)


@bp.get("/reports/lapsed.csv")
@roles_required(*FUNDRAISING)
def lapsed_download():
    kind = _lapsed_kind()
    zone = org_zone()
    rows = lapsed_donors(kind, now=utcnow(), zone=zone)
    body = lapsed_csv(rows, zone=zone,
                      amount_text=lambda minor, currency: f"{to_decimal(minor, currency):f}")
    stamp = utcnow().astimezone(zone).date().isoformat()
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="lapsed-{kind}-{stamp}.csv"'})


# -- roles and the audit log (admin) ----------------------------------------------------------

@bp.route("/roles", methods=["GET", "POST"])
@roles_required(*ADMIN)
def roles():
    form = RoleForm()
    if form.validate_on_submit():
        from app.accounts.services import find_supporter

        person = find_supporter(form.email.data)
        if person is None or person.erased_at is not None:
            form.email.errors = [*form.email.errors,
                                 "No supporter has this address. They can create an account, "
                                 "or use `flask users create`."]
        else:
            try:
                granted = grant_role(person, Role(form.role.data), actor=_actor())
            except RoleError as exc:
                form.email.errors = [*form.email.errors, exc.message]
            else:
                jobs.commit()
                flash(f"{person.email} is now {form.role.data}." if granted
                      else f"{person.email} already had that role.", "success")
                return redirect(url_for("staff.roles"), 303)
    status = 422 if form.errors else 200
    return render_template("staff/roles.html", form=form, members=staff_members(),
                           button_form=ButtonForm()), status


@bp.post("/roles/<int:grant_id>/revoke")
@roles_required(*ADMIN)
def revoke(grant_id: int):
    if not ButtonForm().validate_on_submit():
        abort(400)
    grant = db.session.get(StaffRole, grant_id) or abort(404)
    person = grant.supporter
    try:
        revoke_role(person, grant.role, actor=_actor())
    except RoleError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        jobs.commit()
        flash(f"{person.email} is no longer {grant.role.value}.", "success")
    return redirect(url_for("staff.roles"), 303)


@bp.get("/audit")
@roles_required(*ADMIN)
def audit_log():
    form = AuditFilterForm(request.args)
    entries = []
    if form.validate():
        zone = org_zone()

        def start(day):
            return datetime.combine(day, time(0), zone).astimezone(UTC) if day else None

        entries = find_entries(
            actor=form.actor.data or "", action=form.action.data or "",
            target=form.target.data or "", since=start(form.since.data),
            until=start(form.until.data + timedelta(days=1)) if form.until.data else None)
    return render_template("staff/audit.html", form=form, entries=entries)


@bp.app_template_filter("audit_changes")
def audit_changes(entry) -> list[tuple[str, object, object]]:
    """The fields an entry changed, as (name, before, after); every field for a creation."""
    import json

    before = json.loads(entry.before) if entry.before else {}
    after = json.loads(entry.after) if entry.after else {}
    names = sorted(set(before) | set(after))
    return [(name, before.get(name), after.get(name)) for name in names
            if before.get(name) != after.get(name)]
