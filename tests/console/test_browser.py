"""The console in a real browser (issue 8): headless Chromium (Debian's ``chromium``)
driven by Playwright against ``convostore serve`` on a socket.

Sign in, the list and its filters, a conversation of 300 items of mixed types read by
endless scroll, search and opening a hit, deleting an item, editing metadata, download,
isolation between projects, a phone-width screen, dark mode, and a page of another site
that tries to write to an open server. Screenshots of the main pages go to ``tmp_path``,
or to ``docs/console/`` with ``CONVOSTORE_SCREENSHOTS=1`` (docs/console.md shows them).

Without Chromium or Playwright these tests are skipped, except under CI (``CI`` set),
where they fail: CI must run them (``.ci/run`` installs the browser).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.items.cases import NO_OUTPUT_SCHEMA, VALID
from tests.support import running_server

try:
    from playwright.sync_api import Browser, Page, Request, expect, sync_playwright
except ImportError:  # reported by the browser fixture: skipped locally, failed in CI
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ACME = "sk-cs-acme-" + "a1b2c3d4" * 4
BETA = "sk-cs-beta-" + "e5f6a7b8" * 4
TIMEOUT_MS = 15_000
# The images on screen have loaded (those further down load lazily, when scrolled to).
IMAGES_SHOWN = "() => [...document.images].every(i => i.complete || i.getBoundingClientRect().top > innerHeight)"


def chromium() -> str | None:
    for candidate in (
        os.environ.get("CONVOSTORE_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def unavailable(reason: str) -> None:
    message = (
        reason
        + " (.ci/run installs Debian's chromium; pip install -e '.[test]' installs Playwright)"
    )
    if os.environ.get("CI"):
        pytest.fail("CI runs the browser tests and they cannot run: " + message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        unavailable("Playwright for Python is not installed")
    path = chromium()
    if path is None:
        unavailable("no Chromium found (CONVOSTORE_CHROMIUM, chromium on PATH, /usr/bin/chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


# -- the server and its data ------------------------------------------------------------------


@dataclass
class Server:
    origin: str

    def client(self, key: str | None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.origin + "/v1", headers=headers, timeout=30)


@dataclass
class Seeded:
    big: str  # acme's conversation of 300 items
    ids: list[str]  # its item ids in order
    xss: str
    late_output: str
    late_call: str
    lone_output: str
    needle: str  # the item whose text holds "zanzibar"
    billing: list[str]
    beta: str  # beta's conversation, which acme must never see
    extra: dict[str, Any] = field(default_factory=dict)


def message(role: str, text: str, **more: Any) -> dict[str, Any]:
    part = "input_text" if role == "user" else "output_text"
    return {"type": "message", "role": role, "content": [{"type": part, "text": text}], **more}


def filler(n: int) -> dict[str, Any]:
    """One item of a busy agent's transcript: questions, tool calls and answers."""
    kind = n % 6
    if kind == 0:
        return message("user", f"Question {n}: what about city {n}?")
    if kind == 1:
        summary = [{"type": "summary_text", "text": f"Thinking about city {n - 1}."}]
        return {"type": "reasoning", "id": f"rs_{n:048x}", "summary": summary}
    if kind == 2:
        arguments = json.dumps({"city": f"city {n}", "unit": "celsius"})
        return {
            "type": "function_call",
            "call_id": f"call_f{n}",
            "name": "get_weather",
            "arguments": arguments,
        }
    if kind == 3:
        return {
            "type": "function_call_output",
            "call_id": f"call_f{n - 1}",
            "output": json.dumps({"temperature": n % 30}),
        }
    if kind == 4:
        return message(
            "assistant", f"It is {n % 30} degrees in city {n - 2}.", phase="final_answer"
        )
    return message("assistant", f"Checking the forecast for city {n}.", phase="commentary")


