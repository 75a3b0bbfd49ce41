"""What streaming a response in the background costs (issue 17).

The same scripted model server streams the same answer (CHUNKS text chunks, one every
GAP seconds, as a model would) for three readers, each timed from the POST to its last
event, medians of RUNS:

* ``stream``: ``stream: true``, the events sent as the chunks are translated;
* ``background``: ``background`` and ``stream`` true, the events stored in the database
  by the running task and read back from it by the client that made it;
* ``resumed on B``: a client of a second server process following that response with
  ``GET …?stream=true`` (polling the database every ``--response-stream-poll-seconds``).

    python benchmarks/background_stream.py [--db postgresql://…] [--runs 10]

One run, one machine: read the figures as ratios (``background`` over ``stream``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests: the launcher

from tests.responses.fake_upstream import FakeUpstream, Reply, chunks, serve
from tests.support import running_server

CHUNKS = 200
GAP = 0.005


def last_event_after(http: httpx.Client, method: str, url: str, body: object) -> tuple[float, dict]:
    started = time.perf_counter()
    last: dict = {}
    with http.stream(method, url, json=body) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                last = orjson.loads(line[6:])
    return time.perf_counter() - started, last


def follow(b: str, ready: threading.Event, response_id: list[str], out: list[float]) -> None:
    """Process B's reader: from the first event on, time to the last one."""
    ready.wait()
    with httpx.Client(timeout=120) as other:
        spent, last = last_event_after(
            other, "GET", f"{b}/responses/{response_id[0]}?stream=true", None
        )
    assert last["type"] == "response.completed"
    out.append(spent)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    upstream = FakeUpstream()
    with tempfile.TemporaryDirectory() as folder, serve(upstream) as url:
        upstream.url = url + "/v1"
        db = options.db or str(Path(folder) / "bench.db")
        args = ("--upstream", upstream.url, "--no-access-log")
        with running_server(db, *args) as a, running_server(db, *args) as b:
            timings: dict[str, list[float]] = {"stream": [], "background": [], "resumed on B": []}
            text = ["tok "] * CHUNKS
            with httpx.Client(timeout=120) as http:
                for _ in range(options.runs):
                    upstream.script(Reply(chunks=chunks(text=text, finish="stop"), chunk_delay=GAP))
                    spent, last = last_event_after(
                        http, "POST", a + "/responses", {"model": "m", "input": "x", "stream": True}
                    )
                    assert last["type"] == "response.completed"
                    timings["stream"].append(spent)

                    upstream.script(Reply(chunks=chunks(text=text, finish="stop"), chunk_delay=GAP))
                    body = {"model": "m", "input": "x", "stream": True, "background": True}
                    resumed: list[float] = []
                    ready = threading.Event()
                    response_id: list[str] = []
                    follower = threading.Thread(
                        target=follow, args=(b, ready, response_id, resumed)
                    )
                    follower.start()
                    started = time.perf_counter()
                    with http.stream("POST", a + "/responses", json=body) as answer:
                        for line in answer.iter_lines():
                            if line.startswith("data: "):
                                event = orjson.loads(line[6:])
                                if not response_id:
                                    response_id.append(event["response"]["id"])
                                    ready.set()
                    timings["background"].append(time.perf_counter() - started)
                    assert event["type"] == "response.completed"
                    follower.join()
                    timings["resumed on B"].append(resumed[0])
    backend = "PostgreSQL" if options.db else "SQLite"
    print(f"{backend}: {CHUNKS} chunks, one every {GAP * 1000:g} ms; medians of {options.runs}")
    base = statistics.median(timings["stream"])
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"  {name:<14} {median * 1000:8.1f} ms  ({median / base:.2f}x stream)")


if __name__ == "__main__":
    main()
