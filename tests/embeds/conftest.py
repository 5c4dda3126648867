"""The embeds' fixtures: the newsroom's sites among EMBED_ORIGINS, and a campaign to embed."""

from __future__ import annotations

import pytest

from tests.factories import make_campaign

NEWSROOM = "https://www.levantwire.example"
ARTICLE = f"{NEWSROOM}/2026/12/gaza-water?ref=home"
OTHER = "https://evil.example"
BOXES = [f"/embed/campaigns/twenty?page={ARTICLE}", f"/embed/news/subscribe?page={ARTICLE}",
         f"/embed/news/follow?page={ARTICLE}"]


@pytest.fixture
def newsroom(app):
    app.config["EMBED_ORIGINS"] = f"{NEWSROOM}, https://levantwire.example:8443"
    make_campaign("twenty", appeal_markdown="Dear friend,\n\nFor **twenty years** our "
                  "correspondents have reported from [Gaza](https://example.org) and beyond. "
                  + "We need you now. " * 30)
