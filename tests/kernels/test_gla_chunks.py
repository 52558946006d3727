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


def test_uniform_tables_list_each_chunks_sequence_and_first_row():
    from statex_dist.kernels.gla.chunk_triton import Chunks

    ch = Chunks.build(2, 130, None, 64, "cpu")
    assert ch.table.tolist() == [[0, 0], [0, 64], [0, 128], [1, 130], [1, 194], [1, 258]]
    assert ch.cu.tolist() == [0, 130, 260] and ch.offsets.tolist() == [0, 3, 6]
    assert (ch.num_seqs, ch.num_chunks) == (2, 6)


def test_uniform_tables_are_built_once_per_shape():
    from statex_dist.kernels.gla.chunk_triton import Chunks

    first = Chunks.build(2, 300, None, 64, "cpu")
    assert Chunks.build(2, 300, None, 64, torch.device("cpu")) is first
    assert Chunks.build(2, 301, None, 64, "cpu") is not first
