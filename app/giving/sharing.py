"""Share links for the thank-you page: plain links to each network's own share page (and a
``mailto:``), so that no third-party script runs on our pages and no network learns who gave
unless the donor chooses to share."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class ShareLink:
    network: str  # "x", "facebook", "whatsapp", "email": for tests and styling
    label: str  # the link's text
    url: str
    new_tab: bool  # a web page of the network's; a mailto: link opens the mail app instead


def _q(text: str) -> str:
    # Every reserved character escaped, spaces as %20: mail clients do not read "+" as a space.
    return quote(text, safe="")


def share_links(url: str, *, title: str, org_name: str) -> list[ShareLink]:
    """Links that share the campaign page at ``url`` with a line about it (``title``)."""
    text = (f"I just gave to “{title}” at {org_name}: independent, ad-free news from the "
            "Middle East, paid for by its readers. Join me:")
    subject = f"Join me in supporting {org_name}"
    body = f"{text}\r\n\r\n{url}"  # RFC 6068: a line break in a mailto: body is %0D%0A
    return [
        ShareLink("x", "Share on X", "https://twitter.com/intent/tweet"
                  f"?text={_q(text)}&url={_q(url)}", True),
        ShareLink("facebook", "Share on Facebook",
                  f"https://www.facebook.com/sharer/sharer.php?u={_q(url)}", True),
        ShareLink("whatsapp", "Share on WhatsApp", f"https://wa.me/?text={_q(f'{text} {url}')}",
                  True),
        ShareLink("email", "Share by email", f"mailto:?subject={_q(subject)}&body={_q(body)}",
                  False),
    ]
