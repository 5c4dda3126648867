"""The fundraisers' prompt pages under /staff/prompts: the list (with each campaign's switch for
the daily email's appeal), a prompt's form, its results per variant with a preview of each.
Views parse a form, call one service, then flash and redirect."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app import jobs
from app.audit import Actor
from app.campaigns.models import Campaign
from app.db import utcnow
from app.extensions import db
from app.news.services import list_categories
from app.pages import field_error, form_page
from app.prompts.forms import EmailAppealForm, PromptForm
from app.prompts.models import EmailAppeal, Prompt
from app.prompts.services import (
    PromptError,
    attribution,
    create_prompt,
    prompt_results,
    set_email_appeal,
    update_prompt,
)
from app.staff.roles import FUNDRAISING, roles_required, staff_pages
from app.templating import org_zone

bp = staff_pages(Blueprint("prompt_staff", __name__, url_prefix="/staff/prompts"))


def _actor() -> Actor:
    return Actor.of(current_user)


def _form(**kwargs) -> PromptForm:
    campaigns = db.session.execute(
        select(Campaign.id, Campaign.title).order_by(Campaign.starts_at.desc(),
                                                      Campaign.id.desc())).all()
    return PromptForm(campaigns=[tuple(c) for c in campaigns],
                      categories=[(c.id, c.name) for c in list_categories()], zone=org_zone(),
                      **kwargs)


def _page(form: PromptForm, prompt: Prompt | None):
    return form_page("prompts/staff_form.html", form, prompt=prompt)


def _save_error(form: PromptForm, exc: PromptError) -> None:
    field_error(form, "category" if exc.field == "category_id" else exc.field, exc.message)


@bp.get("/")
@roles_required(*FUNDRAISING)
def index():
    now = utcnow()
    prompts = db.session.scalars(select(Prompt).order_by(Prompt.ends_at.desc(), Prompt.id))
    campaigns = db.session.scalars(select(Campaign).where(Campaign.ends_at > now)
                                   .order_by(Campaign.starts_at)).all()
    appeals = set(db.session.scalars(select(EmailAppeal.campaign_id)))
    return render_template("prompts/staff_index.html", prompts=list(prompts), now=now,
                           campaigns=campaigns, appeals=appeals, appeal_form=EmailAppealForm())


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*FUNDRAISING)
def new():
    form = _form()
    if request.method == "GET":
        now = utcnow().astimezone(org_zone()).replace(second=0, microsecond=0, tzinfo=None)
        form.starts_at.data, form.ends_at.data = now, now + timedelta(days=30)
        form.enabled.data = True
        if request.args.get("campaign"):
            form.campaign.data = request.args["campaign"]
    if form.validate_on_submit():
        campaign = db.session.get(Campaign, form.campaign_id()) or abort(400)
        try:
            prompt = create_prompt(campaign, form.fields(), actor=_actor())
        except PromptError as exc:
            _save_error(form, exc)
        else:
            jobs.commit()
            flash("Prompt saved.", "success")
            return redirect(url_for("prompt_staff.results", prompt_id=prompt.id), 303)
    return _page(form, None)


@bp.route("/<int:prompt_id>/edit", methods=["GET", "POST"])
@roles_required(*FUNDRAISING)
def edit(prompt_id: int):
    prompt = db.session.get(Prompt, prompt_id) or abort(404)
    form = _form()
    if request.method == "GET":
        form.fill(prompt)
    if form.validate_on_submit():
        fields = form.fields()
        fields["campaign_id"] = form.campaign_id()
        if db.session.get(Campaign, fields["campaign_id"]) is None:
            abort(400)
        try:
            changed = update_prompt(prompt, fields, actor=_actor())
        except PromptError as exc:
            db.session.rollback()
            _save_error(form, exc)
        else:
            jobs.commit()
            flash("Changes saved." if changed else "Nothing changed.", "success")
            return redirect(url_for("prompt_staff.results", prompt_id=prompt.id), 303)
    return _page(form, prompt)


@bp.get("/<int:prompt_id>")
@roles_required(*FUNDRAISING)
def results(prompt_id: int):
    """Impressions, dismissals, clicks, gifts and money per variant, the conversion rates and
    the z-test between them; each variant's copy as readers see it."""
    prompt = db.session.get(Prompt, prompt_id) or abort(404)
    rows, significance = prompt_results(prompt)
    return render_template("prompts/staff_results.html", prompt=prompt, rows=rows,
                           significance=significance, now=utcnow(), attribution=attribution)


@bp.post("/email-appeal/<int:campaign_id>")
@roles_required(*FUNDRAISING)
def email_appeal(campaign_id: int):
    campaign = db.session.get(Campaign, campaign_id) or abort(404)
    form = EmailAppealForm()
    if not form.validate_on_submit():
        abort(400)
    on = form.on.data == "1"
    changed = set_email_appeal(campaign, on, actor=_actor(), now=utcnow())
    jobs.commit()
    if changed:
        flash(f"The daily email {'now carries' if on else 'no longer carries'} the appeal of "
              f"“{campaign.title}”.", "success")
    return redirect(url_for("prompt_staff.index"), 303)