def chart_png(width: int = 240, height: int = 120) -> str:
    """A small bar chart as a PNG data URL, made here (no image file in the repository)."""
    bars = [
        (0.35, (11, 98, 196)),
        (0.8, (46, 160, 67)),
        (0.55, (240, 136, 62)),
        (0.95, (180, 35, 24)),
    ]
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")  # filter: none
        for x in range(width):
            slot, inside = divmod(x, width // len(bars))
            level, color = bars[min(slot, len(bars) - 1)]
            filled = 8 <= inside < width // len(bars) - 8 and y >= height * (1 - level)
            row += bytes(color if filled else (246, 247, 249))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


def big_conversation() -> list[dict[str, Any]]:
    chart = [
        {"type": "input_text", "text": "Here is this week's chart: which day was warmest?"},
        {"type": "input_image", "image_url": chart_png(), "detail": "low"},
    ]
    items: list[dict[str, Any]] = [
        message("user", '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'),
        # An output that comes before its call (the call is on the fourth page).
        {"type": "function_call_output", "call_id": "call_late", "output": "late but paired"},
        {"type": "function_call_output", "call_id": "call_never", "output": "no call anywhere"},
        {"type": "message", "role": "user", "content": chart},
        message("user", "Hostile links:")
        | {
            "content": [
                {
                    "type": "input_image",
                    "image_url": "javascript:window.__pwned=3",
                    "detail": "auto",
                },
                {
                    "type": "input_file",
                    "file_url": "javascript:window.__pwned=4",
                    "filename": "x.pdf",
                },
            ]
        },
        *(payload for _, payload in VALID if payload.get("type") not in NO_OUTPUT_SCHEMA),
    ]
    n = 0
    while len(items) < 297:
        items.append(filler(n))
        n += 1
    items.insert(
        160,
        {"type": "function_call", "call_id": "call_late", "name": "slow_tool", "arguments": "{}"},
    )
    items.insert(250, message("user", "Is the zanzibar ferry running today?"))
    items.append(message("assistant", "This is the very last item.", phase="final_answer"))
    assert len(items) == 300
    return items


def create(
    client: httpx.Client, items: list[dict[str, Any]], metadata: dict[str, str]
) -> tuple[str, list[str]]:
    made = client.post("/conversations", json={"metadata": metadata, "items": items[:20]})
    assert made.status_code == 200, made.text
    conversation = made.json()["id"]
    for start in range(20, len(items), 20):
        added = client.post(
            f"/conversations/{conversation}/items", json={"items": items[start : start + 20]}
        )
        assert added.status_code == 200, added.text
    return conversation, all_ids(client, conversation)


def all_ids(client: httpx.Client, conversation: str) -> list[str]:
    ids: list[str] = []
    query: dict[str, Any] = {"order": "asc", "limit": 100}
    while True:
        page = client.get(f"/conversations/{conversation}/items", params=query).json()
        ids += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            return ids
        query["after"] = page["last_id"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("console") / "console.db"
    with running_server(db, env={"CONVOSTORE_API_KEYS": f"acme:{ACME},beta:{BETA}"}) as base:
        yield Server(base.removesuffix("/v1"))


@pytest.fixture(scope="module")
def seeded(server: Server) -> Seeded:
    with server.client(ACME) as acme, server.client(BETA) as beta:
        billing = [
            create(
                acme, [message("user", f"Refund for order {n}")], {"topic": "billing", "n": str(n)}
            )[0]
            for n in range(3)
        ]
        big, ids = create(acme, big_conversation(), {"topic": "weather", "agent": "travel"})
        secret, _ = create(beta, [message("user", "beta's secret plans")], {"topic": "weather"})
    return Seeded(
        big=big,
        ids=ids,
        xss=ids[0],
        late_output=ids[1],
        lone_output=ids[2],
        late_call=ids[160],
        needle=ids[250],
        billing=billing,
        beta=secret,
    )


# -- the browser side ---------------------------------------------------------------------------


@dataclass
class Tab:
    page: Page
    requests: list[Request]
    problems: list[str]

    def check_clean(self) -> None:
        """No script error and no CSP violation happened on the page."""
        assert not self.problems, self.problems


@pytest.fixture
def tabs(browser: Browser) -> Iterator[Callable[..., Tab]]:
    contexts = []

    def open_tab(origin: str, *, dark: bool = False, width: int = 1280, height: int = 900) -> Tab:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme="dark" if dark else "light",
            device_scale_factor=1,
        )
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        # Hermetic: nothing leaves the machine (items may hold image URLs of other hosts).
        context.route(
            re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])"), lambda route: route.abort()
        )
        page = context.new_page()
        tab = Tab(page, [], [])
        page.on("request", lambda request: tab.requests.append(request))
        page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
        # Script errors and CSP violations; a refused request (401, 404) is logged too, as
        # "Failed to load resource", and is expected.
        page.on(
            "console",
            lambda msg: (
                tab.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.goto(origin + "/console")
        return tab

    yield open_tab
    for context in contexts:
        context.close()


def shot(page: Page, tmp_path: Path, name: str) -> None:
    folder = SHOTS if os.environ.get("CONVOSTORE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 2_000


def sign_in(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()


def open_conversation(page: Page, conversation: str) -> None:
    page.locator(f'a[href="#/c/{conversation}"]').click()
    expect(page.locator(".conv-head .cid")).to_have_text(conversation)


def scroll_to_end(page: Page) -> None:
    more = page.locator(".conversation .more")
    for _ in range(60):
        if more.inner_text() == "End of the conversation.":
            return
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(100)
    expect(more).to_have_text("End of the conversation.")


def top_level_ids(page: Page) -> list[str]:
    ids: list[str] = page.evaluate(
        "[...document.querySelectorAll('ol.items > li.item')].map(li => li.dataset.id)"
    )
    return ids


def every_shown_id(page: Page) -> list[str]:
    ids: list[str] = page.evaluate(
        "[...document.querySelectorAll('li.item')].map(li => li.dataset.id)"
    )
    return ids


# -- the tests ----------------------------------------------------------------------------------


def test_sign_in_list_filters_and_isolation(
    tabs: Callable[..., Tab], server: Server, seeded: Seeded, tmp_path: Path
) -> None:
    tab = tabs(server.origin)
    page = tab.page
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("API key")).to_be_focused()
    page.get_by_label("API key").fill("sk-cs-not-a-key-" + "x" * 20)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".signin .error")).to_contain_text("This key was refused")
    shot(page, tmp_path, "signin")

    sign_in(page, ACME)
    expect(page.locator("#mode")).to_have_text("signed in")
    rows = page.locator("ol.rows > li")
    expect(rows).to_have_count(4)
    # Newest first, with metadata, item counts and times; beta's conversation is not there.
    shown = page.evaluate("[...document.querySelectorAll('ol.rows .cid')].map(n => n.textContent)")
    assert shown == [seeded.big, *reversed(seeded.billing)]
    big_row = rows.first
    expect(big_row).to_contain_text("300 items")
    expect(big_row.locator(".chip")).to_have_text(["topic: weather", "agent: travel"])
    expect(big_row.locator("time.active")).not_to_be_empty()
    expect(page.locator(".list .more")).to_have_text("4 conversations, all shown")
    # Each row previews its first user message's text (issue 19), as text, never markup.
    expect(rows.locator(".preview")).to_have_text(
        [
            '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>',
            *(f"Refund for order {n}" for n in (2, 1, 0)),
        ]
    )
    assert page.evaluate("window.__pwned") is None
    shot(page, tmp_path, "list")

    # Filters: metadata, then a creation window that holds nothing.
    page.get_by_label("Metadata", exact=True).fill("topic=billing")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("1 item")
    page.get_by_label("Metadata", exact=True).fill("topic=billing, n=1")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("ol.rows .cid")).to_have_text([seeded.billing[1]])
    page.get_by_label("Metadata", exact=True).fill("topic")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#status")).to_contain_text("A metadata filter is key=value")
    page.get_by_role("button", name="Clear").click()
    expect(rows).to_have_count(4)
    page.get_by_label("Created from").fill("2099-01-01")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".list .more")).to_have_text("No conversations.")
    page.get_by_role("button", name="Clear").click()
    expect(rows).to_have_count(4)

    # Another project's conversation cannot be opened through the console either.
    page.goto(f"{server.origin}/console#/c/{seeded.beta}")
    expect(page.get_by_role("heading", name="Conversation not found")).to_be_visible()

    # The key: in sessionStorage only, in the Authorization header only, never in a URL.
    assert page.evaluate("sessionStorage.getItem('convostore.key')") == ACME
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    api_calls = [r for r in tab.requests if "/v1/" in r.url]
    assert len(api_calls) >= 8
    for request in tab.requests:
        assert ACME not in request.url
    sent = [r.headers.get("authorization") for r in api_calls]
    # The first look is without a key (is the server open?), then the refused key's try.
    assert sent[:2] == [None, "Bearer sk-cs-not-a-key-" + "x" * 20]
    assert set(sent[2:]) == {f"Bearer {ACME}"}

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # The other project's key sees only its own.
    sign_in(page, BETA)
    expect(page.locator("ol.rows .cid")).to_have_text([seeded.beta])
    tab.check_clean()


