"""The console's routes, headers and cross-site refusal, through the in-process app
(issue 8, docs/console.md). The browser tests are in test_browser.py."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from convostore.api import console
from convostore.store.sqlite import SQLiteStore
from tests.support import Api, make_app

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "src" / "convostore" / "console"
SECRET = "acme:" + "k" * 32


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Api]:
    """An app that requires keys (the console itself must not)."""
    client = Api(make_app(SQLiteStore(tmp_path / "c.db"), api_keys=SECRET))
    yield client
    client.close()


def raw(api: Api, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request without the JSON checks of Api.request (the console answers HTML)."""
    response: httpx.Response = api.loop.run_until_complete(api.client.request(method, path, **kwargs))
    return response


def test_page_is_public_and_locked_down(app: Api) -> None:
    page = raw(app, "GET", "/console")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["img-src"] == "'self' data: http: https:"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["x-request-id"]
    # The API next to it still wants a key.
    assert raw(app, "GET", "/v1/conversations").status_code == 401


def test_page_has_no_inline_code(app: Api) -> None:
    html = raw(app, "GET", "/console").text
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts), scripts
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers
    assert not re.search(r"\sstyle\s*=", html)  # no inline style (style-src 'self')
    assert "{{" not in html


def test_assets_are_versioned_and_cached(app: Api) -> None:
    html = raw(app, "GET", "/console").text
    for name, content_type in console.ASSETS.items():
        found = re.search(rf'"console/{re.escape(name)}\?v=([0-9a-f]{{16}})"', html)
        assert found, name
        asset = raw(app, "GET", f"/console/{name}", params={"v": found.group(1)})
        assert asset.status_code == 200
        assert asset.headers["content-type"] == content_type
        assert asset.content == (FOLDER / name).read_bytes()
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["x-content-type-options"] == "nosniff"
        # Another version in the URL (an old page): served, but revalidated.
        stale = raw(app, "GET", f"/console/{name}", params={"v": "0" * 16})
        assert stale.headers["cache-control"] == "no-cache"
        again = raw(app, "GET", f"/console/{name}", headers={"if-none-match": asset.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
        assert raw(app, "GET", f"/console/{name}", headers={"if-none-match": '"other"'}).status_code == 200


def test_head_slash_and_unknown_paths(app: Api) -> None:
    head = raw(app, "HEAD", "/console")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(raw(app, "GET", "/console").content)
    slash = raw(app, "GET", "/console/")
    assert (slash.status_code, slash.headers["location"]) == (308, "../console")
    # Only the console's own paths are public: others still want a key first.
    assert raw(app, "GET", "/console/secrets.txt").status_code == 401
    missing = raw(app, "GET", "/console/secrets.txt", headers={"authorization": "Bearer " + "k" * 32})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (GET /console/secrets.txt)"
    post = raw(app, "POST", "/console")
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    assert set(post.json()["error"]) == {"message", "type", "param", "code"}


def test_not_in_the_openapi_document(app: Api) -> None:
    document = raw(app, "GET", "/openapi.json").json()
    assert not [path for path in document["paths"] if "console" in path]


def test_script_builds_the_dom_and_keeps_the_key_to_itself() -> None:
    """Stored items are attacker-controlled: the script never parses them as HTML, and the
    key lives in sessionStorage, sent only as a header (the browser tests show it works)."""
    script = (FOLDER / "console.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "localStorage" not in script and "document.cookie" not in script
    assert "Authorization = `Bearer ${key}`" in script


def test_package_data_ships_the_console() -> None:
    """Every console file is matched by the wheel's package-data globs (pip install alone)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["convostore"]
    package = ROOT / "src" / "convostore"
    shipped = {path for pattern in globs for path in package.glob(pattern)}
    files = {path for path in FOLDER.iterdir() if path.is_file()}
    assert files and files <= shipped, files - shipped
    assert set(console.assets()) == {"index.html", *console.ASSETS}


# -- what the list extension adds for the console --------------------------------------------


def test_list_carries_item_count_and_last_activity(api: Api) -> None:
    quiet = api.new_conversation(metadata={"team": "red"})
    busy = api.new_conversation(items=[{"role": "user", "content": str(n)} for n in range(3)])
    items = api.add(busy, *({"role": "assistant", "content": str(n)} for n in range(20)))
    api.add(busy, {"role": "user", "content": "more"})
    assert api.delete(f"/v1/conversations/{busy}/items/{items[0]['id']}").status_code == 200
    entries = {c["id"]: c for c in api.get("/v1/conversations").json()["data"]}
    assert entries[busy]["item_count"] == 23 == len(api.all_items(busy))
    assert entries[quiet]["item_count"] == 0
    assert entries[quiet]["last_active_at"] == entries[quiet]["created_at"]
    assert entries[busy]["last_active_at"] >= entries[busy]["created_at"]
    # The same with a metadata filter (another statement), and under /openai/v1.
    filtered = api.get("/openai/v1/conversations", params={"metadata[team]": "red"}).json()["data"]
    assert [(c["id"], c["item_count"]) for c in filtered] == [(quiet, 0)]
    # The official routes answer the ConversationResource unchanged.
    for answer in (api.get(f"/v1/conversations/{busy}"), api.post(f"/v1/conversations/{busy}", json={"metadata": {}})):
        assert set(answer.json()) == {"id", "object", "created_at", "metadata"}


def test_metrics_name_the_console_pages(app: Api) -> None:
    router = app.app.router
    assert router.label("GET", "/console") == "/console"
    assert router.label("GET", "/console/console.js") == "/console/console.js"
    assert router.label("GET", "/console/anything") == "unmatched"  # a bounded label set
