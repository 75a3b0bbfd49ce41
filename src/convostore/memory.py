"""Give large buffers back to the system when they are freed (issue 15, M3).

glibc's malloc serves a request of 128 KiB or more with its own ``mmap``, unmapped when
freed, but raises that threshold to the size of every such block freed (up to 32 MiB),
after which large buffers come from the heap and stay in the process when freed. One
32 MiB request body then left the server's resident memory hundreds of MiB higher for
good. Fixing the threshold at its initial value keeps every large buffer (a request
body, a page of items, an answer) mapped only while it is in use; small objects are not
affected. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("convostore")

M_MMAP_THRESHOLD = -3  # mallopt(3)
LARGE = 128 * 1024


def return_large_buffers() -> bool:
    """Fix malloc's mmap threshold at 128 KiB; True when it was set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, LARGE))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused")
    return done
