"""Tables and target checks from a results document (the JSON run.py writes)."""

from __future__ import annotations

from typing import Any

CEILING_SHARE = 0.40  # get_item >= 40% of the bare endpoint's requests/s
PEER_FACTOR = 20.0  # convostore >= 20x the peer on every workload
# convostore / peer on every workload, by peer (issue 21): ahead of the durable Rust peers;
# against a store that keeps nothing (SMG in memory), writes at least half its rate.
PEER_TARGETS: dict[str, tuple[float, tuple[str, ...] | None]] = {
    "ogx": (PEER_FACTOR, None),
    "agentic-api": (1.0, None),
    "smg:postgres": (1.0, None),
    "smg:memory": (0.5, ("create_conv", "append1")),
}
SCALE_FACTOR = 1.2  # list_deep p50 <= 1.2 x list_shallow p50
RSS_LIMIT_MB = 100.0  # per server process, over the whole suite


def rate(result: dict[str, Any]) -> float:
    """The workload's headline rate: conversations/s for agents_replay, else requests/s."""
    if result.get("replays_per_s") is not None:
        return float(result["replays_per_s"])
    return float(result["rps"])


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _row(name: str, r: dict[str, Any], extra: str = "") -> list[str]:
    return [
        name,
        _fmt(r["rps"]),
        extra,
        _fmt(r["p50_ms"], 2),
        _fmt(r["p99_ms"], 2),
        str(r["errors"]),
        _fmt(r["server_cpu"], 2),
        _fmt(r["loader_cpu"], 2) + (" LOADER-BOUND" if r["loader_bound"] else ""),
        _fmt(r.get("other_cpu"), 2),
        _fmt(r.get("server_cpu_us_per_request"), 0),
        _fmt(r["peak_rss_mb"], 1),
    ]


def rows(doc: dict[str, Any], server: str) -> list[list[str]]:
    out = []
    for name, r in doc["servers"][server]["workloads"].items():
        extra = ""
        if r.get("items_per_s") is not None:
            extra = f"{_fmt(r['items_per_s'])} items/s"
        elif r.get("replays_per_s") is not None:
            extra = f"{_fmt(r['replays_per_s'], 1)} conv/s"
        out.append(_row(name, r, extra))
    return out


HEADER = [
    "workload",
    "req/s",
    "items/s or conv/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "server cores",
    "loader cores",
    "other cores",
    "server CPU us/req",
    "peak RSS MB",
]


def ceiling_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [_row(f"ceiling:{name}", r) for name, r in doc.get("ceiling", {}).items()]


