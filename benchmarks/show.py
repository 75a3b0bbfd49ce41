"""Print a results file again: its table, the peer table and the target checks.

python benchmarks/show.py RESULTS.json [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    doc = json.loads(args.results.read_text())
    doc["targets"] = report.targets(doc)
    print(report.render(doc, markdown=args.markdown))


if __name__ == "__main__":
    main()
