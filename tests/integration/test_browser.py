"""A real browser (headless Chromium) against a real service: CORS and the offline /docs.

A page served from one loopback origin calls the service on another with
`fetch`, as a frontend would; the page writes what it saw into the DOM and
`chromium --dump-dom` hands that back. `.ci/run` installs Debian's `chromium`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import http.server
import json
import re
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID
from tests.conftest import API_KEY, make_settings, make_token
from tests.database import TestDatabase
from tests.servers import free_port, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)"),
]

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pending</title></head>
<body><pre id="result">pending</pre>
<script>
const API = %(api)s, TOKEN = %(token)s, API_KEY = %(api_key)s;
(async () => {
  const out = {};
  const json = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"};
  try {
    const created = await fetch(API + "/api/v1/orders", {
      method: "POST",
      headers: {...json, "Idempotency-Key": "browser-1", "X-Request-ID": "from-the-browser"},
      body: JSON.stringify({planId: %(plan)s, imageId: %(image)s, duration: "MONTHLY",
                            couponCode: "HEMAT20"}),
    });
    out.created = created.status;
    out.requestId = created.headers.get("X-Request-ID");
    const order = (await created.json()).data;
    out.status = order.status;
    out.finalPrice = order.pricing.finalPrice;

    const invalid = await fetch(API + "/api/v1/orders", {
      method: "POST", headers: json,
      body: JSON.stringify({planId: "plan-1", imageId: %(image)s, duration: "MONTHLY"}),
    });
    out.invalid = [invalid.status, (await invalid.json()).error.code];

    const anonymous = await fetch(API + "/api/v1/orders/" + order.id);
    out.anonymous = [anonymous.status, (await anonymous.json()).error.code];
  } catch (e) {
    out.error = String(e);
  }
  try {
    await fetch(API + "/api/v1/internal/orders", {headers: {"X-API-Key": API_KEY}});
    out.apiKey = "allowed";
  } catch (e) {
    out.apiKey = "blocked";
  }
  document.getElementById("result").textContent = JSON.stringify(out);
  document.title = "done";
})();
</script></body></html>
"""


@contextlib.contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """A plain http.server for `directory` on a loopback port of its own (another origin)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None  # type: ignore[assignment,method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def dump_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium sees it."""
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()


def page_result(dom: str) -> dict[str, Any]:
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert match, dom[-2000:]
    text = html.unescape(match.group(1))
    assert text != "pending", "the page's script did not finish"
    return json.loads(text)


@pytest.fixture
async def api_with_frontend(
    database: TestDatabase, catalog_app: Any, clean_db: None, tmp_path: Path
) -> AsyncIterator[tuple[str, str, Path]]:
    """(service URL, the allowed page origin, the page's folder); the catalog over real HTTP."""
    from order_service.app import create_app

    site = tmp_path / "site"
    site.mkdir()
    with static_site(site) as frontend:
        async with serve(catalog_app) as catalog_url:
            settings = make_settings(
                database.url, catalog_service_url=catalog_url, cors_origins=frontend
            )
            app = create_app(settings, start_provisioner=False)
            async with app.router.lifespan_context(app), serve(app) as api:
                yield api, frontend, site


def write_page(site: Path, api: str) -> None:
    values = {
        "api": api,
        "token": make_token("browser-user"),
        "api_key": API_KEY,
        "plan": PLAN_BASIC_ID,
        "image": IMAGE_UBUNTU_ID,
    }
    (site / "index.html").write_text(PAGE % {k: json.dumps(v) for k, v in values.items()})


async def test_a_page_on_an_allowed_origin_creates_an_order_and_reads_envelopes(
    api_with_frontend: tuple[str, str, Path], tmp_path: Path
) -> None:
    api, frontend, site = api_with_frontend
    write_page(site, api)
    result = page_result(await dump_dom(f"{frontend}/index.html", tmp_path / "profile"))
    assert result == {
        "created": 201,
        "requestId": "from-the-browser",  # exposed to the script
        "status": "PENDING_PAYMENT",
        "finalPrice": 72000,
        "invalid": [400, "VALIDATION_ERROR"],
        "anonymous": [401, "UNAUTHORIZED"],
        "apiKey": "blocked",  # X-API-Key never passes a preflight
    }
    async with httpx.AsyncClient(base_url=api) as client:
        listed = await client.get(
            "/api/v1/orders", headers={"Authorization": f"Bearer {make_token('browser-user')}"}
        )
    assert listed.json()["meta"]["total"] == 1


async def test_a_page_on_another_origin_is_refused_by_the_browser(
    api_with_frontend: tuple[str, str, Path], tmp_path: Path
) -> None:
    api, _frontend, site = api_with_frontend
    write_page(site, api)
    with static_site(site) as stranger:  # same page, an origin CORS_ORIGINS does not list
        result = page_result(await dump_dom(f"{stranger}/index.html", tmp_path / "profile"))
    assert result["error"].startswith("TypeError"), result
    assert "created" not in result
    async with httpx.AsyncClient(base_url=api) as client:
        listed = await client.get(
            "/api/v1/orders", headers={"Authorization": f"Bearer {make_token('browser-user')}"}
        )
    # The preflight failed, so the POST was never sent.
    assert listed.json()["meta"]["total"] == 0


async def test_the_docs_render_the_api_without_the_internet(
    api_with_frontend: tuple[str, str, Path], tmp_path: Path
) -> None:
    api, _frontend, _site = api_with_frontend
    dom = await dump_dom(f"{api}/docs", tmp_path / "profile")
    # Swagger UI rendered the operations of the OpenAPI 3.1 document.
    assert "Order a VPS" in dom, dom[-3000:]
    assert "/api/v1/internal/orders/{order_id}/payment-status" in dom
    assert "Unable to render this definition" not in dom