def test_conversation_of_300_items(
    tabs: Callable[..., Tab], server: Server, seeded: Seeded, tmp_path: Path
) -> None:
    tab = tabs(server.origin)
    page = tab.page
    sign_in(page, ACME)
    open_conversation(page, seeded.big)
    expect(page.locator("li.item").first).to_be_visible()
    assert (
        page.locator(".outputs").first.evaluate("list => getComputedStyle(list).listStyleType")
        == "none"
    )
    # Endless scroll: not loaded whole, pages of 50 as the end comes near.
    shown = len(every_shown_id(page))
    assert 50 <= shown < 300 and shown % 50 == 0, shown
    expect(page.locator(".conv-head .chip")).to_have_text(["topic: weather", "agent: travel"])
    page.wait_for_function(IMAGES_SHOWN)
    chart = page.locator('li.role-user img[src^="data:image/png"]').first
    assert chart.evaluate("i => i.naturalWidth") == 240
    shot(page, tmp_path, "conversation")
    page.locator('li[data-type="function_call"]').filter(
        has_text="get_forecast"
    ).scroll_into_view_if_needed()
    page.wait_for_function(IMAGES_SHOWN)
    shot(page, tmp_path, "conversation-tools")

    scroll_to_end(page)
    expect(page.get_by_text("This is the very last item.")).to_be_visible()
    expect(page.locator(".loaded")).to_have_text("300 items loaded")
    item_pages = [r.url for r in tab.requests if f"/conversations/{seeded.big}/items" in r.url]
    # The list's preview of this conversation read its first 10 items once (issue 19).
    previews = [url for url in item_pages if "limit=10&" in url or url.endswith("limit=10")]
    assert len(previews) == 1
    item_pages = [url for url in item_pages if url not in previews]
    assert len(item_pages) == 6 and all(
        "limit=50" in url and "order=asc" in url for url in item_pages
    )
    assert sum("after=" in url for url in item_pages) == 5

    # Every item is there once, and in order (outputs sit under their calls).
    shown_ids = every_shown_id(page)
    assert sorted(shown_ids) == sorted(seeded.ids)
    positions = [seeded.ids.index(i) for i in top_level_ids(page)]
    assert positions == sorted(positions)

    # Rendered for people: stored text is text, never markup.
    xss = page.locator(f'li[data-id="{seeded.xss}"] .text')
    expect(xss).to_have_text(
        '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    )
    assert page.evaluate("window.__pwned") is None
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator('[src^="javascript:"], [href^="javascript:"]').count() == 0
    expect(page.get_by_text("image not shown: javascript:window.__pwned=3")).to_be_visible()
    # Calls and outputs paired by call_id, whichever page each was on.
    expect(
        page.locator(
            f'li[data-id="{seeded.late_call}"] > .outputs > li[data-id="{seeded.late_output}"]'
        )
    ).to_have_count(1)
    expect(page.locator(f'li[data-id="{seeded.late_output}"]')).not_to_have_class(
        re.compile("orphan")
    )
    expect(page.locator(f'li[data-id="{seeded.lone_output}"]')).to_have_class(re.compile("orphan"))
    pairs = page.locator(
        'li[data-type="function_call"] > .outputs > li[data-type="function_call_output"]'
    )
    assert pairs.count() >= 40
    first_call = page.locator('li[data-type="function_call"]').filter(has_text="get_weather").first
    expect(first_call.locator(".field pre").first).to_contain_text(
        '"unit": "celsius"'
    )  # pretty JSON
    expect(
        page.locator(
            'li[data-type="custom_tool_call"] > .outputs > li[data-type="custom_tool_call_output"]'
        )
    ).to_have_count(1)
    expect(
        page.locator(
            'li[data-type="mcp_approval_request"] > .outputs > li[data-type="mcp_approval_response"]'
        )
    ).to_have_count(1)
    # MCP call, reasoning summary, phases, images, folded JSON.
    expect(page.locator('li[data-type="mcp_call"] .kind')).to_have_text(
        "mcp_call deepwiki.ask_question"
    )
    expect(page.locator('li[data-type="mcp_call"]')).to_contain_text("Pagination uses cursor pages")
    expect(
        page.locator('li[data-type="reasoning"] .text', has_text="Thinking about city 0.")
    ).to_have_count(1)
    expect(
        page.locator('li[data-type="reasoning"] .text', has_text="Checking the weather")
    ).to_have_count(1)
    expect(page.locator("li.role-assistant .badge", has_text="final_answer").first).to_be_visible()
    expect(page.locator("li.role-assistant .badge", has_text="commentary").first).to_be_visible()
    images = page.locator('li.item img[src^="data:image/png"]')
    assert images.count() >= 4  # input_images, a function output's image, image_generation_call
    for index in range(images.count()):  # lazy: each loads when scrolled to
        images.nth(index).scroll_into_view_if_needed()
        expect(images.nth(index)).to_have_js_property("complete", True)
        assert images.nth(index).evaluate("i => i.naturalWidth") > 0
    folded = page.locator('li[data-type="compaction"] > details')
    expect(folded).to_have_count(1)
    expect(folded.locator("pre")).not_to_be_visible()
    folded.locator("summary").click()
    expect(folded.locator("pre")).to_contain_text('"encrypted_content"')

    # Copy an item's id (the clipboard may be closed to a headless page: the fallback copies).
    page.locator(f'li[data-id="{seeded.needle}"]').get_by_role("button", name="Copy id").click()
    expect(page.locator("#status")).to_have_text(f"Copied item id {seeded.needle}")
    tab.check_clean()


def test_search_and_open_a_hit(
    tabs: Callable[..., Tab], server: Server, seeded: Seeded, tmp_path: Path
) -> None:
    tab = tabs(server.origin)
    page = tab.page
    sign_in(page, ACME)
    page.get_by_label("Search item text").fill("zanzibar")
    page.get_by_label("Search item text").press("Enter")
    hits = page.locator("ol.rows > li")
    expect(hits).to_have_count(1)
    expect(hits.locator("mark")).to_have_text("zanzibar")
    expect(hits.first).to_contain_text(seeded.big)
    expect(page.get_by_role("heading")).to_have_text("Items matching “zanzibar”")
    shot(page, tmp_path, "search")
    hits.first.locator("a").click()
    # The hit is on the sixth page: the console pages up to it and shows it.
    target = page.locator(f'li[data-id="{seeded.needle}"]')
    expect(target).to_have_class(re.compile("target"))
    expect(target).to_be_in_viewport()
    expect(target).to_be_focused()
    expect(target).to_contain_text("Is the zanzibar ferry running today?")

    # A search that finds nothing says so; one in another project's text finds nothing.
    page.goto(f"{server.origin}/console#/search/secret%20plans")
    expect(page.locator(".list .more")).to_have_text("No item matches.")
    tab.check_clean()


def test_delete_edit_download_with_the_keyboard(
    tabs: Callable[..., Tab], server: Server, seeded: Seeded, tmp_path: Path
) -> None:
    with server.client(ACME) as acme:
        conversation, ids = create(
            acme, [message("user", f"line {n}") for n in range(5)], {"topic": "scratch"}
        )
        tab = tabs(server.origin)
        page = tab.page
        sign_in(page, ACME)
        open_conversation(page, conversation)
        expect(page.locator("li.item")).to_have_count(5)

        # Delete an item: the dialog takes focus on Cancel; Escape keeps the item.
        victim = page.locator(f'li[data-id="{ids[2]}"]')
        delete = victim.get_by_role("button", name="Delete")
        delete.focus()
        page.keyboard.press("Enter")
        dialog = page.locator("dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(f"Item {ids[2]} will be removed")
        expect(page.locator("#dialog-cancel")).to_be_focused()
        expect(page.locator("#dialog-input")).to_be_hidden()  # a confirmation has no field
        shot(page, tmp_path, "confirm-delete")
        page.keyboard.press("Escape")
        expect(dialog).not_to_be_visible()
        expect(delete).to_be_focused()
        assert acme.get(f"/conversations/{conversation}/items/{ids[2]}").status_code == 200
        # Then confirm it.
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Delete item", exact=True).click()
        expect(victim).to_have_count(0)
        expect(page.locator("#status")).to_have_text(f"Deleted item {ids[2]}.")
        expect(
            page.locator(f'li[data-id="{ids[3]}"]').get_by_role("button", name="Delete")
        ).to_be_focused()
        assert acme.get(f"/conversations/{conversation}/items/{ids[2]}").status_code == 404
        assert all_ids(acme, conversation) == [ids[0], ids[1], ids[3], ids[4]]
        expect(page.locator(".loaded")).to_have_text("4 items loaded")

        # Edit the metadata: bad JSON is refused in the dialog, good JSON saved.
        page.get_by_role("button", name="Edit metadata").click()
        field = page.get_by_label("Metadata (JSON)")
        expect(field).to_be_focused()
        field.fill("{not json")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#dialog-error")).to_contain_text("Not JSON")
        field.fill('{"topic": 7}')
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#dialog-error")).to_contain_text("expected a string")
        field.fill('{"topic": "edited", "owner": "ops"}')
        page.get_by_role("button", name="Save").click()
        expect(page.locator("dialog")).not_to_be_visible()
        expect(page.locator(".conv-head .chip")).to_have_text(["topic: edited", "owner: ops"])
        assert acme.get(f"/conversations/{conversation}").json()["metadata"] == {
            "topic": "edited",
            "owner": "ops",
        }

        # Download as JSON lines: every item, in order, as the API has it.
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download JSON lines").click()
        download = download_info.value
        assert download.suggested_filename == f"{conversation}.jsonl"
        lines = Path(download.path()).read_text().splitlines()
        assert [json.loads(line)["id"] for line in lines] == [ids[0], ids[1], ids[3], ids[4]]
        assert json.loads(lines[0])["content"][0]["text"] == "line 0"

        # Copy the conversation's id, then delete the conversation.
        page.get_by_role("button", name="Copy id").first.click()
        expect(page.locator("#status")).to_have_text(f"Copied conversation id {conversation}")
        page.get_by_role("button", name="Delete conversation").click()
        page.locator("#dialog-ok").click()
        expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
        expect(page.locator("#status")).to_have_text(f"Deleted conversation {conversation}.")
        assert acme.get(f"/conversations/{conversation}").status_code == 404
        expect(page.locator(f'a[href="#/c/{conversation}"]')).to_have_count(0)
    tab.check_clean()


def test_phone_width_and_dark_mode(
    tabs: Callable[..., Tab], server: Server, seeded: Seeded, tmp_path: Path
) -> None:
    phone = tabs(server.origin, width=375, height=812)
    page = phone.page
    sign_in(page, ACME)
    no_sideways = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_sideways)
    shot(page, tmp_path, "phone-list")
    open_conversation(page, seeded.big)
    expect(page.locator("li.item").first).to_be_visible()
    page.locator('li[data-type="function_call"]').first.scroll_into_view_if_needed()
    assert page.evaluate(no_sideways)
    shot(page, tmp_path, "phone-conversation")
    phone.check_clean()

    dark = tabs(server.origin, dark=True)
    page = dark.page
    sign_in(page, ACME)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 23)", background  # the dark palette, not white
    open_conversation(page, seeded.big)
    page.wait_for_function(IMAGES_SHOWN)
    page.locator('li[data-type="function_call"]').first.scroll_into_view_if_needed()
    shot(page, tmp_path, "conversation-dark")
    dark.check_clean()


