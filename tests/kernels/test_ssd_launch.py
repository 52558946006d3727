"""Which launch settings our SSD Triton kernels get (host code only, no kernel runs): the tuned ``LAUNCH`` for
16-bit inputs with head_dim tiles of 64 or more, ``LAUNCH_CHECKED`` otherwise, and never 4 warps on a narrow tile
for the kernels with several dots (a Hopper miscompile, see ``triton_ssd._launch``)."""
import pytest
import torch

pytest.importorskip("triton")

KERNELS = ("walk", "scan", "dx", "dbc", "cb", "dcb")
ONE_DOT = ("walk", "cb")  # kernels with one dot and no head_dim tile in it: 4 warps are safe on narrow tiles


def test_every_kernel_has_settings():
    from statex_dist.kernels.ssd import triton_ssd

    assert set(triton_ssd.LAUNCH) == set(triton_ssd.LAUNCH_CHECKED) == set(KERNELS)


@pytest.fixture
def settings(monkeypatch):
    from statex_dist.kernels.ssd import triton_ssd

    tuned = {k: dict(num_warps=4, num_stages=2, block_n=32) for k in KERNELS}
    checked = {k: dict(num_warps=8, num_stages=None, block_n=128) for k in KERNELS}
    checked["walk"]["num_warps"] = checked["cb"]["num_warps"] = 4
    monkeypatch.setattr(triton_ssd, "LAUNCH", tuned)
    monkeypatch.setattr(triton_ssd, "LAUNCH_CHECKED", checked)
    return triton_ssd._launch


@pytest.mark.parametrize("kernel", KERNELS)
def test_16bit_wide_tiles_get_the_tuned_settings(settings, kernel):
    for dtype in (torch.bfloat16, torch.float16):
        assert settings(kernel, 64, 512, dtype) == (32, dict(num_warps=4, num_stages=2))


@pytest.mark.parametrize("kernel", KERNELS)
def test_fp32_and_narrow_tiles_keep_the_checked_settings(settings, kernel):
    warps = 4 if kernel in ONE_DOT else 8
    assert settings(kernel, 64, 512, torch.float32) == (128, dict(num_warps=warps))
    assert settings(kernel, 16, 512, torch.bfloat16) == (128, dict(num_warps=warps))


def test_narrow_tiles_never_run_several_dot_kernels_at_4_warps(settings, monkeypatch):
    from statex_dist.kernels.ssd import triton_ssd

    monkeypatch.setattr(triton_ssd, "LAUNCH_CHECKED", {k: dict(num_warps=4, num_stages=None, block_n=64)
                                                        for k in KERNELS})
    warps = {k: settings(k, 16, 64, torch.float32)[1]["num_warps"] for k in KERNELS}
    assert warps == {k: 4 if k in ONE_DOT else 8 for k in KERNELS}


def test_state_block_is_capped_by_d_state(settings):
    assert settings("dbc", 64, 16, torch.bfloat16)[0] == 16


def test_fp32_inputs_keep_64_token_chunks(monkeypatch):
    """With CHUNK = 128, 16-bit inputs take 128-token chunks and fp32 inputs stay at 64 (at 128 the fp32 kernels
    need more shared memory than an H200 has): the chunk layout the kernels would be launched on."""
    from statex_dist.kernels.ssd import triton_ssd

    monkeypatch.setattr(triton_ssd, "CHUNK", 128)
    dt, A = torch.zeros(1, 150, 2), -torch.ones(2)
    for dtype, chunk in ((torch.float32, 64), (torch.bfloat16, 128), (torch.float16, 128)):
        x, B = torch.zeros(1, 150, 2, 16, dtype=dtype), torch.zeros(1, 150, 1, 32, dtype=dtype)
        chunks = triton_ssd._Chunks(x, dt, A, B, B, None)
        assert (chunks.meta["L"], chunks.NC) == (chunk, -(-150 // chunk)), dtype
