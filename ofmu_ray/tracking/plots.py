"""Pareto-front plots: a PNG (matplotlib) per split, one interactive HTML page (plotly) for all."""

from __future__ import annotations

from pathlib import Path

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _axes(objectives: list[str]) -> tuple[str, str]:
    x, y = (name.replace("_", " ") for name in objectives)
    return f"{x}, higher is better", f"{y}, higher is better"


def plot_png(trials: dict[str, list], fronts: dict, title: str, path: Path) -> Path:
    """One split, drawn where a user reads it: every trial as a dot, each method's front as a step line,
    the target and the oracle marked, the utility floor (tau x the target's) as a horizontal line and
    the "forgotten" bar (TOFU: p = 0.05) as a vertical one. The x axis runs from a little below the
    target's forget quality to the best there is, the y axis from one utility box below the floor;
    trials outside are drawn at its edge as open triangles (clipped). Without the target's point,
    every trial and the floor-anchored reference.

    Args:
        trials: per method, every trial's two objectives on this split.
        fronts: `summarize_fronts(...)[split_key]` (with `"oracle"`, as `results.fronts_of` adds it).
    """
    import math

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    target, oracle = fronts.get("target"), fronts.get("oracle")
    edge, bottom = -math.inf, -math.inf
    if target:
        tx, ty = target.values()
        right = fronts["ideal_x"] if fronts["ideal_x"] is not None else max(
            [tx, *(p[0] for ps in trials.values() for p in ps if not math.isnan(p[0]))])
        edge = tx - 0.1 * max(right - tx, 1e-9)
        floor = fronts["utility_floor"] * ty
        bottom = floor - (ty - floor)  # one utility box below the floor: what lies lower counts for nothing
        top = max([ty, *(p[1] for ps in trials.values() for p in ps if not math.isnan(p[1]))])
        ax.set_xlim(edge - 0.02 * (right - edge), right + 0.02 * (right - edge))
        ax.set_ylim(bottom - 0.04 * (top - bottom), top + 0.04 * (top - bottom))
    for i, (method, points) in enumerate(trials.items()):
        color, entry = COLORS[i % len(COLORS)], fronts["methods"][method]
        shown = [(max(x, edge), max(y, bottom)) for x, y in points]
        clipped = [x < edge or y < bottom for x, y in points]
        ax.scatter([p[0] for p, c in zip(shown, clipped, strict=True) if not c],
                   [p[1] for p, c in zip(shown, clipped, strict=True) if not c], color=color, alpha=0.35, s=18)
        ax.scatter([p[0] for p, c in zip(shown, clipped, strict=True) if c],
                   [p[1] for p, c in zip(shown, clipped, strict=True) if c], color=color, alpha=0.5, s=24,
                   marker="<", facecolors="none")
        front = [(max(x, edge), max(y, bottom)) for x, y in entry["points"]]
        best = entry.get("fq_at_kept_utility")
        ax.plot([p[0] for p in front], [p[1] for p in front], "-", color=color, drawstyle="steps-pre",
                label=f"{method} ({'none' if best is None else f'{best:.2f}'} at kept utility)" if target
                else f"{method} (HV {entry['hypervolume_floor']:.3g})")
    if target:
        ax.scatter([tx], [ty], marker="*", s=160, color="black", label="target", zorder=5)
        ax.axhline(fronts["utility_floor"] * ty, color="gray", ls="--", lw=1,
                   label=f"utility floor ({fronts['utility_floor']:g} x target)")
        if fronts["measurable_below"] is not None:
            ax.axvline(fronts["measurable_below"], color="gray", ls=":", lw=1, label="forgotten (p = 0.05)")
        if oracle:
            ax.scatter(*oracle.values(), marker="D", s=60, color="black", facecolors="none", label="retain oracle")
        if any(x < edge or y < bottom for ps in trials.values() for x, y in ps):
            ax.scatter([], [], marker="<", color="gray", facecolors="none", label="outside the region (clipped)")
    else:
        ref = fronts["reference"]
        ax.scatter([ref[0]], [ref[1]], marker="x", color="black", label="reference point")
    xlabel, ylabel = _axes(fronts["objectives"])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the plot: it covers no trial
    return _save(fig, path)