def text_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append(
            "  ".join(
                (c.ljust(w) if i == 0 else c.rjust(w))
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of issue 9 that this run can judge, each measured within the run."""
    out: list[dict[str, Any]] = []
    ours = doc["servers"]["convostore"]["workloads"]
    bare = doc.get("ceiling", {}).get("bare")
    if bare and "get_item" in ours:
        share = ours["get_item"]["rps"] / bare["rps"]
        # The same ratio from server CPU time per request, which other load barely moves.
        cpu_share = bare["server_cpu_us_per_request"] / max(
            ours["get_item"]["server_cpu_us_per_request"], 1e-9
        )
        out.append(
            {
                "target": "ceiling: get_item >= 40% of bare ASGI req/s",
                "value": round(share, 3),
                "limit": CEILING_SHARE,
                "met": share >= CEILING_SHARE,
                "cpu_normalised": round(cpu_share, 3),
                "detail": f"{ours['get_item']['rps']:,.0f} / {bare['rps']:,.0f} req/s = {share:.1%}"
                f" (by server CPU per request: {cpu_share:.1%})",
            }
        )
    if "list_deep" in ours and "list_shallow" in ours:
        ratio = ours["list_deep"]["p50_ms"] / ours["list_shallow"]["p50_ms"]
        out.append(
            {
                "target": "scale: list_deep p50 <= 1.2 x list_shallow p50",
                "value": round(ratio, 3),
                "limit": SCALE_FACTOR,
                "met": ratio <= SCALE_FACTOR,
                "detail": f"{ours['list_deep']['p50_ms']:.2f} ms / {ours['list_shallow']['p50_ms']:.2f} ms",
            }
        )
    peak = doc["servers"]["convostore"].get("peak_process_rss_mb", 0.0)
    out.append(
        {
            "target": "memory: peak RSS per server process <= 100 MB",
            "value": peak,
            "limit": RSS_LIMIT_MB,
            "met": peak <= RSS_LIMIT_MB,
            "detail": f"largest VmHWM of any convostore process over the suite: {peak:.1f} MB",
        }
    )
    for server, peer in peers(doc):
        factor, only = PEER_TARGETS.get(target_key(server, peer), (1.0, None))
        for name, theirs in peer["workloads"].items():
            if name not in ours or rate(theirs) <= 0 or (only and name not in only):
                continue
            if theirs["errors"]:  # answers that were not a 200 are no result to compare
                out.append(
                    {
                        "target": f"peer: {name} vs {peer_label(server, peer)}",
                        "value": None,
                        "limit": factor,
                        "met": False,
                        "detail": f"no comparison: the peer answered {theirs['errors']} errors",
                    }
                )
                continue
            ratio = rate(ours[name]) / rate(theirs)
            out.append(
                {
                    "target": f"peer: {name} >= {factor:g}x {peer_label(server, peer)}",
                    "value": round(ratio, 2),
                    "limit": factor,
                    "met": ratio >= factor,
                    "detail": f"{rate(ours[name]):,.1f} / {rate(theirs):,.1f}",
                }
            )
    return out


def peers(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every peer measured in the run, in the order they ran."""
    return [(name, data) for name, data in doc["servers"].items() if name != "convostore"]


def target_key(server: str, peer: dict[str, Any]) -> str:
    return f"{server}:{peer['storage']}" if server == "smg" else server


def peer_label(server: str, peer: dict[str, Any]) -> str:
    return f"{server} {peer.get('version', '')} ({peer.get('storage', 'sqlite')})"


def peer_rows(doc: dict[str, Any], server: str) -> list[list[str]]:
    ours = doc["servers"]["convostore"]["workloads"]
    theirs = doc["servers"][server]["workloads"]
    out = []
    for name, r in theirs.items():
        if name not in ours:
            continue
        ratio = rate(ours[name]) / rate(r) if rate(r) > 0 else float("inf")
        unit = "conv/s" if r.get("replays_per_s") is not None else "req/s"
        out.append(
            [
                name,
                f"{_fmt(rate(ours[name]), 1)} {unit}",
                f"{_fmt(rate(r), 1)} {unit}",
                _fmt(r["p50_ms"], 2),
                _fmt(r["p99_ms"], 2),
                str(r["errors"]),
                f"{ratio:,.1f}x",
            ]
        )
    return out


def peer_header(server: str) -> list[str]:
    return ["workload", "convostore", server, f"{server} p50 ms", f"{server} p99 ms",
            f"{server} errors", "ratio"]  # fmt: skip


def comparison_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per workload: convostore's rate, then each peer's, with the ratio."""
    found = peers(doc)
    header = ["workload", "convostore"] + [
        f"{peer_label(s, p)} (convostore / it)" for s, p in found
    ]
    body = []
    for name, r in doc["servers"]["convostore"]["workloads"].items():
        row = [name, _fmt(rate(r))]
        for _, peer in found:
            theirs = peer["workloads"].get(name)
            if theirs is None or rate(theirs) <= 0:
                row.append("-")
                continue
            errors = f", {theirs['errors']} errors" if theirs["errors"] else ""
            row.append(f"{_fmt(rate(theirs))} ({rate(r) / rate(theirs):.2f}x{errors})")
        body.append(row)
    ours_rss = doc["servers"]["convostore"].get("peak_process_rss_mb", 0.0)
    body.append(
        ["peak RSS MB", _fmt(ours_rss, 1)]
        + [_fmt(p.get("peak_process_rss_mb", 0.0), 1) for _, p in found]
    )
    return header, body


def render(doc: dict[str, Any], markdown: bool = False) -> str:
    table = markdown_table if markdown else text_table
    cfg = doc["config"]
    parts = [
        f"convostore on {cfg['backend']}, {cfg['workers']} worker(s), concurrency "
        f"{cfg['connections']}, {cfg['duration']} s per workload, pinning: {cfg['pinning']}",
        "",
        table(HEADER, ceiling_rows(doc) + rows(doc, "convostore")),
    ]
    for server, peer in peers(doc):
        parts += [
            "",
            f"{peer_label(server, peer)} peer:",
            "",
            table(peer_header(server), peer_rows(doc, server)),
        ]
    if peers(doc):
        header, body = comparison_rows(doc)
        parts += ["", "all servers (req/s; conv/s for agents_replay):", "", table(header, body)]
    for server, why in doc.get("peers_unavailable", {}).items():
        parts += ["", f"{server} peer NOT MEASURED: {why}"]
    checks = [
        [
            t["target"],
            f"{t['value']}",
            f"{t['limit']}",
            "met" if t["met"] else "NOT MET",
            t["detail"],
        ]
        for t in doc.get("targets", [])
    ]
    if checks:
        parts += ["", table(["target", "value", "limit", "verdict", "measured"], checks)]
    return "\n".join(parts)
