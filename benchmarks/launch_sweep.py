"""What the launch-setting sweeps of our Triton kernels share (``ssd_launch_sweep.py``, ``gla_launch_sweep.py``).

A sweep script runs each setting in a child process of itself (``SCRIPT --one JSON`` prints ``RESULT {...}``: a
miscompiled setting can poison a CUDA context), within a time budget; a setting is a whole ``LAUNCH`` dict of the
kernels' module. The kernels are independent, so the best entry is picked per kernel among the settings that
passed the float64 check, and that combination is run once more as a whole.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import runpy
import subprocess
import sys
import time
from dataclasses import dataclass


def child(script: str, launch: dict, timeout: float) -> dict:
    """Run ``script --one launch`` and return its RESULT dict (``ok=False`` with the error otherwise)."""
    cmd = [sys.executable, script, "--one", json.dumps(launch)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(ok=False, error=f"timed out after {timeout:.0f} s")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        return dict(ok=False, error=(proc.stderr or proc.stdout)[-300:].replace("\n", " "))
    return json.loads(line[0][7:])


def run_settings(script: str, todo: list[tuple[str, dict]], budget_s: float) -> list[dict]:
    """One child per ``(name, launch)`` in order until the budget is spent; rows with ``setting`` and ``launch``."""
    t0 = time.time()
    rows = []
    for name, launch in todo:
        left = budget_s - (time.time() - t0)
        if left < 30:
            print(f"budget spent: {len(rows)} of {len(todo)} settings run", flush=True)
            break
        rows.append(dict(setting=name, launch=launch, **child(script, launch, left)))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def best_entries(rows: list[dict], columns: dict[tuple, list[str]], base: dict) -> dict:
    """``columns`` maps a path into a ``launch`` dict (e.g. ``("walk",)`` or ``("large", "dv")``) to the row keys
    that time it. Returns a copy of ``base`` (a ``launch`` dict) with, per path, the entry of the passing row with
    the least sum of those keys. Raises ValueError when no passing row times some path."""
    best = copy.deepcopy(base)
    for path, keys in columns.items():
        timed = [r for r in rows if r.get("ok") and all(r.get(k) is not None for k in keys)]
        pick = min(timed, key=lambda r: sum(r[k] for k in keys))
        entry = pick["launch"]
        for p in path:
            entry = entry[p]
        node = best
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = dict(entry)
    return best


@dataclass
class Plan:
    """What a sweep script sweeps: ``todo`` (name, launch) in order, the first being the reference; ``columns`` for
    ``best_entries``; the Markdown file's ``header`` lines and name; the row keys of errors and of times."""

    todo: list[tuple[str, dict]]
    columns: dict[tuple, list[str]]
    header: list[str]
    md_name: str
    err_cols: list[str]
    time_cols: list[str]

    def table(self, rows: list[dict]) -> str:
        from kernels import _md

        cols = ["setting", "ok"] + self.err_cols + self.time_cols + ["error"]
        fmt = {c: (lambda v: f"{v:.1e}") for c in self.err_cols}
        return _md([{c: fmt.get(c, str)(r[c]) if r.get(c) is not None else "" for c in cols} for r in rows])


def sweep(script: str, plan: Plan, budget_s: float, out_dir: str) -> None:
    """Run ``plan.todo`` (``run_settings``), pick the best entries (``best_entries`` from the first setting), run
    their combination once more; write ``plan.md_name``, ``best.json`` and ``rows.json`` to ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    rows = run_settings(script, plan.todo, budget_s)
    text = plan.header + ["", plan.table(rows), ""]
    try:
        best = best_entries(rows, plan.columns, plan.todo[0][1])
    except ValueError:  # no setting passed for some kernel
        best = None
    if best is not None:
        combo = dict(setting="best per kernel", launch=best,
                     **child(script, best, max(60.0, budget_s + 60 - (time.time() - t0))))
        rows.append(combo)
        text += ["## Best per kernel", "", "```", json.dumps(best, indent=1), "```", "", plan.table([combo]), ""]
        with open(os.path.join(out_dir, "best.json"), "w") as f:
            json.dump(best, f, indent=1)
    with open(os.path.join(out_dir, "rows.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(out_dir, plan.md_name), "w") as f:
        f.write("\n".join(text))
    print("\n".join(text), flush=True)


def apply(set_launch, path: str, argv: list[str]) -> int:
    """Run pytest (``argv[0] == "pytest"``) or a script with the ``LAUNCH`` read from ``path`` (``set_launch``
    installs it in the kernels' module)."""
    with open(path) as f:
        launch = json.load(f)
    set_launch(launch)
    print(f"LAUNCH = {launch}", flush=True)
    if argv[0] == "pytest":
        import pytest

        return pytest.main(argv[1:])
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")
    return 0


def cli(script: str, doc: str, run_one, set_launch, plan) -> int:
    """The sweep scripts' command line: ``--one JSON`` (a child: ``run_one(launch)``), ``--apply BEST_JSON ...``
    (``apply``) or the sweep of ``plan()`` (a ``Plan``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=".")
    ap.add_argument("--budget-s", type=float, default=240)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--apply", metavar="BEST_JSON", help="then pytest ARGS... or SCRIPT ARGS...")
    ap.add_argument("--only", help="comma-separated substrings: the reference setting and those whose name has one")
    if len(sys.argv) > 2 and sys.argv[1] == "--apply":  # the rest is the command's own (its --out included)
        return apply(set_launch, sys.argv[2], sys.argv[3:])
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(json.loads(args.one))), flush=True)
        return 0
    todo = plan()
    if args.only:
        keys = args.only.split(",")
        todo.todo = todo.todo[:1] + [t for t in todo.todo[1:] if any(k in t[0] for k in keys)]
    sweep(script, todo, args.budget_s, args.out)
    return 0