EVIL = """<!doctype html><title>evil</title>
<form id="f" method="post" action="{target}/v1/conversations" enctype="text/plain">
<input name='{{"metadata":{{"evil":"' value='yes"}}}}'></form>
<script>
fetch("{target}/v1/conversations", {{method: "POST", mode: "no-cors"}})
  .then(() => {{ document.title = "sent"; }}, () => {{ document.title = "failed"; }});
</script>"""


@contextmanager
def another_site(target: str) -> Iterator[int]:
    """A web server on another port serving a page that writes to ``target``."""
    body = EVIL.format(target=target).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_open_server_and_a_page_of_another_site(tabs: Callable[..., Tab], tmp_path: Path) -> None:
    """On an open loopback server the console needs no key, and a page of another site (or
    of another port of the same host) that the operator visits cannot write through the
    operator's browser."""
    with (
        running_server(tmp_path / "open.db") as base,
        another_site(base.removesuffix("/v1")) as port,
    ):
        origin = base.removesuffix("/v1")
        tab = tabs(origin)
        page = tab.page
        expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
        expect(page.locator("#mode")).to_have_text("open server (no API keys)")
        expect(page.get_by_role("button", name="Sign out")).to_be_hidden()

        # localhost is another site than 127.0.0.1; another port of 127.0.0.1 is same-site.
        for attacker in (f"http://localhost:{port}/", f"http://127.0.0.1:{port}/"):
            evil = page.context.new_page()
            evil.goto(attacker)
            expect(evil).to_have_title(
                "sent"
            )  # the browser sent it (no-cors: the answer is opaque)
            with evil.expect_navigation():
                evil.evaluate("document.getElementById('f').submit()")
            assert "Cross-site request refused" in evil.content(), attacker
            evil.close()
            with httpx.Client(base_url=base) as client:
                assert client.get("/conversations").json()["data"] == [], attacker

        # The console's own origin may write (Sec-Fetch-Site: same-origin).
        status = page.evaluate("fetch('/v1/conversations', {method: 'POST'}).then(r => r.status)")
        assert status == 200
        with httpx.Client(base_url=base) as client:
            assert len(client.get("/conversations").json()["data"]) == 1
        page.reload()
        expect(page.locator("ol.rows > li")).to_have_count(1)
        tab.check_clean()


