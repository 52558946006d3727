from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "distributed"))


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    from statex_dist.train.synthetic import write_synthetic_corpus

    return write_synthetic_corpus(tmp_path_factory.mktemp("synthetic") / "mds", num_docs=400, vocab=40,
                                  min_len=40, max_len=64, seed=0)
