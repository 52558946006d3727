from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# The launcher scripts call `python`, `torchrun` and `deepspeed` from PATH: make them this interpreter's (the
# project's virtual environment), as an activated environment would.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    from statex_dist.train.synthetic import write_synthetic_corpus

    return write_synthetic_corpus(tmp_path_factory.mktemp("synthetic") / "mds", num_docs=400, vocab=40,
                                  min_len=40, max_len=64, seed=0)