def test_remote_images_load_only_on_a_click(
    tabs: Callable[..., Tab], server: Server, seeded: Seeded
) -> None:
    """Issue 15, L11: an image URL of another host is fetched only when the operator asks
    (a tracking pixel, or a GET into the operator's network); data: images show at once."""
    remote = "https://tracker.example/pixel.png?item=1"
    content = [
        {"type": "input_text", "text": "two pictures"},
        {"type": "input_image", "image_url": remote, "detail": "auto"},
        {"type": "input_image", "image_url": chart_png(), "detail": "auto"},
    ]
    with server.client(ACME) as acme:
        conversation, _ = create(
            acme, [{"type": "message", "role": "user", "content": content}], {"topic": "pixels"}
        )
    tab = tabs(server.origin)
    page = tab.page
    sign_in(page, ACME)
    open_conversation(page, conversation)
    expect(
        page.get_by_text("remote image, not loaded: https://tracker.example/pixel.png?item=1")
    ).to_be_visible()
    expect(page.locator('img[src^="data:image/png"]')).to_have_count(1)
    assert page.locator(f'img[src="{remote}"]').count() == 0
    assert not [r for r in tab.requests if "tracker.example" in r.url]
    page.get_by_role("button", name="Load the image from tracker.example").click()
    expect(page.locator(f'img[src="{remote}"]')).to_have_count(1)
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    assert [
        r for r in tab.requests if "tracker.example" in r.url
    ]  # asked for: fetched (and stopped by the test's router)


