#!/usr/bin/env python3
"""Plots for `fashion-bench e2e`: reads its JSON report, writes PNGs.

usage: plots.py REPORT.json OUT_DIR
  throughput.png   achieved against offered load, per system
  latency_cdf.png  latency CDFs at each offered load and at saturation (fashiond vs competent Python)
  scaling.png      saturation throughput with 1, 2, 4 consumer processes in one group
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"fashiond-embedded": "tab:blue", "fashiond-embedded-librdkafka-wheel": "tab:cyan", "fashiond": "tab:green",
          "competent-python": "tab:orange",
          "prototype-load-once": "tab:red", "prototype-per-message": "tab:purple"}


def finish(figure, axes, title, path):
    """Titles one chart, adds its legend and grid, writes it to `path` and closes it."""
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    save(figure, path)


def save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    report = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    phases = report["phases"]
    machine = report["machine"]
    subtitle = f"{machine['cpu']}, {machine['cores']} cores (shared), {machine['date']}"

    # Throughput against offered load (saturation drawn as a dashed ceiling).
    figure, axes = plt.subplots(figsize=(7, 4.5))
    systems = sorted({p["system"] for p in phases if p["offered_rate"]}, key=list(COLORS).index)
    top = 0
    for system in systems:
        points = sorted((p["offered_rate"], p.get("throughput") or 0) for p in phases
                        if p["system"] == system and p["offered_rate"])
        axes.plot([x for x, _ in points], [y for _, y in points], "o-", color=COLORS.get(system), label=system)
        top = max(top, max(x for x, _ in points))
        saturation = next((p.get("throughput") for p in phases if p["system"] == system and p["label"] == "saturation"), None)
        if saturation:
            axes.axhline(saturation, color=COLORS.get(system), linestyle="--", linewidth=0.8)
    low = min((p["offered_rate"] for p in phases if p["offered_rate"]), default=1)
    axes.plot([low, top], [low, top], color="grey", linewidth=0.6, label="achieved = offered")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("offered load (images/s, log)")
    axes.set_ylabel("achieved throughput (images/s, log)")
    finish(figure, axes, "Throughput against offered load (dashed: saturation)\n" + subtitle, out / "throughput.png")

    # Latency CDFs.
    labels = [label for label in dict.fromkeys(p["label"] for p in phases if p["offered_rate"])] + ["saturation"]
    figure, grid = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.8), sharey=True)
    if len(labels) == 1:
        grid = [grid]
    for axes, label in zip(grid, labels):
        for p in phases:
            if p["label"] != label or "latency_cdf_ms" not in p:
                continue
            cdf = p["latency_cdf_ms"]
            axes.plot(cdf, [i / 100 for i in range(len(cdf))], color=COLORS.get(p["system"]), label=p["system"])
        axes.set_xscale("log")
        axes.set_title(label, fontsize=9)
        axes.set_xlabel("latency (ms, log)")
        axes.grid(alpha=0.3)
    grid[0].set_ylabel("fraction of images")
    grid[-1].legend(fontsize=7, loc="lower right")
    figure.suptitle("Latency CDF: producer hand-off to durable result\n" + subtitle, fontsize=9)
    save(figure, out / "latency_cdf.png")

    # Scaling.
    figure, axes = plt.subplots(figsize=(6, 4))
    for system in dict.fromkeys(r["system"] for r in report.get("scaling", [])):
        rows = sorted((r["instances"], r.get("throughput") or 0) for r in report["scaling"] if r["system"] == system)
        axes.plot([k for k, _ in rows], [v for _, v in rows], "o-", color=COLORS.get(system), label=system)
    axes.set_xlabel("consumer processes in one group")
    axes.set_ylabel("saturation throughput (images/s)")
    axes.set_xticks(sorted({r["instances"] for r in report.get("scaling", [])}) or [1])
    finish(figure, axes, "Scaling on one machine (2 cores)\n" + subtitle, out / "scaling.png")
    print(f"plots written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
