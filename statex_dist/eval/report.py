"""Results -> Markdown tables and PNG plots, for one model or several side by side (with seeds pooled).

Everything here takes *groups*: ``{label: [result, result, ...]}`` where each result is one ``run_eval``
dict; a group with several results (seeds) is shown as mean and spread (min-max bars).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path


def _fmt_len(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 and n >= 1024 else str(n)


def _stat(xs: list[float]) -> tuple[float, float, float, float]:
    """mean, std (0 for one value), min, max."""
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return float("nan"), 0.0, float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0), min(xs), max(xs)


def _cell(xs: list[float], pct: bool = True) -> str:
    m, s, _, _ = _stat(xs)
    if math.isnan(m):
        return "-"
    scale = 100.0 if pct else 1.0
    txt = f"{m * scale:.1f}" if pct else f"{m:.3f}"
    if len(xs) > 1:
        txt += f" ± {s * scale:.1f}" if pct else f" ± {s:.3f}"
    return txt


def groups_from_results(results: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r.get("label") or "model", []).append(r)
    return groups


def markdown_tables(groups: dict[str, list[dict]]) -> str:
    """One table per task; cells are accuracy in % (mean ± std over the group's results)."""
    out: list[str] = []
    first = next(iter(groups.values()))[0]["tasks"]
    n = max(len(v) for v in groups.values())
    note = f" (mean ± std over {n} runs)" if n > 1 else ""
    if "mqar" in first:
        pairs = [c["pairs"] for c in first["mqar"]["cells"]]
        out += [f"**MQAR** accuracy per query, % by number of key-value pairs{note}; chance "
                f"{100 * first['mqar']['chance']:.1f}%", "",
                "| model | " + " | ".join(str(p) for p in pairs) + " | mean |",
                "|---|" + "---:|" * (len(pairs) + 1)]
        for label, rs in groups.items():
            cols = [_cell([_mqar_at(r, p) for r in rs]) for p in pairs]
            cols.append(_cell([r["tasks"]["mqar"]["accuracy"] for r in rs]))
            out.append(f"| {label} | " + " | ".join(cols) + " |")
        out.append("")
    for task, title in (("passkey", "Passkey retrieval"), ("niah", "NIAH-single")):
        if task not in first:
            continue
        lengths = [int(k) for k in first[task]["by_length"]]
        out += [f"**{title}** exact match, % by prompt length (mean over depths){note}", "",
                "| model | " + " | ".join(_fmt_len(L) for L in lengths) + " | mean |",
                "|---|" + "---:|" * (len(lengths) + 1)]
        for label, rs in groups.items():
            cols = [_cell([r["tasks"][task]["by_length"][str(L)] for r in rs]) for L in lengths]
            cols.append(_cell([r["tasks"][task]["accuracy"] for r in rs]))
            out.append(f"| {label} | " + " | ".join(cols) + " |")
        out.append("")
    if "ppl" in first:
        buckets = first["ppl"]["buckets"]
        out += [f"**Loss by position** (nats/token) on held-out windows of {first['ppl']['seq_len']} tokens{note}", "",
                "| model | " + " | ".join(f"{b['start']}-{b['end'] - 1}" for b in buckets) + " | all |",
                "|---|" + "---:|" * (len(buckets) + 1)]
        for label, rs in groups.items():
            cols = [_cell([r["tasks"]["ppl"]["buckets"][i]["loss"] for r in rs], pct=False) for i in range(len(buckets))]
            cols.append(_cell([r["tasks"]["ppl"]["loss"] for r in rs], pct=False))
            out.append(f"| {label} | " + " | ".join(cols) + " |")
        out.append("")
    if "lm_eval" in first:
        metrics = sorted({(t, m) for r in sum(groups.values(), []) for t, ms in r["tasks"]["lm_eval"]["metrics"].items()
                          for m in ms})
        out += ["**lm-evaluation-harness**", "", "| model | " + " | ".join(f"{t} {m}" for t, m in metrics) + " |",
                "|---|" + "---:|" * len(metrics)]
        for label, rs in groups.items():
            cols = [_cell([r["tasks"]["lm_eval"]["metrics"].get(t, {}).get(m, float("nan")) for r in rs], pct=False)
                    for t, m in metrics]
            out.append(f"| {label} | " + " | ".join(cols) + " |")
        out.append("")
    return "\n".join(out)


def _mqar_at(result: dict, pairs: int) -> float:
    for c in result["tasks"]["mqar"]["cells"]:
        if c["pairs"] == pairs:
            return c["accuracy"]
    return float("nan")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_haystack(groups: dict[str, list[dict]], path: Path) -> Path | None:
    """Accuracy heatmaps, depth (rows) x length (columns): one column of panels per model, one row per task."""
    first = next(iter(groups.values()))[0]["tasks"]
    tasks = [t for t in ("passkey", "niah") if t in first]
    if not tasks:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(tasks), len(groups), figsize=(3.6 * len(groups) + 1.2, 3.2 * len(tasks)),
                             squeeze=False, constrained_layout=True)
    im = None
    for col, (label, rs) in enumerate(groups.items()):
        for row, task in enumerate(tasks):
            cells = rs[0]["tasks"][task]["cells"]
            lengths = sorted({c["length"] for c in cells})
            depths = sorted({c["depth"] for c in cells})
            grid = [[_stat([next(c["accuracy"] for c in r["tasks"][task]["cells"]
                                 if c["length"] == L and c["depth"] == d) for r in rs])[0]
                     for L in lengths] for d in depths]
            ax = axes[row][col]
            im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="upper")
            for i, d in enumerate(depths):
                for j, L in enumerate(lengths):
                    v = grid[i][j]
                    ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=8,
                            color="black" if v > 0.6 else "white")
            ax.set_xticks(range(len(lengths)), [_fmt_len(L) for L in lengths])
            ax.set_yticks(range(len(depths)), [f"{d:.2f}" for d in depths])
            ax.set_xlabel("prompt length (tokens)")
            if col == 0:
                ax.set_ylabel("needle depth")
            ax.set_title(f"{label}: {task}", fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8, label="exact match (cells: %)")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_mqar(groups: dict[str, list[dict]], path: Path) -> Path | None:
    """Accuracy vs number of pairs, one line per model (mean, min-max bars over seeds), chance dashed."""
    first = next(iter(groups.values()))[0]["tasks"]
    if "mqar" not in first:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    pairs = [c["pairs"] for c in first["mqar"]["cells"]]
    for label, rs in groups.items():
        stats = [_stat([_mqar_at(r, p) for r in rs]) for p in pairs]
        means = [s[0] for s in stats]
        err = [[m - s[2] for m, s in zip(means, stats)], [s[3] - m for m, s in zip(means, stats)]]
        state = rs[0].get("model", {}).get("state_elements")
        extra = [f"state {state:,}"] if state else []
        extra += [f"{len(rs)} seeds"] if len(rs) > 1 else []
        ax.errorbar(pairs, means, yerr=err if len(rs) > 1 else None, marker="o", capsize=3,
                    label=label + (f" ({', '.join(extra)})" if extra else ""))
    ax.axhline(first["mqar"]["chance"], color="grey", ls="--", lw=1, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(pairs, [str(p) for p in pairs])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("key-value pairs in context")
    ax.set_ylabel("accuracy per query")
    ax.set_title("Multi-query associative recall")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_ppl(groups: dict[str, list[dict]], path: Path) -> Path | None:
    first = next(iter(groups.values()))[0]["tasks"]
    if "ppl" not in first:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    for label, rs in groups.items():
        bks = rs[0]["tasks"]["ppl"]["buckets"]
        xs = [math.sqrt(b["start"] * (b["end"] - 1)) for b in bks]
        ys = [_stat([r["tasks"]["ppl"]["buckets"][i]["loss"] for r in rs])[0] for i in range(len(bks))]
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("token position")
    ax.set_ylabel("next-token loss (nats)")
    ax.set_title("Loss by position")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(results: list[dict], out: str | Path, stem: str = "results") -> dict[str, Path]:
    """``<stem>.json``, ``<stem>.md`` and the PNGs next to them; returns what was written."""
    out_json = Path(out)
    if out_json.suffix != ".json":
        out_json = out_json / f"{stem}.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results if len(results) > 1 else results[0], indent=1))
    groups = groups_from_results(results)
    written = {"json": out_json}
    md = out_json.with_suffix(".md")
    md.write_text(markdown_tables(groups) + "\n")
    written["markdown"] = md
    base = out_json.with_suffix("")
    for name, fn in (("haystack", plot_haystack), ("mqar", plot_mqar), ("ppl", plot_ppl)):
        p = fn(groups, Path(f"{base}_{name}.png"))
        if p is not None:
            written[name] = p
    return written


def load_results(paths: list[str]) -> list[dict]:
    out: list[dict] = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        out += data if isinstance(data, list) else [data]
    return out
