"""Feed entries are hostile input: their links, their size, their ids (issue 11 item 9).

A story whose link was ``javascript:`` (in any letter case, with a tab inside), ``vbscript:`` or
``data:text/html`` used to be stored and rendered as its href on My news and in the daily email,
which no CSP protects; a 3 MB description made a 6 MB email for every subscriber; 131 entries
with distinct ids sharing one link collapsed into 9 stories, and each re-ingest "updated" 124.
"""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.db import utcnow
from app.extensions import db
from app.news.ingest import SUMMARY_MAX, TITLE_MAX, ingest_feed, web_link
from app.news.models import Article
from tests.support.feeds import item, rss, serving, write
from tests.support.news import (
    DIGEST_NOW,
    Recorder,
    body,
    confirmed_subscriber,
    digest,
    sign_in,
    verified_supporter,
)

GOOD = "https://levantwire.example/2026/11/24/the-real-story"
# Links as they are written in a feed's XML (feedparser decodes the references).
HOSTILE = {
    "plain": "javascript:alert(1)",
    "mixed case": "JaVaScRiPt:alert(1)",
    "tab inside": "java&#9;script:alert(1)",
    "newline inside": "java&#10;script:alert(1)",
    "carriage return inside": "jav&#13;ascript:alert(1)",
    "spaces around": "  JAVASCRIPT:alert(1)  ",
    "colon as a reference": "javascript&#58;alert(1)",
    "vbscript": "vbscript:msgbox(1)",
    "data html": "data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;",
    "data base64": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
}
# A scheme as a browser reads it from an href: after dropping what it drops.
SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)


def hrefs(page: str) -> list[str]:
    """Every href of an HTML page, as the browser reads it (references decoded, spaces and
    control characters around it and tabs and newlines inside it dropped)."""
    values = [html.unescape(v) for v in re.findall(r'href\s*=\s*"([^"]*)"', page, re.I)]
    return [re.sub(r"[\t\n\r]", "", v.strip("".join(map(chr, range(0x21))))) for v in values]


def unsafe(links: list[str]) -> list[str]:
    """The links that would run something: any with a scheme other than http(s) or mailto."""
    return [link for link in links if (m := SCHEME.match(link))
            and m.group(1).lower() not in ("http", "https", "mailto")]


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(Article))


@pytest.mark.parametrize("given", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)",
    "java\nscript:alert(1)", "\x01javascript:alert(1)", " \x00\x1fjavascript:alert(1)",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)", "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD4=", "mailto:x@levantwire.example", "file:///etc/passwd",
    "http://", "https://" + "a" * 2000 + ".example/",
], ids=lambda given: repr(given)[:40])
def test_only_web_addresses_are_links(given):
    assert web_link(given, "https://levantwire.example/feed.xml") is None
    assert web_link(given, None) is None


@pytest.mark.parametrize("given, base, expected", [
    ("https://levantwire.example/a", None, "https://levantwire.example/a"),
    ("HTTPS://levantwire.example/a", None, "https://levantwire.example/a"),
    (" \x01https://levantwire.example/a\t ", None, "https://levantwire.example/a"),
    ("https://levantwire.example/a b", None, "https://levantwire.example/a%20b"),
    ("/2026/11/24/a", "https://levantwire.example/feeds/all.xml",
     "https://levantwire.example/2026/11/24/a"),
    ("a", "https://levantwire.example/feeds/all.xml", "https://levantwire.example/feeds/a"),
    ("//cdn.levantwire.example/a", "https://levantwire.example/feed.xml",
     "https://cdn.levantwire.example/a"),
    ("javascript:alert(1)", "https://levantwire.example/", None),
    ("/2026/11/24/a", None, None),  # relative, with nothing to resolve it against
    ("/2026/11/24/a", "file:///srv/feed.xml", None),
    ("https:no-host", None, None),
    ("http://[unbalanced/a", None, None),
    # A character reference is no escape: the feed's XML decoded its own, and one left in is
    # text, which the page escapes and the browser reads as a path.
    ("&#106;avascript:alert(1)", "https://levantwire.example/",
     "https://levantwire.example/&#106;avascript:alert(1)"),
    ("java&#9;script:alert(1)", None, None),
    ("https:same-host", "https://levantwire.example/feed.xml",  # as a browser resolves it
     "https://levantwire.example/same-host"),
])
def test_links_are_read_as_a_browser_reads_them(given, base, expected):
    assert web_link(given, base) == expected


def test_hostile_links_never_reach_a_page_or_an_email(app, client, tmp_path):
    items = [item("The real story", GOOD, "good", "top-story")]
    items += [item(f"Hostile {name}", link, f"hostile-{i}", "top-story")
              for i, (name, link) in enumerate(HOSTILE.items())]
    result = ingest_feed(write(tmp_path, rss(*items)), now=DIGEST_NOW)
    db.session.commit()
    assert (result.new, result.refused, result.skipped) == (1, len(HOSTILE), 0)
    assert db.session.scalars(select(Article.link)).all() == [GOOD]

    reader = verified_supporter("noa@example.org")
    confirmed_subscriber("noa@example.org", reader)
    sign_in(client, reader)
    page = client.get("/news/my").get_data(as_text=True)
    assert GOOD in hrefs(page)
    assert unsafe(hrefs(page)) == [] and "Hostile" not in page

    transport = Recorder()
    assert digest(transport=transport).sent == 1
    [message] = transport.messages()
    email_html, text = body(message, "html"), body(message, "plain")
    assert GOOD in hrefs(email_html) and f"Read it: {GOOD}" in text
    assert unsafe(hrefs(email_html)) == [] and "Hostile" not in email_html
    squeezed = re.sub(r"\s", "", text).lower()
    assert "script:" not in squeezed and "data:" not in squeezed and "Hostile" not in text


