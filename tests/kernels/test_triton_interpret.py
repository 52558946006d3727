"""CI gate for the Triton kernels without a GPU: they run under TRITON_INTERPRET=1 at tiny shapes and must
match the PyTorch chunked reference (outputs, final state, every gradient). One subprocess runs all cases."""
import json
import os
import subprocess
import sys

import pytest

from interpret_cases import CASES, TOL_BF16

pytest.importorskip("triton")
pytestmark = pytest.mark.interpret

TOL = 2e-5


@pytest.fixture(scope="module")
def interpreted_results():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "interpret_cases.py")],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")]
    assert lines, f"interpreter run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(lines[-1][len("RESULTS "):])


@pytest.mark.parametrize("case", list(CASES) + ["custom-op", "saved-states"])
def test_triton_kernels_interpreted(interpreted_results, case):
    errs = interpreted_results[case]
    assert errs, case
    tol = TOL_BF16 if case.endswith("-bf16-launch") else TOL
    bad = {n: e for n, e in errs.items() if not e <= tol}
    assert not bad, f"{case}: relative errors over {tol}: {bad}"
