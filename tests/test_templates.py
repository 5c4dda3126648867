"""Templates fail loudly under tests: ``StrictUndefined`` (``app.templating``), and no template
binds a name that hides a variable of its context (``tests.support.templates``, checked on every
render of the suite and, here, against every ``render_template`` call in the code)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from flask import render_template, render_template_string
from flask_wtf import FlaskForm
from jinja2 import ChoiceLoader, DictLoader, Environment, StrictUndefined, UndefinedError
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired

from tests.support.templates import shadowed

APP = Path(__file__).parent.parent / "app"
TEMPLATES = Path(__file__).parent.parent / "templates"

FAKE = {
    "base.html": "{% set year = 2026 %}<main>{% block content %}{% endblock %}</main>",
    "_pieces.html": "{% macro button(action, form) %}{{ form.csrf_token }}{% endmacro %}",
    "page.html": """{% extends "base.html" %}
{% from "_pieces.html" import button %}
{% from "_pieces.html" import button as post_button %}
{% macro row(item, form) %}{% set inner = 1 %}{{ item }}{% endmacro %}
{% block content %}{% for entry in entries %}{% set a, b = entry %}{% endfor %}
{{ post_button('/x', button) }}{% endblock %}""",
}


def test_shadowed_names_what_a_template_binds_over_its_context():
    env = Environment(loader=DictLoader(FAKE))
    context = {"button", "post_button", "row", "year", "a", "b", "entries", "item", "form",
               "inner", "entry"}
    assert shadowed(env, "page.html", context) == {
        "a": "page.html", "b": "page.html", "button": "page.html", "post_button": "page.html",
        "row": "page.html", "year": "base.html"}
    # A macro's parameters and body, and a loop's variables, are their own.
    assert not shadowed(env, "page.html", {"item", "form", "inner", "entry", "entries"})


def test_a_render_that_hides_a_variable_fails(make_app, database_url):
    """The check is connected for the whole suite: the dashboard's old mistake is refused."""
    app = make_app(database_url)
    app.jinja_env.loader = ChoiceLoader([DictLoader(FAKE), app.jinja_env.loader])
    with app.test_request_context():
        with pytest.raises(AssertionError, match=r"page.html hides variables .*'button'"):
            render_template("page.html", entries=[], button=object())


def test_templates_are_strict_under_tests_and_forgiving_in_production(make_app, database_url):
    """A missing name, or a missing attribute (a macro's csrf_token, say), raises under tests
    and in development (debug); in production it renders as nothing."""
    source = "[{{ missing }}|{{ thing.csrf_token }}]"
    testing = make_app(database_url)
    development = make_app(database_url, TESTING=False, DEBUG=True)
    for strict in (testing, development):
        assert strict.jinja_env.undefined is StrictUndefined
        with strict.test_request_context():
            for template in ("{{ missing }}", "{{ thing.csrf_token }}"):
                with pytest.raises(UndefinedError):
                    render_template_string(template, thing=object())
    production = make_app(database_url, TESTING=False)
    with production.test_request_context():
        assert render_template_string(source, thing=object()) == "[|]"


def _names_passed_to_templates() -> dict[str, set[str]]:
    """For each template named by a literal in the code, the keywords passed beside it (by
    render_template or by a helper such as the staff views' ``_form_page``)."""
    passed: dict[str, set[str]] = {}
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    and node.args[0].value.endswith((".html", ".txt"))):
                continue
            passed.setdefault(node.args[0].value, set()).update(
                k.arg for k in node.keywords if k.arg)
    return passed


def test_no_template_binds_a_name_its_views_or_the_app_pass_it(app):
    """Every template, rendered by a test or not: none binds a name that a view passes it, or
    that every page gets (the context processors' ``g``, ``request``, ``org_name``, the staff
    pages' ``staff_roles``..., and Jinja's globals)."""
    passed = _names_passed_to_templates()
    assert "staff/dashboard.html" in passed and "button_form" in passed["staff/dashboard.html"]
    everywhere = set(app.jinja_env.globals)
    for path in ("/", "/staff/"):
        with app.test_request_context(path):
            context: dict = {}
            app.update_template_context(context)
            everywhere |= set(context)
    assert {"g", "request", "config", "org_name", "staff_roles", "csrf_token"} <= everywhere
    problems = {}
    for name in app.jinja_env.list_templates(extensions=["html", "txt"]):
        hidden = shadowed(app.jinja_env, name, everywhere | passed.get(name, set()))
        if hidden:
            problems[name] = hidden
    assert not problems, problems


def test_each_form_piece_is_defined_once_and_pages_use_it():
    """One shared macro file (issue 15): no two templates define a macro of the same name (two
    error summaries and two checkboxes had drifted apart), and no page writes an error summary
    of its own instead of calling ``error_summary``."""
    defined: dict[str, list[str]] = {}
    own_summaries = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        source = path.read_text()
        for name in re.findall(r"{%-?\s*macro\s+(\w+)", source):
            defined.setdefault(name, []).append(str(path.relative_to(TEMPLATES)))
        if "data-error-summary" in source and path.name != "_macros.html":
            own_summaries.append(path.name)
    assert {"error_summary", "checkbox", "post_button"} <= set(defined)
    assert {name: paths for name, paths in defined.items() if len(paths) > 1} == {}
    assert own_summaries == []


def test_the_error_summary_names_each_problem_and_links_it_to_its_field(app):
    """The one summary, as the donation form uses it: its heading at the level asked, each
    problem linked to its field under the field's label, a hidden field's problem named without
    a link, and an expired form (no CSRF token) said in words."""

    class GiftForm(FlaskForm):
        name = StringField("Full name", validators=[DataRequired("Enter your name.")])
        key = HiddenField(validators=[DataRequired("This form is incomplete.")])

    source = ('{% from "_macros.html" import error_summary %}'
              '{{ error_summary(form, "Please check your gift", level=3) }}')
    with app.test_request_context(method="POST", data={}):
        form = GiftForm()
        assert not form.validate()
        html = render_template_string(source, form=form)
        assert set(form.errors) == {"name", "key", "csrf_token"}
    assert "<h3>Please check your gift</h3>" in html
    assert '<li><a href="#name">Full name: Enter your name.</a></li>' in html
    assert "<li>This form is incomplete.</li>" in html
    assert "<li>This form expired. Please check your choices and submit it again.</li>" in html
    assert html.count("<li>") == 3
