"""Bar chart of requests/s per workload, one bar per server and configuration.

    python benchmarks/chart.py RESULTS.json [MORE.json ...] --out docs/benchmarks.png

run.py calls :func:`draw` for its own results. Needs matplotlib; without it, says so and
returns False (the suite still prints its table and writes its JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def series(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """(label, {workload: requests/s}) for every server of every results document."""
    out: list[tuple[str, dict[str, float]]] = []
    for doc in docs:
        cfg = doc["config"]
        for server, data in doc["servers"].items():
            if server == "convostore":
                workers = f"{cfg['workers']} worker{'s' * (cfg['workers'] > 1)}"
                commit = doc.get("versions", {}).get("convostore_commit")
                at = f" @{commit}" if commit else ""
                label = f"convostore{at} ({cfg['backend']}, {workers})"
            else:
                storage = data.get("storage", "sqlite")
                label = f"{server} {data.get('version', '')} ({storage}, 1 process)".replace(
                    "  ", " "
                )
            if any(label == existing for existing, _ in out):
                continue
            out.append((label, {name: r["rps"] for name, r in data["workloads"].items()}))
    return out


def draw(docs: list[dict[str, Any]], out: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)", file=sys.stderr)
        return False
    data = series(docs)
    workloads: list[str] = []
    for _, values in data:
        workloads += [w for w in values if w not in workloads]
    ceiling = next((d["ceiling"] for d in docs if d.get("ceiling")), {})
    fig, ax = plt.subplots(figsize=(11, 6.5), dpi=110)
    width = 0.8 / max(1, len(data))
    for n, (label, values) in enumerate(data):
        xs = [i + (n - (len(data) - 1) / 2) * width for i in range(len(workloads))]
        ys = [values.get(w, 0.0) for w in workloads]
        bars = ax.bar(xs, ys, width, label=label)
        for bar, y in zip(bars, ys, strict=True):
            if y > 0:
                ax.annotate(
                    f"{y:,.0f}",
                    (bar.get_x() + bar.get_width() / 2, y),
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    styles = {"bare": ("black", "--"), "starlette": ("grey", ":")}
    for name, result in ceiling.items():
        color, style = styles.get(name, ("black", "-."))
        ax.axhline(
            result["rps"],
            color=color,
            linestyle=style,
            linewidth=1,
            label=f"ceiling: {name} ASGI ({result['rps']:,.0f} req/s)",
        )
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads, rotation=20)
    ax.set_ylabel("requests/s (log scale), concurrency 16")
    ax.set_title("convostore benchmark: requests/s per workload")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.png"))
    args = parser.parse_args()
    docs = [json.loads(p.read_text()) for p in args.results]
    if draw(docs, args.out):
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
