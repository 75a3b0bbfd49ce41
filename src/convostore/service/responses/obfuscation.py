"""The ``obfuscation`` field of streamed delta events (``stream_options.include_obfuscation``,
true by default as in OpenAI's API).

It pads each delta to a multiple of 16 characters with letters and digits, the rule
OpenAI's recorded streams follow (``"Paris"`` gets 11, a 16-character delta an empty
string), so the size of an encrypted event no longer tells an observer the length of the
text in it. Only the length matters, not the letters: they are slices of one random
string made at import, at offsets from a fast non-cryptographic source, which costs about
an eighth of a ``secrets`` call per delta.
"""

from __future__ import annotations

import random
import secrets
import string

BLOCK = 16
_ALPHABET = string.ascii_letters + string.digits
_OFFSETS = 4096  # 12 random bits
_PADDING = "".join(secrets.choice(_ALPHABET) for _ in range(_OFFSETS + BLOCK))
_offset = random.Random(secrets.randbits(64)).getrandbits


def padding(delta: str) -> str:
    """Random letters that bring ``delta`` to a multiple of 16 characters."""
    start = _offset(12)
    return _PADDING[start : start + (-len(delta)) % BLOCK]
