#!/usr/bin/env bash
# Fills .whl/ (ignored: add `/.whl/` to .git/info/exclude) with what the GPU machines' image lacks, as wheels for
# their Python 3.12: fla, DeepSpeed (pure Python, ops built just in time) and its pydantic, and the MDS reader
# (streaming-community) with the compression modules it imports at start-up. A device call carries `.whl` and
# starts with `python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target
# /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD`. The image's package list: the device tool's KINDS.md.
# usage: bash benchmarks/device_wheels.sh      (repo root, on the CPU machine with PyPI)
set -euo pipefail
mkdir -p .whl
PLATFORMS=()
for p in manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 \
         manylinux1; do PLATFORMS+=(--platform "${p}_x86_64"); done
for spec in flash-linear-attention==0.6.0 fla-core==0.6.0 hjson==3.1.0 \
            pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
            streaming-community==0.14.2 brotli==1.2.1 catalogue==2.0.10 python-snappy==0.7.3 cramjam==2.14.0 \
            zstd==1.5.7.3 zstandard==0.25.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "$spec"
done
ls .whl/deepspeed-0.19.8-*.whl > /dev/null 2>&1 || \
  DS_BUILD_OPS=0 python3 -m pip wheel -q --no-deps --no-build-isolation -w .whl deepspeed==0.19.8
ls .whl
du -sh .whl
