#!/usr/bin/env python3
"""Draw manifests/monitoring's Grafana dashboard from real Prometheus data, as a PNG.

No Grafana can run here (no registry, and Grafana's own module is AGPL), so this stands in
for a screenshot: the same queries (listed by deploy/grafana), answered by the real
Prometheus of tests/e2e/test_monitoring_real.py over a real run, drawn with matplotlib.

    MODELYARD_DASHBOARD_DATA=/tmp/dash.json MODELYARD_DASHBOARD_DWELL=45 \\
      .venv/bin/python -m pytest tests/e2e/test_monitoring_real.py
    python -m venv /tmp/render && /tmp/render/bin/pip install matplotlib
    /tmp/render/bin/python hack/render-dashboard.py /tmp/dash.json docs/img/dashboard.png
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "manifests" / "monitoring" / "dashboards" / "modelyard.json"


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


def main(data_path: str, out_path: str) -> None:
    data = json.loads(Path(data_path).read_text())
    board = json.loads(DASHBOARD.read_text())
    panels = {p["title"]: p for p in board["panels"] if p["type"] != "row"}
    by_panel: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for query in data["panels"]:
        by_panel[query["panel"]].append(query)
    titles = [t for t in panels if t in by_panel]
    cols = 3
    rows = -(-len(titles) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 6, rows * 2.9), squeeze=False)
    start = data["start"]
    for ax, title in zip(axes.flat, titles, strict=False):
        panel = panels[title]
        targets = {t["refId"]: t for t in panel["targets"]}
        state = panel["type"] == "state-timeline"
        lanes: list[str] = []
        for query in by_panel[title]:
            template = targets[query["refId"]].get("legendFormat", "")
            for series in query["series"]:
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                name = legend(template, series["metric"]) or json.dumps(series["metric"])
                if state:  # one lane per state, drawn where it held
                    lanes.append(name)
                    ax.scatter(xs, [len(lanes) - 1] * len(xs), marker="s", s=40, label=name)
                else:
                    ax.plot(xs, ys, label=name, linewidth=1.4)
        if state:
            ax.set_yticks(range(len(lanes)), lanes, fontsize=7)
            ax.set_ylim(-0.7, len(lanes) - 0.3)
        else:
            unit = panel["fieldConfig"]["defaults"].get("unit", "")
            if unit and unit != "short":
                ax.set_ylabel(unit, fontsize=8)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6, loc="upper left", ncol=2)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(titles) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("seconds into the run", fontsize=8)
    fig.suptitle(
        f"{board['title']}: real Prometheus data from tests/e2e/test_monitoring_real.py "
        "(in-distribution traffic, then shifted; every 20th request invalid)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=80)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
