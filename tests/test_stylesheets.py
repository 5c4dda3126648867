"""The stylesheets stay ordered by component (issue 15 item 8): in each file, one media query
per condition and one rule per selector in each media context, so a change is made in its
component's block instead of appended again at the end of the file."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

CSS = Path(__file__).parent.parent / "static" / "css"


def blocks(source: str) -> tuple[Counter, Counter]:
    """The at-rule conditions (``@media (min-width: 40em)``...) and the rules, each rule as
    (the at-rules it sits in, its selector), with how often each is written."""
    text = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    at_rules: Counter = Counter()
    rules: Counter = Counter()
    inside: list[str] = []
    position = 0
    while True:
        opening, closing = text.find("{", position), text.find("}", position)
        if opening == -1 and closing == -1:
            return at_rules, rules
        if opening != -1 and (closing == -1 or opening < closing):
            head = " ".join(text[position:opening].split())
            if head.startswith("@"):
                at_rules[head] += 1
                inside.append(head)
                position = opening + 1
            else:
                rules[(" ".join(inside), head)] += 1
                position = text.find("}", opening) + 1
        else:
            inside.pop()
            position = closing + 1


def test_blocks_reads_media_queries_and_rules():
    at_rules, rules = blocks("""a { color: red; }
/* a comment { } */
@media (min-width: 40em) { a { color: blue; } .b, .c { margin: 0; } }
@media (min-width: 40em) { a { color: green; } }""")
    assert at_rules == {"@media (min-width: 40em)": 2}
    assert rules == {("", "a"): 1, ("@media (min-width: 40em)", "a"): 2,
                     ("@media (min-width: 40em)", ".b, .c"): 1}


@pytest.mark.parametrize("name", ["app.css", "staff.css", "news.css"])
def test_one_media_query_per_condition_and_one_rule_per_selector(name):
    at_rules, rules = blocks((CSS / name).read_text())
    assert rules, f"no rules read from {name}"
    assert [condition for condition, n in at_rules.items() if n > 1] == []
    assert [rule for rule, n in rules.items() if n > 1] == []