def plot_html(points: dict[str, dict[str, list]], fronts: dict, title: str, path: Path) -> Path:
    """All splits on one interactive page (one plot each); hovering names the method and trial.

    Args:
        points: per split key, per method, every trial's (log10 FQ, MU).
        fronts: `summarize_fronts(...)`.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = list(fronts)
    rows = (len(keys) + 1) // 2
    page = make_subplots(rows=rows, cols=2, subplot_titles=[k.lstrip("/") or "forget split" for k in keys])
    for n, key in enumerate(keys):
        row, col = n // 2 + 1, n % 2 + 1
        for i, (method, trials) in enumerate(points[key].items()):
            color, entry = COLORS[i % len(COLORS)], fronts[key]["methods"][method]
            page.add_trace(go.Scatter(x=[p[0] for p in trials], y=[p[1] for p in trials], mode="markers",
                                      marker={"color": color, "opacity": 0.35}, legendgroup=method,
                                      name=f"{method} trials", showlegend=n == 0,
                                      text=[f"{method} trial {j}" for j in range(len(trials))]), row=row, col=col)
            page.add_trace(go.Scatter(x=[p[0] for p in entry["points"]], y=[p[1] for p in entry["points"]],
                                      mode="lines+markers", marker={"color": color}, legendgroup=method,
                                      line_shape="vh",
                                      name=f"{method} front", showlegend=n == 0,
                                      text=[f"HV {entry['hypervolume_floor']:.3g}"] * len(entry["points"])),
                           row=row, col=col)
        xlabel, ylabel = _axes(fronts[key]["objectives"])
        page.update_xaxes(title_text=xlabel, row=row, col=col)
        page.update_yaxes(title_text=ylabel, row=row, col=col)
    page.update_layout(title=title, height=450 * rows)
    page.write_html(path, include_plotlyjs=True)  # self-contained (~5 MB): the UI may be offline
    return path


def plot_by_model(by_method: dict[str, dict[str, float]], title: str, path: Path, ylabel: str) -> Path:
    """Each method's figure (`ylabel`) on each model (models in sweep order along x): how it moves with size."""
    plt = _pyplot()
    models = list(dict.fromkeys(m for by_model in by_method.values() for m in by_model))
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, (method, by_model) in enumerate(by_method.items()):
        xs = [models.index(m) for m in by_model]
        ax.plot(xs, list(by_model.values()), "o-", color=COLORS[i % len(COLORS)], label=method)
    ax.set_xticks(range(len(models)), [m.rsplit("/", 1)[-1] for m in models], rotation=15)
    ax.set(xlabel="model", ylabel=f"{ylabel}, higher is better", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    """Writes `fig` as `path` (PNG at 120 dpi, trimmed) and frees it."""
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_effects(panels: dict[str, dict[str, list[tuple[str, float, float]]]], xlabel: str, title: str,
                 path: Path) -> Path:
    """An ablation's effect: per panel (an objective), its mean against the axis's values, with one
    standard deviation as error bars; one line per value of a second axis (a grid).

    Args:
        panels: per objective, per line ("" without a second axis), the points (axis value, mean, std)
            in the axis's order.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (objective, lines) in zip(axes[0], panels.items(), strict=True):
        ticks = list(dict.fromkeys(x for points in lines.values() for x, _, _ in points))
        for i, (line, points) in enumerate(lines.items()):
            shift = (i - (len(lines) - 1) / 2) * 0.08  # lines of a grid side by side, not on top of each other
            ax.errorbar([ticks.index(x) + shift for x, _, _ in points], [m for _, m, _ in points],
                        yerr=[s for _, _, s in points], fmt="o-", capsize=4, color=COLORS[i % len(COLORS)],
                        label=line or None)
        ax.set_xticks(range(len(ticks)), ticks, rotation=15)
        ax.set(xlabel=xlabel, ylabel=objective.replace("_", " ") + ", higher is better")
        ax.ticklabel_format(axis="y", useOffset=False)  # the values themselves, not offsets from one
        ax.grid(alpha=0.3)
        if any(lines):
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_bars(groups: dict[str, dict[str, float]], ylabel: str, title: str, path: Path) -> Path:
    """Grouped bars: per group along x (a split), one bar per series (a variant)."""
    plt = _pyplot()
    series = list(dict.fromkeys(s for values in groups.values() for s in values))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups) * max(1, len(series)) / 2), 4.2))
    for i, name in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [values.get(name, 0.0) for values in groups.values()], width, color=COLORS[i % len(COLORS)],
               label=name)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set(ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_curves(panels: dict[str, dict[str, list[tuple[int, float]]]], xlabel: str, title: str, path: Path) -> Path:
    """Per panel (a logged quantity), one line per series against the step; a log scale when every value
    is positive (term ratios span orders of magnitude)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (quantity, lines) in zip(axes[0], panels.items(), strict=True):
        for i, (name, points) in enumerate(lines.items()):
            ax.plot([s for s, _ in points], [v for _, v in points], ".-", color=COLORS[i % len(COLORS)], label=name)
        if all(v > 0 for points in lines.values() for _, v in points):
            ax.set_yscale("log")
        ax.set(xlabel=xlabel, title=quantity)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_anytime(panels: dict[str, dict[str, tuple[list[float], list[float]]]], ylabel: str, title: str,
                 path: Path) -> Path:
    """A study's headline as a search spends more: per panel (its x axis: trials used, cumulative FLOPs),
    one step line per method, the mean over searches; FLOPs on a log scale."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (xlabel, lines) in zip(axes[0], panels.items(), strict=True):
        for i, (method, (xs, ys)) in enumerate(lines.items()):
            ax.plot(xs, ys, "-", drawstyle="steps-post", color=COLORS[i % len(COLORS)], label=method)
        if "FLOPs" in xlabel:
            from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

            ax.set_xscale("log")  # labels at 1, 2 and 5 of each decade: a study's FLOPs span one or two
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=xlabel, ylabel=f"{ylabel}\n(higher is better)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_intervals(points: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]],
                   labels: tuple[str, str], title: str, path: Path) -> Path:
    """Each method as one point (x mean, y mean) with its intervals as error bars, and the diagonal
    y = x: e.g. the standard headline against the robust one (below the diagonal: the attacks undo
    some forgetting).

    Args:
        points: per method, ((x mean, x low, x high), (y mean, y low, y high)).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for i, (method, ((x, xl, xh), (y, yl, yh))) in enumerate(points.items()):
        ax.errorbar([x], [y], xerr=[[x - xl], [xh - x]], yerr=[[y - yl], [yh - y]], fmt="o", capsize=4,
                    color=COLORS[i % len(COLORS)], label=method)
    values = [v for (x, y) in points.values() for v in (*x, *y)]
    if values:
        ax.plot([min(values), max(values)], [min(values), max(values)], color="gray", ls="--", lw=1, label="y = x")
    ax.set(xlabel=f"{labels[0]}, higher is better", ylabel=f"{labels[1]}, higher is better", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return _save(fig, path)


def plot_attainment(surfaces: dict[str, dict[float, list[tuple[float, float]]]], fronts: dict, title: str,
                    path: Path) -> Path:
    """Empirical attainment surfaces of a method's repeated searches: per method, the points attained
    by at least one search (thin), by at least half of them (thick) and by all (dashed), as step lines, with
    the target and the utility floor of `fronts` (`summarize_fronts(...)[key]`) marked.

    Args:
        surfaces: per method, per percentile of searches (0-100], the surface's points (x, y).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    styles = {"best": dict(lw=0.8, ls="-", alpha=0.6), "median": dict(lw=2.2, ls="-"), "worst": dict(lw=1.0, ls="--")}
    everything = [p for levels in surfaces.values() for pts in levels.values() for p in pts]
    target = fronts.get("target")
    xs, ys = [p[0] for p in everything] or [0.0], [p[1] for p in everything] or [0.0]
    if target:  # the region of interest, as `plot_png` draws it: what lies left of the target counts for nothing
        tx, ty = target.values()
        left, bottom = tx - 0.1 * max(max(xs) - tx, 1e-9), fronts["utility_floor"] * ty * 0.9
    else:
        left, bottom = min(xs) - 0.05 * (max(xs) - min(xs) or 1.0), min(ys)
    for i, (method, levels) in enumerate(surfaces.items()):
        ordered = sorted(levels)
        named = {"best": ordered[0], "median": min(p for p in ordered if p >= 50), "worst": ordered[-1]}
        for name, level in named.items():
            pts = sorted((max(x, left), max(y, bottom)) for x, y in levels[level])  # x rising, y falling: a
            # staircase from the left edge down to the bottom
            ax.plot([left, *(p[0] for p in pts)], [*(p[1] for p in pts), bottom], drawstyle="steps-post",
                    color=COLORS[i % len(COLORS)], label=f"{method}" if name == "median" else None, **styles[name])
    if target:
        ax.scatter([tx], [ty], marker="*", s=160, color="black", label="target", zorder=5)
        ax.axhline(fronts["utility_floor"] * ty, color="gray", ls="--", lw=1, label="utility floor")
    ax.set_xlim(left=left)
    ax.set_ylim(bottom=bottom)
    x, y = _axes(fronts["objectives"])
    ax.set(xlabel=x, ylabel=y, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return _save(fig, path)
