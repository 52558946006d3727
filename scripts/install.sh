#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: a virtual environment in .venv with statex_dist and everything
# the demo and the tests need. Used by both README commands and by CI.
#
# torch: a plain `pip install torch` pulls a multi-GB CUDA build; on CPU machines we install the CPU wheel
# (STATEX_TORCH, default torch==2.13.0) and pin it as a constraint for every later pip call so no package
# can replace it. On a GPU machine set STATEX_TORCH to the CUDA build you want (or "skip" to keep the
# torch that the environment already has).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${STATEX_VENV:-.venv}
TORCH_SPEC=${STATEX_TORCH:-torch==2.13.0}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
CONSTRAINTS="$VENV/statex-constraints.txt"
if [ "$TORCH_SPEC" != "skip" ]; then
  pip install -q "$TORCH_SPEC"
fi
"$VENV/bin/python" -c "import torch; print(f'torch=={torch.__version__.split(\"+\")[0]}')" > "$CONSTRAINTS"
# The package with its extras (fla + triton for reference kernels, deepspeed, data, eval, tests).
pip install -q -c "$CONSTRAINTS" -e ".[dev,deepspeed,data,eval,logging]"
# mosaicml-streaming (MDS) declares transformers<5 and torchvision, which would break fla / transformers 5 and
# pull a CUDA torchvision: install the module without its declared deps, then only the runtime deps it uses.
if [ -f scripts/requirements-mds.txt ]; then
  pip install -q -c "$CONSTRAINTS" --no-deps "$(head -n1 scripts/requirements-mds.txt)"
  tail -n +2 scripts/requirements-mds.txt | grep -v '^\s*#' | grep -v '^\s*$' \
    | xargs -r "$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS"
fi
echo "statex_dist installed in $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
