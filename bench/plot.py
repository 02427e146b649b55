"""``throughput.png``: real-time factor per file and mode, and cost against memory.

Needs matplotlib (a development dependency); without it the plot is skipped with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

Row = dict[str, Any]
SERIES = (
    (2, "engine", "raw engine, 2 thr"),
    (2, "lambda", "Lambda entry, 2 thr"),
    (2, "http", "HTTP, 2 thr"),
    (1, "engine", "raw engine, 1 thr"),
    (1, "lambda", "Lambda entry, 1 thr"),
)


def plot(results: Row, target: Path) -> bool:
    """Draw the figure; False (and no file) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the plot")
        return False
    figure, (speed, cost) = plt.subplots(1, 2, figsize=(13, 5))
    _speed_panel(speed, results)
    _cost_panel(cost, results)
    figure.suptitle(f"tinyscribe: Whisper tiny.en int8 on {results['meta']['cpu']}")
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return True


def _speed_panel(axes: Any, results: Row) -> None:
    names = [f["name"] for f in results["files"]]
    width = 0.8 / len(SERIES)
    for index, (threads, mode, label) in enumerate(SERIES):
        values = []
        for name in names:
            rows = [
                r
                for r in results["summary"]
                if (r["threads"], r["mode"], r["file"]) == (threads, mode, name)
            ]
            values.append(rows[0]["rtf"] if rows else 0.0)
        positions = [i + (index - len(SERIES) / 2 + 0.5) * width for i in range(len(names))]
        axes.bar(positions, values, width, label=label)
    axes.axhline(30, color="grey", linestyle="--", linewidth=1, label="target 30x (5 min)")
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("x real time (higher is better)")
    axes.set_title("Warm request speed")
    axes.legend(fontsize=8)


def _cost_panel(axes: Any, results: Row) -> None:
    table = results["cost"]["files"]["60s"]["table"]
    memory = [row["memory_mb"] for row in table]
    for arch in ("x86_64", "arm64"):
        axes.plot(memory, [row[arch] * 1e6 for row in table], marker="o", label=f"{arch} $/min")
    axes.axhline(100, color="red", linestyle="--", linewidth=1, label="target $0.0001/min")
    axes.set_xlabel("Lambda MemorySize (MB)")
    axes.set_ylabel("micro-USD per audio minute")
    axes.set_ylim(bottom=0)
    axes.set_title("Cost (60 s file) and latency vs memory")
    latency = axes.twinx()
    latency.plot(
        memory,
        [row["seconds"] for row in table],
        color="black",
        marker="x",
        linestyle=":",
        label="60 s file latency (s)",
    )
    latency.set_ylabel("seconds for the 60 s file")
    latency.set_ylim(bottom=0)
    lines, labels = axes.get_legend_handles_labels()
    more_lines, more_labels = latency.get_legend_handles_labels()
    axes.legend(lines + more_lines, labels + more_labels, fontsize=8)