def test_fork_from_here(
    tabs: Callable[..., Tab], server: Server, seeded: Seeded, tmp_path: Path
) -> None:
    """Issue 18: an item's "Fork from here" makes a new conversation up to that item and
    opens it; the first one is left as it was."""
    with server.client(ACME) as acme:
        conversation, ids = create(
            acme, [message("user", f"step {n}") for n in range(4)], {"topic": "branch"}
        )
        tab = tabs(server.origin)
        page = tab.page
        sign_in(page, ACME)
        open_conversation(page, conversation)
        expect(page.locator("li.item")).to_have_count(4)
        page.locator(f'li[data-id="{ids[1]}"]').get_by_role(
            "button", name="Fork the conversation at item"
        ).click()
        expect(page.locator("dialog")).to_contain_text(f"up to and including {ids[1]}")
        page.locator("#dialog-ok").click()
        expect(page.locator("#status")).to_contain_text("Forked into conv_")
        expect(page.locator("#status")).to_contain_text("(2 items)")
        forked = re.search(r"conv_[0-9a-f]+", page.locator("#status").inner_text())
        assert forked is not None and forked.group(0) != conversation
        expect(page.locator(".cid")).to_have_text(forked.group(0))
        expect(page.locator("li.item")).to_have_count(2)
        assert all_ids(acme, forked.group(0)) == ids[:2]
        assert all_ids(acme, conversation) == ids
        assert acme.get(f"/conversations/{forked.group(0)}").json()["metadata"] == {
            "topic": "branch"
        }
    tab.check_clean()


