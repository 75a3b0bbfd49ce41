"""Issue 15, L5: image URLs reach the model server only when they follow the allow-list
(--upstream-image-url-prefixes, default https: and data:image/): a model server that
fetches images must not be made to fetch internal addresses for a client."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import OpenAI

from convostore.settings import Settings
from convostore.upstream.config import DEFAULT_IMAGE_PREFIXES
from tests.responses.fake_upstream import FakeUpstream, Reply, completion


def image(url: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": [{"type": "input_image", "image_url": url, "detail": "auto"}]}
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "  http://intranet.local/x.png",
        "data:text/html,<script>",
        "ftp://example.com/a.png",
    ],
)
def test_other_schemes_are_refused_and_nothing_is_sent(
    client: OpenAI, upstream: FakeUpstream, url: str
) -> None:
    upstream.script(Reply(body=completion("no")))
    conversation = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="m", conversation=conversation.id, input=image(url))  # type: ignore[arg-type]
    body = refused.value.body
    assert isinstance(body, dict) and body["param"] == "input[0].content[0].image_url"
    assert upstream.requests == []
    assert list(client.conversations.items.list(conversation.id)) == []


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "DATA:image/png;base64,iVBO"])
def test_allowed_ones_are_sent(client: OpenAI, upstream: FakeUpstream, url: str) -> None:
    upstream.script(Reply(body=completion("a cat")))
    client.responses.create(model="m", input=image(url))  # type: ignore[arg-type]
    assert upstream.last["messages"][0]["content"][0]["image_url"]["url"] == url


@pytest.mark.parametrize(
    "settings_overrides", [{"upstream_image_url_prefixes": "http://cdn.local/"}]
)
def test_the_operator_sets_the_list(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("ok")))
    client.responses.create(model="m", input=image("http://cdn.local/a.png"))  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="m", input=image("https://example.com/a.png"))  # type: ignore[arg-type]


def test_the_setting_default_is_the_default() -> None:
    assert Settings().image_url_prefixes == DEFAULT_IMAGE_PREFIXES
