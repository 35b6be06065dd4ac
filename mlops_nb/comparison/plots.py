"""The comparison's plots, drawn with matplotlib's object API on the Agg canvas.

No pyplot: figures are never registered globally, so drawing from the widget never pops a
window, never leaks figures, and is safe off the main thread. Every function returns PNG bytes.
Names from runs go through `label()`, because matplotlib reads `$...$` as math text and a
hostile parameter name must be drawn as the characters it is.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from .model import _is_missing, numeric, short

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

BEST_COLOR = "#d62728"
POINT_COLOR = "#1f77b4"
MAX_LINES = 2000  # parallel coordinates: more lines than this are sampled (the best kept)
MAX_POINTS = 20000


def label(text: Any) -> str:
    """Text matplotlib draws literally: `$` would start math mode, so it is escaped."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _plotted(series: pd.Series) -> pd.Series:
    """The numbers a plot can place: an infinite one (a diverged loss, an int past a float's
    range) is left out like text, where it made every position on its axis NaN."""
    import numpy as np

    values = numeric(series)
    return values.where(np.isfinite(values))


def _category(value: Any) -> str:
    return "(missing)" if _is_missing(value) else str(value)


def wants_log(values: pd.Series) -> bool:
    """Positive numbers spanning three decades or more read better on a log axis."""
    v = _plotted(values).dropna()
    return bool(len(v) > 1 and (v > 0).all() and v.max() / v.min() >= 1000)


def _figure(width: float = 7.0, height: float = 3.6) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _empty(message: str) -> bytes:
    fig = _figure(7.0, 1.2)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, label(message), ha="center", va="center", fontsize=11, color="#555")
    return png(fig)


def _sample(df: pd.DataFrame, limit: int, keep: list[str]) -> pd.DataFrame:
    if len(df) <= limit:
        return df
    import pandas as pd

    kept = df[df["id"].isin(keep)]
    rest = df[~df["id"].isin(keep)].sample(n=max(limit - len(kept), 0), random_state=0)
    return pd.concat([rest, kept])


