"""Links in mail: every link of a message's two parts, and the check that they all stand on
PUBLIC_URL when it is not the host the requests name (``ELSEWHERE``)."""

from __future__ import annotations

import re
from email.message import EmailMessage

# Requests name donate.test (the test client's host, trusted as an extra host); links must
# name this instead, path prefix included.
ELSEWHERE = "https://giving.levantwire.example/support"


def links_of(message: EmailMessage) -> list[str]:
    found = []
    for kind in ("plain", "html"):
        found += re.findall(r"https?://[^\s\"'<>]+", message.get_body((kind,)).get_content())
    return found


def assert_on_public_url(message: EmailMessage, expected_path: str) -> None:
    """Every link of both parts is on PUBLIC_URL, and one leads to ``expected_path``."""
    links = links_of(message)
    assert any(link.startswith(f"{ELSEWHERE}{expected_path}") for link in links), \
        (message["Subject"], links)
    assert all(link.startswith(f"{ELSEWHERE}/") for link in links), (message["Subject"], links)
