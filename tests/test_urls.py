"""The app's URL rules (``app.urls.Rule``) make their URL builders when a URL is first built
from them, not when the app is built, and build the same URLs as Werkzeug's own rules."""

from __future__ import annotations

import pytest
from werkzeug import routing
from werkzeug.routing.converters import AnyConverter, NumberConverter

from app import create_app
from app.urls import Rule
from tests.conftest import BASE_CONFIG


def value_for(converter) -> int | str:
    """A number for a number's converter (the ids'), the first of the words of an ``any``, any
    text for the others (building checks no more than that)."""
    if isinstance(converter, NumberConverter):
        return 7
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    return "a b/é?"


@pytest.fixture
def fresh_app():
    """An app of its own: nothing has built a URL from its rules yet."""
    return create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_building_the_app_makes_no_url_builder_but_the_static_files(monkeypatch):
    made = []
    make = routing.Rule._compile_builder

    def spy(rule, append_unknown=True):
        made.append(rule.endpoint)
        return make(rule, append_unknown)

    monkeypatch.setattr(routing.Rule, "_compile_builder", spy)
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 100
    assert all(isinstance(rule, Rule) for rule in rules if rule.endpoint != "static")
    # Flask adds the static files' rule itself, before the app can name its rule class.
    assert made == ["static", "static"]

    with app.test_request_context():
        from flask import url_for

        assert url_for("campaigns.campaign", slug="twenty-years", amount=25) == \
            "/campaigns/twenty-years?amount=25"
    assert made[2:] == ["campaigns.campaign"]  # its builder with the query arguments only


def test_every_rule_builds_what_werkzeugs_own_rule_builds(fresh_app):
    for rule in fresh_app.url_map.iter_rules():
        own = routing.Rule(rule.rule, endpoint=rule.endpoint, defaults=rule.defaults,
                           methods=rule.methods, strict_slashes=rule.strict_slashes,
                           merge_slashes=rule.merge_slashes)
        routing.Map([own], converters=fresh_app.url_map.converters)
        values = {name: value_for(rule._converters[name])
                  for name in rule.arguments if name not in (rule.defaults or {})}
        with_query = {**values, "page": "2", "q": "ç&d"}
        for append_unknown in (False, True):
            assert rule.build(with_query, append_unknown) == \
                own.build(with_query, append_unknown), rule
        # Built once, the builder is the rule's own from then on: the same again.
        assert rule.build(values) == own.build(values), rule