def metric_vs_param(df: pd.DataFrame, metric: str | None, param: str | None, *,
                    log_x: bool = False, best: list[str] | tuple[str, ...] = ()) -> bytes:
    """Scatter of the metric against one parameter; text parameters become categories."""
    import numpy as np

    if metric is None or param is None or metric not in df or param not in df:
        return _empty("choose a metric and a parameter that vary across runs")
    y = _plotted(df[metric])
    x = _plotted(df[param])
    fig = _figure()
    ax = fig.add_subplot()
    categorical = x.notna().sum() < df[param].notna().sum()
    if categorical:
        text = df[param].map(_category)
        cats = sorted(text.unique(), key=str)[:50]
        codes = {c: i for i, c in enumerate(cats)}
        xs = text.map(codes).astype("float64")
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(xs))
        x = xs + jitter
        ax.set_xticks(range(len(cats)), [label(c)[:24] for c in cats], rotation=30, ha="right")
        log_x = False
    ok = x.notna() & y.notna()
    if log_x:
        ok &= x > 0
        ax.set_xscale("log")
    if not ok.any():
        return _empty(f"no run has both {short(metric)} and {short(param)}"
                      + (" > 0 (log axis)" if log_x else ""))
    is_best = df["id"].isin(list(best))
    normal = ok & ~is_best
    ax.scatter(x[normal], y[normal], s=18, alpha=0.7, color=POINT_COLOR, label="run",
               rasterized=len(df) > 2000)
    if (ok & is_best).any():
        ax.scatter(x[ok & is_best], y[ok & is_best], s=120, marker="*", color=BEST_COLOR,
                   zorder=3, label="best")
    ax.set_xlabel(label(short(param)) + (" (log)" if log_x else ""))
    ax.set_ylabel(label(short(metric)))
    ax.set_title(label(f"{short(metric)} vs {short(param)}"), fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return png(fig)


def metric_over_time(df: pd.DataFrame, metric: str | None, *, goal: str = "max",
                     best: list[str] | tuple[str, ...] = ()) -> bytes:
    """The metric of each run by start time, with the best-so-far as a step line."""
    if metric is None or metric not in df:
        return _empty("no metric to plot")
    d = df.assign(__y=_plotted(df[metric])).dropna(subset=["__y"]).sort_values("started_at")
    if not len(d):
        return _empty(f"no run has a numeric {short(metric)}")
    t = d["started_at"].dt.tz_convert(None)
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(t, d["__y"], s=14, alpha=0.7, color=POINT_COLOR, label="run",
               rasterized=len(d) > 2000)
    running = d["__y"].cummin() if goal == "min" else d["__y"].cummax()
    ax.step(t, running, where="post", color="#2ca02c", lw=1.5, label=f"best so far ({goal})")
    is_best = d["id"].isin(list(best))
    if is_best.any():
        ax.scatter(t[is_best], d["__y"][is_best], s=120, marker="*", color=BEST_COLOR,
                   zorder=3, label="best")
    ax.set_xlabel("started (UTC)")
    ax.set_ylabel(label(short(metric)))
    ax.set_title(label(f"{short(metric)} over time"), fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    return png(fig)


def parallel_coordinates(df: pd.DataFrame, params: list[str], metric: str | None, *,
                         goal: str = "max", best: list[str] | tuple[str, ...] = ()) -> bytes:
    """One line per run across the varying parameters and the metric, coloured by the metric."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    if metric is None or metric not in df:
        return _empty("no metric to colour the lines by")
    axes_cols = [*[p for p in params if p in df][:12], metric]
    if len(axes_cols) < 2:
        return _empty("parallel coordinates need at least one parameter that varies")
    d = df.assign(__y=_plotted(df[metric])).dropna(subset=["__y"])
    if not len(d):
        return _empty(f"no run has a numeric {short(metric)}")
    shown = _sample(d, MAX_LINES, list(best))
    columns: list[np.ndarray] = []
    axis_names = {c: short(c) for c in axes_cols}
    ticks: list[tuple[list[float], list[str]]] = []
    for col in axes_cols:
        nums = _plotted(shown[col]) if col != metric else shown["__y"]
        if nums.notna().sum() == shown[col].notna().sum() and nums.notna().any():
            lo, hi = float(np.nanmin(nums)), float(np.nanmax(nums))
            if col != metric and wants_log(nums):  # e.g. learning rates over decades
                logs = np.log10(nums.to_numpy(dtype=float))
                span = np.log10(hi) - np.log10(lo)
                columns.append((logs - np.log10(lo)) / span)
                axis_names[col] = f"{short(col)} (log)"
            else:
                span = hi - lo or 1.0
                columns.append(((nums - lo) / span).to_numpy(dtype=float))
            ticks.append(([0.0, 1.0], [f"{lo:.4g}", f"{hi:.4g}"]))
        else:
            text = shown[col].map(_category)
            cats = sorted(d[col].map(_category).unique(), key=str)
            codes = {c: i for i, c in enumerate(cats)}
            n = max(len(cats) - 1, 1)
            columns.append(text.map(codes).to_numpy(dtype=float) / n)
            step = max(1, len(cats) // 8)
            shown_cats = cats[::step]
            ticks.append(([codes[c] / n for c in shown_cats], [label(c)[:16] for c in shown_cats]))
    ys = np.column_stack(columns)
    xs = np.arange(len(axes_cols), dtype=float)
    segments = [np.column_stack([xs, row]) for row in ys]
    values = shown["__y"].to_numpy(dtype=float)
    cmap = colormaps["viridis" if goal == "max" else "viridis_r"]
    norm = Normalize(vmin=float(values.min()), vmax=float(values.max()) or 1.0)
    fig = _figure(max(7.0, 1.3 * len(axes_cols)), 3.8)
    ax = fig.add_subplot()
    order = np.argsort(values if goal == "max" else -values)  # best drawn last, on top
    lc = LineCollection([segments[i] for i in order], cmap=cmap, norm=norm,
                        linewidths=1.2, alpha=0.6 if len(shown) > 200 else 0.85)
    lc.set_array(values[order])
    ax.add_collection(lc)
    is_best = shown["id"].isin(list(best)).to_numpy()
    for i in np.flatnonzero(is_best):
        ax.plot(xs, ys[i], color=BEST_COLOR, lw=2.5, zorder=3)
    for x, (pos, names) in zip(xs, ticks, strict=True):
        ax.axvline(x, color="#444", lw=0.8)
        for p, name in zip(pos, names, strict=True):
            if p == p:  # not NaN
                ax.text(x + 0.03, p, name, fontsize=7, va="center", color="#333", zorder=4,
                        bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none",
                              "pad": 1})
    ax.set_xlim(-0.2, len(axes_cols) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    ax.set_xticks(xs, [label(axis_names[c])[:24] for c in axes_cols], rotation=20, ha="right")
    fig.colorbar(lc, ax=ax, label=label(short(metric)), pad=0.01)
    title = f"parallel coordinates, coloured by {short(metric)}"
    if is_best.any():
        title += "; best in red"
    if len(shown) < len(d):
        title += f" ({len(shown):,} of {len(d):,} runs sampled)"
    ax.set_title(label(title), fontsize=11)
    for spine in ("top", "right", "left"):
        ax.spines[spine].set_visible(False)
    return png(fig)


PLOTS = {
    "scatter": "metric vs parameter",
    "time": "metric over time",
    "parallel": "parallel coordinates",
}


def render(kind: str, df: pd.DataFrame, *, metric: str | None, param: str | None,
           params: list[str], goal: str, best: list[str], log_x: bool = False) -> bytes:
    """One plot by its key in PLOTS."""
    if len(df) > MAX_POINTS and kind != "parallel":
        df = _sample(df, MAX_POINTS, best)
    if kind == "scatter":
        return metric_vs_param(df, metric, param, log_x=log_x, best=best)
    if kind == "time":
        return metric_over_time(df, metric, goal=goal, best=best)
    if kind == "parallel":
        return parallel_coordinates(df, params, metric, goal=goal, best=best)
    raise ValueError(f"unknown plot {kind!r}; one of {', '.join(PLOTS)}")
