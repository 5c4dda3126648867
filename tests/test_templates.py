"""Templates fail loudly under tests: ``StrictUndefined`` (``app.templating``), and no template
binds a name that hides a variable of its context (``tests.support.templates``, checked on every
render of the suite and, here, against every ``render_template`` call in the code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask import render_template, render_template_string
from jinja2 import ChoiceLoader, DictLoader, Environment, StrictUndefined, UndefinedError

from tests.support.templates import shadowed

APP = Path(__file__).parent.parent / "app"

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