def test_the_database_refuses_a_link_that_is_no_web_address(app):
    """Whatever writes a story, not only the ingest."""
    for link in ("javascript:alert(1)", "data:text/html,x", "/relative"):
        with pytest.raises(IntegrityError), db.session.begin_nested():
            db.session.add(Article(guid=link, link=link, title="t", published_at=utcnow()))
    assert count() == 0


def test_relative_links_are_resolved_against_the_feed_address(app, tmp_path):
    feed = rss(item("Rooted", "/2026/11/24/rooted", "r1"),
               item("Beside", "beside", "r2"),
               item("Elsewhere", "//cdn.levantwire.example/elsewhere", "r3"))
    # Fetched over http, after a redirect: relative to where the feed was read from.
    with serving({"/news/feed.xml": feed.encode()}, {"/feed": "/news/feed.xml"}) as url:
        result = ingest_feed(f"{url}/feed", now=DIGEST_NOW)
    assert (result.new, result.refused) == (3, 0)
    links = dict(db.session.execute(select(Article.title, Article.link)).all())
    assert links == {"Rooted": f"{url}/2026/11/24/rooted", "Beside": f"{url}/news/beside",
                     "Elsewhere": "http://cdn.levantwire.example/elsewhere"}

    # Read from a file: relative to the address the feed gives for itself.
    own = rss(item("Own", "/own", "o1")).replace(
        "<channel>", '<channel><atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="self" '
                     'href="https://feeds.levantwire.example/all.xml"/>')
    ingest_feed(write(tmp_path, own, "own.xml"), now=DIGEST_NOW)
    site = rss(item("Site", "site", "s1"))  # no self link: its site's address
    ingest_feed(write(tmp_path, site, "site.xml"), now=DIGEST_NOW)
    links = dict(db.session.execute(select(Article.title, Article.link)).all())
    assert links["Own"] == "https://feeds.levantwire.example/own"
    assert links["Site"] == "https://levantwire.example/site"

    # No address at all: a relative link cannot be followed, and the entry is refused.
    bare = rss(item("Nowhere", "/nowhere", "n1")).replace(
        "<link>https://levantwire.example/</link>", "")
    assert ingest_feed(write(tmp_path, bare, "bare.xml"), now=DIGEST_NOW).refused == 1


def test_huge_titles_and_summaries_are_cut_and_the_email_stays_small(app, tmp_path):
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
    summary = "&lt;p&gt;" + words * (3 * 1024 * 1024 // len(words)) + "&lt;/p&gt;"  # 3 MB
    title = "Breaking " + words * 20_000  # 1.4 MB
    feed = rss(item(title, GOOD, "huge", "top-story", summary=summary))
    assert len(feed) > 4 * 1024 * 1024
    ingest_feed(write(tmp_path, feed), now=DIGEST_NOW)
    story = db.session.scalar(select(Article))
    for text, limit in ((story.title, TITLE_MAX), (story.summary, SUMMARY_MAX)):
        assert limit // 2 < len(text) <= limit and text.endswith("\u2026")
        # Cut between words: every word kept is whole.
        assert set(text.removesuffix("\u2026").split()) <= set(title.split())

    confirmed_subscriber("noa@example.org")
    transport = Recorder()
    assert digest(transport=transport).sent == 1
    [(_, raw)] = transport.sent
    assert len(raw) < 32 * 1024
    assert story.summary in body(transport.messages()[0], "html")


def test_distinct_ids_sharing_a_link_stay_distinct(app, tmp_path):
    """A live page updated all day: one link, 131 entries."""
    feed = write(tmp_path, rss(*(item(f"Live update {i}", GOOD, f"live-{i}") for i in range(131))))
    first = ingest_feed(feed, now=DIGEST_NOW)
    assert (first.new, first.updated, first.unchanged) == (131, 0, 0)
    assert count() == 131
    titles = set(db.session.scalars(select(Article.title)))
    assert titles == {f"Live update {i}" for i in range(131)}
    again = ingest_feed(feed, now=DIGEST_NOW)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 131)
    assert count() == 131


def test_words_stay_apart_where_blocks_end(app, tmp_path):
    summaries = {
        "everyone GROW": "&lt;p&gt;everyone&lt;/p&gt;&lt;h2&gt;GROW&lt;/h2&gt;",
        "one two": "one&lt;br&gt;two",
        "first second": "&lt;ul&gt;&lt;li&gt;first&lt;/li&gt;&lt;li&gt;second&lt;/li&gt;"
                        "&lt;/ul&gt;",
        "cell cell": "&lt;table&gt;&lt;tr&gt;&lt;td&gt;cell&lt;/td&gt;&lt;TD&gt;cell&lt;/TD&gt;"
                     "&lt;/tr&gt;&lt;/table&gt;",
        "quoted after": "&lt;blockquote&gt;quoted&lt;/blockquote&gt;after",
        "Hello, world": "&lt;b&gt;Hel&lt;/b&gt;lo, &lt;a href='https://x.example'&gt;world&lt;/a&gt;",
    }
    feed = rss(*(item(f"Story {i}", f"{GOOD}/{i}", f"s{i}", summary=summary)
                 for i, summary in enumerate(summaries.values())))
    ingest_feed(write(tmp_path, feed), now=DIGEST_NOW)
    stored = db.session.scalars(select(Article.summary).order_by(Article.guid)).all()
    assert stored == list(summaries)
