"""CI gate for our Mamba2 SSD Triton kernels without a GPU: interpreted at tiny shapes
(TRITON_INTERPRET=1), it must match the float64 PyTorch chunked SSD (outputs, final state, the gradients of
x, dt, A, B, C and the initial state, and their dtypes). The cases run in two child processes side by side
(the interpreter is slow and single-threaded)."""
import json
import os
import subprocess
import sys

import pytest

from interpret_ssd_cases import CASES

pytest.importorskip("triton")
pytestmark = pytest.mark.interpret

ALL = [*CASES, "custom-op", "kept-states"]


@pytest.fixture(scope="module")
def interpreted_results():
    here = os.path.dirname(__file__)
    root = os.path.abspath(os.path.join(here, "..", ".."))
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # two groups of about equal interpreter cost (CASES is ordered for this split)
    groups = [ALL[0::2], ALL[1::2]]
    procs = [subprocess.Popen([sys.executable, os.path.join(here, "interpret_ssd_cases.py"), ",".join(g)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for g in groups]
    results = {}
    for p in procs:
        out, err = p.communicate(timeout=600)
        lines = [ln for ln in out.splitlines() if ln.startswith("RESULTS ")]
        assert lines, f"interpreter run failed:\n{out[-3000:]}\n{err[-6000:]}"
        results.update(json.loads(lines[-1][len("RESULTS "):]))
    return results


@pytest.mark.parametrize("case", ALL)
def test_ssd_triton_interpreted(interpreted_results, case):
    res = interpreted_results[case]
    assert res["err"], case
    assert not res["dtype_errors"], f"{case}: gradient dtypes/shapes differ from the inputs': {res['dtype_errors']}"
    bad = {n: e for n, e in res["err"].items() if not e <= res["tol"]}
    assert not bad, f"{case}: relative errors over {res['tol']}: {bad}"
