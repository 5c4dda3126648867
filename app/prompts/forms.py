"""The staff's prompt form: the shape of the input; ``services`` checks the rules."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.core import within_years
from app.prompts.models import Placement, Prompt, Reset, Segment

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _count(label: str, low: int, required: bool = True, **kwargs) -> IntegerField:
    first = InputRequired(f"Enter {label.lower()}.") if required else Optional()
    return IntegerField(label, validators=[first, NumberRange(min=low, max=1_000_000)],
                        **kwargs)


class PromptForm(FlaskForm):
    campaign = SelectField("Campaign")
    name = StringField("Name (staff only)", filters=[_strip], validators=[
        DataRequired("Give the prompt a name."), Length(max=120)])
    placement = SelectField("Placement", choices=[SelectChoice(p.value, p.label)
                                                  for p in Placement])
    segment = SelectField("Segment", choices=[SelectChoice(s.value, s.label) for s in Segment])
    priority = _count("Priority", 1, default=100,
                      description="Of the segments a reader matches, the prompt with the "
                                  "lowest number decides theirs.")
    min_views = _count("Article views (engaged segment)", 1, required=False)
    category = SelectField("Region or topic (followers segment)")
    starts_at = DateTimeLocalField("Starts", format=LOCAL_FORMAT, validators=[
        InputRequired("Enter when the prompt starts."), within_years])
    ends_at = DateTimeLocalField("Ends", format=LOCAL_FORMAT, validators=[
        InputRequired("Enter when the prompt ends."), within_years])
    enabled = BooleanField("Switched on")
    start_at_view = _count("From the reader's article view number", 1, default=1)
    every_nth_view = _count("Then every nth view", 1, default=1)
    max_times = _count("At most this many times (empty: no limit)", 1, required=False)
    reset = SelectField("Count starts again", choices=[
        SelectChoice(r.value, r.value.capitalize()) for r in Reset])
    gave_hide_days = _count("“I already gave” hides appeals for (days; 0: not offered)", 0,
                            default=30)
    headline_a = StringField("Headline", filters=[_strip], validators=[
        DataRequired("Write the headline."), Length(max=200)])
    body_a = TextAreaField("Text", validators=[Length(max=2000)])
    button_a = StringField("Button", filters=[_strip], validators=[
        DataRequired("Write the button's words."), Length(max=60)])
    headline_b = StringField("Headline (empty: no B variant)", filters=[_strip],
                             validators=[Length(max=200)])
    body_b = TextAreaField("Text", validators=[Length(max=2000)])
    button_b = StringField("Button", filters=[_strip], validators=[Length(max=60)])

    def __init__(self, *args, campaigns: list[tuple[int, str]],
                 categories: list[tuple[int, str]], zone: ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.campaign.choices = [SelectChoice(str(i), title) for i, title in campaigns]
        self.category.choices = [SelectChoice("", "—")] + [
            SelectChoice(str(i), name) for i, name in categories]

    def fill(self, prompt: Prompt) -> None:
        for name in ("name", "priority", "min_views", "enabled", "start_at_view",
                     "every_nth_view", "max_times", "gave_hide_days", "headline_a", "body_a",
                     "button_a", "headline_b", "body_b", "button_b"):
            getattr(self, name).data = getattr(prompt, name)
        self.campaign.data = str(prompt.campaign_id)
        self.category.data = str(prompt.category_id) if prompt.category_id else ""
        for name in ("placement", "segment", "reset"):
            getattr(self, name).data = getattr(prompt, name).value
        for name in ("starts_at", "ends_at"):
            getattr(self, name).data = getattr(prompt, name).astimezone(self.zone).replace(
                tzinfo=None)

    def _utc(self, value: datetime) -> datetime:
        return value.replace(tzinfo=self.zone).astimezone(UTC)

    def campaign_id(self) -> int:
        return int(self.campaign.data)

    def fields(self) -> dict:
        """The prompt's columns, as the services take them."""
        return {
            "name": self.name.data, "placement": Placement(self.placement.data),
            "segment": Segment(self.segment.data), "priority": self.priority.data,
            "min_views": self.min_views.data,
            "category_id": int(self.category.data) if self.category.data else None,
            "starts_at": self._utc(self.starts_at.data), "ends_at": self._utc(self.ends_at.data),
            "enabled": bool(self.enabled.data), "start_at_view": self.start_at_view.data,
            "every_nth_view": self.every_nth_view.data, "max_times": self.max_times.data,
            "reset": Reset(self.reset.data), "gave_hide_days": self.gave_hide_days.data,
            "headline_a": self.headline_a.data, "body_a": self.body_a.data or "",
            "button_a": self.button_a.data, "headline_b": self.headline_b.data or "",
            "body_b": self.body_b.data or "", "button_b": self.button_b.data or "",
        }


class EmailAppealForm(FlaskForm):
    """The switch for a campaign's appeal in the daily email."""

    on = SelectField(choices=[SelectChoice("1", "On"), SelectChoice("0", "Off")])
