"""Feeds for the ingest tests: RSS written inline, a file, or a local HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


def rss(*items: str) -> str:
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
            '<link>https://levantwire.example/</link><description>d</description>'
            + "".join(items) + "</channel></rss>")


def item(title: str, link: str, guid: str | None = None, *cats: str,
         date: str = "Tue, 24 Nov 2026 08:00:00 GMT", summary: str = "A summary.") -> str:
    """An RSS item; every argument is XML already (escape ``<`` and ``&`` in text)."""
    return ("<item>" + f"<title>{title}</title><link>{link}</link>"
            + (f"<guid isPermaLink=\"false\">{guid}</guid>" if guid else "")
            + "".join(f"<category>{c}</category>" for c in cats)
            + f"<pubDate>{date}</pubDate><description>{summary}</description></item>")


def write(tmp_path, text: str, name: str = "feed.xml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@contextmanager
def serving(files: Mapping[str, bytes], redirects: Mapping[str, str] | None = None,
            ) -> Iterator[str]:
    """A local HTTP server answering each path of ``files`` with its bytes, each path of
    ``redirects`` with a 302 to its target, and 404 elsewhere; yields its base URL."""
    redirects = redirects or {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            if self.path in files:
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.end_headers()
                self.wfile.write(files[self.path])
            elif self.path in redirects:
                self.send_response(302)
                self.send_header("Location", redirects[self.path])
                self.end_headers()
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
