"""/docs and /redoc load every script and stylesheet from the service itself (SPEC section 5).

That the page really renders the OpenAPI 3.1 document, offline, is checked in a
real browser by tests/integration/test_browser.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest


class References(HTMLParser):
    """Every URL a page makes the browser fetch: script src, link href, img src, spec urls."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href", "spec-url"):
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        self.scripts.append(data)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    inline = "\n".join(parser.scripts)
    # Swagger UI's inline set-up names the document: url: '/openapi.json'
    parser.urls += re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", inline)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_of_the_docs_is_served_by_the_service(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = references(response.text)
    assert any(u.endswith(".js") for u in urls), urls
    assert "/openapi.json" in urls
    if page == "/docs":
        assert any(u.endswith(".css") for u in urls), urls
    # No other host anywhere in the page: not in a tag, not in the inline script.
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", response.text), response.text
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url


async def test_an_unknown_asset_is_a_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/assets/nope.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
