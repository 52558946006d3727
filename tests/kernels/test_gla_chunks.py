"""The chunk tables of the GLA Triton kernels (host code only, no kernel runs): equal-length batches take cached
tables that must match the packed-sequence build for the same lengths."""
import pytest
import torch

pytest.importorskip("triton")


@pytest.mark.parametrize("B,T,CH", [(3, 200, 64), (2, 256, 128), (1, 5, 64)])
def test_uniform_tables_match_the_packed_build(B, T, CH):
    from statex_dist.kernels.gla.chunk_triton import Chunks

    uniform = Chunks.build(B, T, None, CH, "cpu")
    packed = Chunks.build(B, T, torch.arange(B + 1) * T, CH, "cpu")
    assert (uniform.num_seqs, uniform.num_chunks) == (packed.num_seqs, packed.num_chunks)
    for name in ("cu", "offsets", "table"):
        a, b = getattr(uniform, name), getattr(packed, name)
        assert a.dtype == b.dtype == torch.int64 and torch.equal(a, b), name


def test_uniform_tables_are_built_once_per_shape():
    from statex_dist.kernels.gla.chunk_triton import Chunks

    first = Chunks.build(2, 300, None, 64, "cpu")
    assert Chunks.build(2, 300, None, 64, torch.device("cpu")) is first
    assert Chunks.build(2, 301, None, 64, "cpu") is not first
