"""The report's PNG charts (matplotlib, Agg canvas, no pyplot global state).

Each chart is a function of the `Analysis` and answers one question in its title: how engagement
moves day by day, when to post, whether images help, which tweets worked.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker.report.analysis import WEEKDAYS, Analysis, records

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# X-ish palette: likes pink, retweets green, replies blue, impressions slate.
COLORS = {
    "likes": "#F91880",
    "retweets": "#00BA7C",
    "replies": "#1D9BF0",
    "impressions": "#AAB8C2",
    "rate": "#0F1419",
    "accent": "#FFAD1F",
    "muted": "#536471",
}
LABELS = {"likes": "Likes", "retweets": "Retweets", "replies": "Replies"}
DPI = 150
STYLE: Any = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlepad": 12,
    "axes.labelsize": 10,
    "axes.labelcolor": "#0F1419",
    "axes.edgecolor": "#CFD9DE",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#EFF3F4",
    "grid.linewidth": 1.0,
    "xtick.color": "#536471",
    "ytick.color": "#536471",
    "legend.frameon": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
WEEKDAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _figure(width: float, height: float, **kw: Any) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained", **kw)
    FigureCanvasAgg(fig)  # the Agg backend, explicitly: no display, no pyplot state
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def label_text(text: str, limit: int) -> str:
    """Tweet text safe for a chart label: one line, no glyphs DejaVu lacks, no mathtext."""
    one_line = " ".join(str(text or "").split())
    kept = "".join(
        ch for ch in one_line if ord(ch) <= 0xFFFF and unicodedata.category(ch) not in ("So", "Cs")
    )
    kept = re.sub(r"\s+", " ", kept).strip()
    if len(kept) > limit:
        kept = kept[: limit - 1].rstrip() + "…"
    return kept.replace("$", r"\$") or "(no text)"


def _fmt(n: float) -> str:
    """Compact counts: 7, 2.5, 980, 1.2k, 17.5k, 250k, 1.5M."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    if n == int(n) or abs(n) >= 10:
        return f"{n:.0f}"
    return f"{n:.1f}"


def _count_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: _fmt(v))


def _header(fig: Figure, title: str, subtitle: str) -> None:
    """A left-aligned title and a muted subtitle above all axes (space reserved in inches)."""
    height = fig.get_figheight()
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        engine.set(rect=(0, 0, 1, 1 - 0.78 / height))
    fig.text(
        0.012,
        1 - 0.16 / height,
        title,
        ha="left",
        va="top",
        fontsize=14,
        fontweight="bold",
        color="#0F1419",
    )
    fig.text(
        0.012, 1 - 0.47 / height, subtitle, ha="left", va="top", fontsize=9.5, color=COLORS["muted"]
    )


# -- charts ------------------------------------------------------------------------------------


def engagement_over_time(a: Analysis, path: Path) -> Path:
    import matplotlib.dates as mdates
    import pandas as pd
    from matplotlib import rc_context
    from matplotlib.ticker import MaxNLocator

    d = a.daily.copy()
    d["day"] = pd.to_datetime(d["day"])
    with rc_context(STYLE):
        fig = _figure(11, 6.2)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
        x = mdates.date2num(d["day"])
        width = 0.8 if len(d) < 120 else 1.0
        base = None
        for col in ("likes", "retweets", "replies"):
            values = d[col].astype(float).to_numpy()
            top.bar(x, values, width, bottom=base, color=COLORS[col], label=LABELS[col], lw=0)
            base = values if base is None else base + values
        if len(d) >= 7:
            avg = d["engagements"].astype(float).rolling(7, min_periods=1).mean()
            top.plot(x, avg, color=COLORS["rate"], lw=2, label="7-day average")
        top.set_ylabel("engagements gained")
        top.yaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, min_n_ticks=3))
        top.yaxis.set_major_formatter(_count_formatter())
        top.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=4, borderaxespad=0.2)
        top.grid(axis="x", visible=False)
        top.margins(x=0.01)

        impressions = d["impressions"].astype(float)
        bottom.bar(x, impressions.fillna(0), width, color=COLORS["impressions"], lw=0)
        bottom.set_ylabel("impressions gained")
        bottom.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True, min_n_ticks=3))
        bottom.yaxis.set_major_formatter(_count_formatter())
        if not (impressions > 0).any():
            bottom.set_ylim(0, 1)
            bottom.text(
                0.5,
                0.5,
                "no impressions collected yet",
                transform=bottom.transAxes,
                ha="center",
                va="center",
                color=COLORS["muted"],
            )
        bottom.grid(axis="x", visible=False)
        rate_ax = bottom.twinx()
        rate = d["engagement_rate"].astype(float) * 100
        rate_ax.plot(x, rate, color=COLORS["accent"], lw=2, marker="o", ms=3.5)
        rate_ax.set_ylabel("engagement rate (%)", color="#B07400")
        rate_ax.tick_params(axis="y", colors="#B07400")
        rate_ax.grid(False)
        rate_ax.spines["right"].set_visible(True)
        rate_ax.set_ylim(bottom=0)
        if rate.notna().any():
            rate_ax.set_ylim(0, max(float(rate.max()) * 1.25, 0.1))
        bottom.set_title("Impressions (bars) and engagement rate (line)", fontsize=10.5)
        if len(d) <= 16:  # one labelled tick per bar
            bottom.set_xticks(x, [f"{day:%a\n%d %b}" for day in d["day"]])
            bottom.set_xlim(x.min() - 0.6, x.max() + 0.6)
        else:
            locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
            bottom.xaxis.set_major_locator(locator)
            bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        _header(
            fig,
            "Engagement over time",
            f"Likes, retweets and replies gained per UTC day across all tweets · "
            f"{a.summary['tweets']} tweets posted {a.since:%d %b} – {a.until:%d %b %Y}",
        )
        return _save(fig, path)