def test_a_stored_response(tabs: Callable[..., Tab], tmp_path: Path) -> None:
    """Issue 17: a stored response opened by id: its input and output, read-only, links to
    its conversation and to the response it continues; a running background one cancelled,
    a response deleted."""
    from tests.responses.fake_upstream import FakeUpstream, Reply, completion, serve

    upstream = FakeUpstream()
    release = threading.Event()
    upstream.script(
        Reply(body=completion("Hi Ana")),
        Reply(body=completion("You are Ana")),
        Reply(body=completion("never"), release=release),
    )
    with (
        serve(upstream) as model_server,
        running_server(
            tmp_path / "responses.db",
            "--upstream",
            model_server + "/v1",
            env={"CONVOSTORE_API_KEYS": f"acme:{ACME}"},
        ) as base,
    ):
        origin = base.removesuffix("/v1")
        with Server(origin).client(ACME) as acme:
            conversation = acme.post("/conversations", json={}).json()["id"]
            first = acme.post(
                "/responses", json={"model": "m", "input": "I'm Ana", "conversation": conversation}
            ).json()
            second = acme.post(
                "/responses",
                json={"model": "m", "input": "Who am I?", "previous_response_id": first["id"]},
            ).json()
            running = acme.post(
                "/responses", json={"model": "m", "input": "slow", "background": True}
            ).json()
            tab = tabs(origin)
            page = tab.page
            sign_in(page, ACME)
            form = page.get_by_role("form", name="Open a stored response")
            form.get_by_label("Stored response").fill(second["id"])
            form.get_by_role("button", name="Open").click()
            expect(page.locator(".rid")).to_have_text(second["id"])
            expect(page.locator(".rstatus")).to_have_text("completed")
            expect(page.locator(".inputs li.item")).to_have_count(1)
            expect(page.locator(".inputs li.item")).to_contain_text("Who am I?")
            expect(page.locator(".answer li.item")).to_contain_text("You are Ana")
            # Read-only: no fork or delete of single items here.
            expect(page.get_by_role("button", name="Delete", exact=True)).to_have_count(0)
            expect(page.get_by_role("button", name="Cancel response")).to_be_hidden()
            shot(page, tmp_path, "response")
            page.get_by_role("link", name=first["id"]).click()
            expect(page.locator(".rid")).to_have_text(first["id"])
            expect(page.locator(".answer li.item")).to_contain_text("Hi Ana")
            page.get_by_role("link", name=conversation).click()
            expect(page.locator(".cid")).to_have_text(conversation)
            expect(page.locator("li.item")).to_have_count(2)

            page.goto(f"{origin}/console#/r/{running['id']}")
            expect(page.locator(".rstatus")).to_have_text(re.compile("queued|in_progress"))
            page.get_by_role("button", name="Cancel response").click()
            expect(page.locator(".rstatus")).to_have_text("cancelled")
            assert acme.get(f"/responses/{running['id']}").json()["status"] == "cancelled"

            page.goto(f"{origin}/console#/r/{second['id']}")
            page.get_by_role("button", name="Delete response").click()
            page.locator("#dialog-ok").click()
            expect(page.locator("#status")).to_contain_text(f"Deleted response {second['id']}")
            assert acme.get(f"/responses/{second['id']}").status_code == 404
            page.goto(f"{origin}/console#/r/{second['id']}")
            expect(page.locator("h1")).to_have_text("Response not found")
            release.set()
            tab.check_clean()
