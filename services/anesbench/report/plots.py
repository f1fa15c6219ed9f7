"""The report's figures, drawn by matplotlib (Agg, no display) and returned as inline SVG text."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, no GUI toolkit

import matplotlib.pyplot as plt
from matplotlib import dates
from matplotlib.figure import Figure

from anesbench.leaderboard import model_label
from anesbench.stats import wilson
from anesbench.store.leaderboard_sql import LEVEL_ORDER, LeaderboardRow
from anesbench.store.records import TrendPoint

Quantiles = tuple[float, float, float]  # median, p90, max

plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                     "svg.hashsalt": "anesbench"})  # text as paths (no font needed); stable ids


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"^.*?(?=<svg)", "", text, flags=re.S)  # drop the XML declaration and DOCTYPE
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF about matplotlib itself


def accuracy_bars(rows: Sequence[LeaderboardRow]) -> str:
    """Accuracy per level, one bar per (model, language), with the 95 % Wilson interval as error bars."""
    series: dict[str, dict[str, LeaderboardRow]] = {}
    for row in rows:
        if row.total:
            series.setdefault(f"{model_label(row)} ({row.language})", {})[row.level] = row
    figure, axis = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / max(1, len(series))
    for index, (name, cells) in enumerate(series.items()):
        shown = [(i + index * width, cells[level]) for i, level in enumerate(LEVEL_ORDER) if level in cells]
        axis.bar([x for x, _ in shown], [row.accuracy for _, row in shown], width, capsize=3, label=name,
                 yerr=[[row.accuracy - row.ci_low for _, row in shown], [row.ci_high - row.accuracy for _, row in shown]])
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(LEVEL_ORDER))], list(LEVEL_ORDER))
    axis.set_ylim(0, 1)
    axis.set_ylabel("accuracy (95 % Wilson interval)")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1), frameon=False)  # beside: never on a bar
    return _svg(figure)


def outcome_bars(names: Sequence[str], counts: Sequence[dict[str, int]]) -> str:
    """Per run: correct, wrong, unanswered and error counts, stacked."""
    figure, axis = plt.subplots(figsize=(8, 0.5 + 0.45 * len(names)))
    left = [0] * len(names)
    for outcome, colour in (("correct", "tab:green"), ("wrong", "tab:red"), ("unanswered", "tab:orange"),
                            ("error", "tab:gray")):
        values = [c.get(outcome, 0) for c in counts]
        axis.barh(list(names), values, left=left, color=colour, label=outcome)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axis.set_xlabel("results")
    axis.invert_yaxis()
    axis.legend(fontsize=7, ncols=4, loc="lower right", frameon=False, bbox_to_anchor=(1, 1))
    return _svg(figure)


def distributions(names: Sequence[str], tokens: Sequence[Quantiles | None],
                  latencies: Sequence[Quantiles | None]) -> str:
    """Completion tokens and latency per run: a bar from the median to p90, a tick at the maximum."""
    figure, axes = plt.subplots(1, 2, figsize=(8, 0.8 + 0.3 * len(names)), sharey=True)
    for axis, values, label in ((axes[0], tokens, "completion tokens"), (axes[1], latencies, "latency (s)")):
        for row, found in enumerate(values):
            if found:
                axis.barh(row, found[1] - found[0], left=found[0], color="tab:blue", height=0.5)
                axis.plot([found[2]], [row], "|", color="tab:red", markersize=9)
        axis.set_xlabel(f"{label}: median–p90, | max")
    axes[0].set_yticks(range(len(names)), list(names))
    axes[0].invert_yaxis()
    return _svg(figure)


def trends(shown: dict[str, dict[str, list[TrendPoint]]]) -> str:
    """Per model (one panel each), the overall accuracy of its runs over time: per series a line and its
    95 % Wilson band."""
    columns = min(3, len(shown))
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(8, 2.4 * rows), squeeze=False, sharex=True,
                               sharey=True)
    for axis, (model, series) in zip(axes.flat, shown.items(), strict=False):
        for runs in series.values():
            when = [run.created_at for run in runs]
            bands = [wilson(run.correct, run.total) for run in runs]
            axis.fill_between(when, [low for low, _ in bands], [high for _, high in bands], alpha=0.25)
            axis.plot(when, [run.correct / run.total if run.total else 0.0 for run in runs], "o-", markersize=3,
                      label=runs[0].label)
        axis.set_title(model, fontsize=8)
        axis.set_ylim(0, 1)
        axis.xaxis.set_major_locator(locator := dates.AutoDateLocator(maxticks=5))
        axis.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
        axis.tick_params(axis="x", labelsize=6)
        axis.legend(fontsize=5, frameon=False, loc="lower left")
        axis.label_outer()  # tick labels on the outer panels only: they are shared
    for axis in axes.flat[len(shown):]:
        axis.set_visible(False)
    return _svg(figure)


def reliability(cells: Sequence[LeaderboardRow]) -> str:
    """Accuracy against mean confidence per confidence bin, one series per cell (a run's languages), each
    point labelled with its bin's count; the diagonal is perfect calibration."""
    figure, axis = plt.subplots(figsize=(4.5, 3.8))
    axis.plot([0, 1], [0, 1], color="tab:gray", linestyle="--", linewidth=0.8)
    for row in cells:
        xs = [b.confidence / b.n for b in row.reliability]
        ys = [b.correct / b.n for b in row.reliability]
        axis.plot(xs, ys, marker="o", label=f"{row.language} (ECE {row.ece or 0:.3f})")
        for x, y, b in zip(xs, ys, row.reliability, strict=True):
            axis.annotate(str(b.n), (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.08)
    axis.set_xlabel("confidence (bin mean)")
    axis.set_ylabel("accuracy")
    axis.legend(fontsize=7, loc="upper left", frameon=False)
    return _svg(figure)