def best_times_heatmap(a: Analysis, path: Path) -> Path:
    import numpy as np
    from matplotlib import colormaps, rc_context
    from matplotlib.patches import Rectangle

    grid = np.full((7, 24), np.nan)
    counts = np.zeros((7, 24), dtype=int)

    for row in records(a.slots):
        grid[int(row["weekday"]), int(row["hour"])] = float(row["mean_engagements"])
        counts[int(row["weekday"]), int(row["hour"])] = int(row["tweets"])
    with rc_context({**STYLE, "axes.grid": False}):
        fig = _figure(12, 4.6)
        ax = fig.subplots()
        cmap = colormaps["YlGnBu"].with_extremes(bad="#F7F9F9")
        finite = grid[np.isfinite(grid)]
        vmax = float(finite.max()) if finite.size else 1.0
        # Start the scale just below the weakest slot: differences between slots are the point.
        vmin = float(finite.min()) * 0.85 if finite.size and finite.min() < vmax else 0.0
        vmax = max(vmax, vmin + 1e-9)
        image = ax.imshow(
            np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto"
        )
        for (r, c), v in np.ndenumerate(grid):
            if np.isfinite(v):
                dark = (v - vmin) > 0.6 * (vmax - vmin)
                ax.text(
                    c,
                    r,
                    _fmt(v),
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="white" if dark else "#0F1419",
                )
        slot = a.summary.get("best_slot")
        if slot:
            r, c = WEEKDAYS.index(slot["weekday"]), slot["hour"]
            ax.add_patch(
                Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec=COLORS["likes"], lw=2.5)
            )
        ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
        ax.set_yticks(range(7), WEEKDAY_ABBR)
        ax.set_xticks(np.arange(-0.5, 24, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, 7, 1), minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.tick_params(which="minor", length=0)
        ax.tick_params(which="major", length=0)
        for side in ("left", "bottom", "top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_xlabel("hour posted (UTC)")
        bar = fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
        bar.set_label("mean engagements per tweet")
        bar.outline.set_visible(False)
        s = a.summary
        parts = []
        if s.get("best_hour") is not None:
            parts.append(f"best hour {s['best_hour']:02d}:00 UTC")
        if s.get("best_weekday"):
            parts.append(f"best day {s['best_weekday']}")
        if slot:
            parts.append(f"best slot {slot['weekday'][:3]} {slot['hour']:02d}:00 (outlined)")
        parts.append(f"{int(counts.sum())} tweets; empty cells had no posts")
        _header(fig, "When to post: mean engagements per tweet", " · ".join(parts))
        return _save(fig, path)


def image_vs_no_image(a: Analysis, path: Path) -> Path:
    import numpy as np
    from matplotlib import rc_context

    img = a.image
    groups = list(img.index)
    group_colors = {"Text only": "#8899A6", "With image": COLORS["replies"]}
    with rc_context(STYLE):
        fig = _figure(11, 4.8)
        left, right = fig.subplots(1, 2, width_ratios=[3, 1.6])
        metrics = ["likes", "retweets", "replies"]
        x = np.arange(len(metrics))
        width = 0.38
        for i, g in enumerate(groups):
            values = [float(img.loc[g, m]) if img.loc[g, "tweets"] else 0.0 for m in metrics]
            bars = left.bar(
                x + (i - 0.5) * width,
                values,
                width,
                color=group_colors.get(g, COLORS["muted"]),
                label=f"{g} (n={int(img.loc[g, 'tweets'])})",
            )
            left.bar_label(bars, labels=[_fmt(v) for v in values], padding=2, fontsize=8.5)
        left.set_xticks(x, [LABELS[m] for m in metrics])
        left.set_ylabel("mean per tweet")
        left.set_title("Mean likes, retweets and replies", fontsize=10.5)
        left.legend(loc="upper right")
        left.grid(axis="x", visible=False)
        left.margins(y=0.15)

        rates = [
            0.0
            if img.loc[g, "engagement_rate"] is None or np.isnan(img.loc[g, "engagement_rate"])
            else float(img.loc[g, "engagement_rate"]) * 100
            for g in groups
        ]
        bars = right.bar(
            range(len(groups)),
            rates,
            0.6,
            color=[group_colors.get(g, COLORS["muted"]) for g in groups],
        )
        right.bar_label(bars, labels=[f"{r:.2f}%" for r in rates], padding=2, fontsize=8.5)
        right.set_xticks(range(len(groups)), groups)
        right.set_ylabel("engagement rate (%)")
        right.set_title("Engagement rate", fontsize=10.5)
        right.grid(axis="x", visible=False)
        right.margins(y=0.18)
        lift = a.summary.get("image_lift")
        note = (
            f"Tweets with an image got {lift:.2f}× the engagements of text-only tweets"
            if lift
            else "Not enough tweets in both groups to compare"
        )
        _header(fig, "Image vs. text-only tweets", note + " · from each tweet's latest stats")
        return _save(fig, path)


def top_tweets(a: Analysis, path: Path) -> Path:
    import numpy as np
    from matplotlib import rc_context

    top = a.top
    n = len(top)
    with rc_context(STYLE):
        fig = _figure(11, 1.4 + 0.5 * max(n, 1))
        ax: Axes = fig.subplots()
        y = np.arange(n)
        left = np.zeros(n)
        for col in ("likes", "retweets", "replies"):
            values = top[col].astype(float).to_numpy()
            ax.barh(y, values, 0.62, left=left, color=COLORS[col], label=LABELS[col], lw=0)
            left = left + values
        for yi, total, rate in zip(y, left, top["engagement_rate"], strict=False):
            extra = "" if rate is None or np.isnan(rate) else f"  ({rate * 100:.1f}%)"
            ax.text(float(total), float(yi), f" {_fmt(total)}{extra}", va="center", fontsize=8.5)

        labels = [
            f"{r['posted_at']:%a %d %b %H:%M}  {label_text(r['content'], 52)}" for r in records(top)
        ]
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set_xlabel("engagements (likes + retweets + replies)")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=3, borderaxespad=0.2)
        ax.grid(axis="y", visible=False)
        ax.margins(x=0.12)
        _header(
            fig,
            f"Top {n} tweets by engagement",
            "Latest stats per tweet · engagement rate in brackets · times UTC",
        )
        return _save(fig, path)


CHARTS = {
    "engagement_over_time_png": ("engagement_over_time.png", engagement_over_time),
    "best_times_heatmap_png": ("best_times_heatmap.png", best_times_heatmap),
    "image_vs_no_image_png": ("image_vs_no_image.png", image_vs_no_image),
    "top_tweets_png": ("top_tweets.png", top_tweets),
}


def applicable(a: Analysis) -> list[str]:
    """The charts the data supports (names of CHARTS), without drawing them."""
    names = []
    for name in CHARTS:
        if name == "engagement_over_time_png" and a.daily.empty:
            continue
        if name != "engagement_over_time_png" and a.tweets.empty:
            continue
        names.append(name)
    return names


def render_all(a: Analysis, out: Path) -> dict[str, Path]:
    """Every chart the data supports, as name -> path."""
    paths: dict[str, Path] = {}
    for name in applicable(a):
        filename, draw = CHARTS[name]
        paths[name] = draw(a, out / filename)
    return paths
