"""The clock convostore decides by, as one object a test can replace.

Code that acts on elapsed time (the key cache and rate limit of
:class:`~convostore.service.keys.Authenticator`, the renewal of a response's lease)
takes a :class:`Clock` instead of calling :mod:`time` and :func:`asyncio.sleep` itself,
so a test moves time by hand and waits on what the code does, not on the wall clock.
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    """The system's clock (the functions themselves: no call added on the hot path)."""

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)
    sleep = staticmethod(asyncio.sleep)


SYSTEM = Clock()
