"""Generated ids: format, uniqueness across pool refills, and no shared bytes after fork."""

from __future__ import annotations

import os
import re

from convostore import ids

ID = re.compile(r"msg_[0-9a-f]{48}")


def test_format_and_uniqueness_across_refills() -> None:
    # 20 bytes per id: 1,000 ids cross the 4 KiB pool about five times.
    made = [ids.new_id("msg") for _ in range(1_000)]
    assert all(ID.fullmatch(i) for i in made)
    assert len(set(made)) == len(made)
    assert len({i[12:] for i in made}) == len(made)  # the random part alone


def test_a_forked_child_does_not_repeat_the_parents_bytes() -> None:
    ids.new_id("msg")  # the pool now holds bytes the child must not reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        os.write(write, ids.new_id("msg").encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = ids.new_id("msg")
    assert ID.fullmatch(child) and child[12:] != parent[12:]
