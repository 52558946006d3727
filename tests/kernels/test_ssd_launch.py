"""Which launch settings our SSD Triton kernels get (host code only, no kernel runs): the tuned ``LAUNCH`` for
16-bit inputs with head_dim tiles of 64 or more, ``LAUNCH_CHECKED`` otherwise, never 4 warps on a narrow tile
for the kernels with several dots (a Hopper miscompile, see ``triton_ssd._launch``), and the state walk's heads
per program only where a tile of that many heads is valid."""
import pytest
import torch

triton = pytest.importorskip("triton")

KERNELS = ("walk", "scan", "dx", "dbc")


@pytest.fixture
def settings(monkeypatch):
    from statex_dist.kernels.ssd import triton_ssd

    tuned = {k: dict(num_warps=4, num_stages=2, block_n=32) for k in KERNELS}
    checked = {k: dict(num_warps=8, num_stages=None, block_n=128) for k in KERNELS}
    checked["walk"]["num_warps"] = 4
    monkeypatch.setattr(triton_ssd, "LAUNCH", tuned)
    monkeypatch.setattr(triton_ssd, "LAUNCH_CHECKED", checked)
    return triton_ssd._launch


def _opts(kernel, **opts):
    return dict(opts, HEADS=1) if kernel == "walk" else opts


@pytest.mark.parametrize("kernel", KERNELS)
def test_16bit_wide_tiles_get_the_tuned_settings(settings, kernel):
    for dtype in (torch.bfloat16, torch.float16):
        assert settings(kernel, 64, 512, dtype) == (32, _opts(kernel, num_warps=4, num_stages=2))


@pytest.mark.parametrize("kernel", KERNELS)
def test_fp32_and_narrow_tiles_keep_the_checked_settings(settings, kernel):
    warps = 4 if kernel == "walk" else 8
    assert settings(kernel, 64, 512, torch.float32) == (128, _opts(kernel, num_warps=warps))
    assert settings(kernel, 16, 512, torch.bfloat16) == (128, _opts(kernel, num_warps=warps))


def test_narrow_tiles_never_run_several_dot_kernels_at_4_warps(settings, monkeypatch):
    from statex_dist.kernels.ssd import triton_ssd

    monkeypatch.setattr(triton_ssd, "LAUNCH_CHECKED", {k: dict(num_warps=4, num_stages=None, block_n=64)
                                                        for k in KERNELS})
    assert [settings(k, 16, 64, torch.float32)[1]["num_warps"] for k in KERNELS] == [4, 8, 8, 8]


def test_state_block_is_capped_by_d_state(settings):
    assert settings("dbc", 64, 16, torch.bfloat16)[0] == 16


def test_tables_give_the_walk_alone_heads_per_program():
    from statex_dist.kernels.ssd import triton_ssd

    for table in (triton_ssd.LAUNCH, triton_ssd.LAUNCH_CHECKED):
        assert table["walk"]["heads"] in (1, 2, 4)
        assert all("heads" not in table[k] for k in KERNELS[1:])


def _walk_heads(P, H, G, dtype=torch.bfloat16):
    from statex_dist.kernels.ssd.triton_ssd import MIN_BLOCK_P, _block, _launch

    BP = max(MIN_BLOCK_P, _block(P))  # as _Chunks has it
    return _launch("walk", BP, 512, dtype, P, H, G)[1]["HEADS"]


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("table", ["LAUNCH", "LAUNCH_CHECKED"])
def test_walk_heads_honoured_where_valid(settings, monkeypatch, heads, table):
    from statex_dist.kernels.ssd import triton_ssd

    monkeypatch.setitem(getattr(triton_ssd, table)["walk"], "heads", heads)
    dtype = torch.bfloat16 if table == "LAUNCH" else torch.float32
    assert _walk_heads(64, 64, 1, dtype) == heads  # Mamba2-1.3B
    assert _walk_heads(64, 8, 2, dtype) == heads  # 2 groups of 4 heads
    assert _walk_heads(128, 4, 1, dtype) == heads
    if table == "LAUNCH_CHECKED":
        assert _walk_heads(16, 8, 2, dtype) == heads  # the GPU demo's narrow heads (P = 16)
        assert _walk_heads(32, 8, 1, torch.bfloat16) == heads  # a narrow tile: LAUNCH_CHECKED for 16-bit too


@pytest.mark.parametrize("P, H, G, heads, want", [
    (64, 6, 1, 4, 1),  # H not a multiple of heads
    (64, 6, 3, 2, 2),  # 3 groups of 2 heads: tiles of 2 heads stay in their group
    (64, 8, 4, 4, 1),  # 4 groups of 2 heads: a tile of 4 would cross a group boundary
    (64, 8, 4, 2, 2),
    (64, 16, 8, 4, 1),
    (64, 64, 1, 3, 1),  # not a power of two
    (64, 64, 1, 0, 1),
    (8, 8, 1, 2, 1),  # P < 16: the head_dim tile (16) is wider than P
    (24, 8, 1, 2, 1),  # P not a power of two (tile 32)
    (48, 8, 1, 4, 1),  # P not a power of two (tile 64)
    (96, 8, 1, 2, 1),  # P not a power of two (tile 128)
])
@pytest.mark.parametrize("table", ["LAUNCH", "LAUNCH_CHECKED"])
def test_walk_heads_fall_back_to_one_where_invalid(settings, monkeypatch, P, H, G, heads, want, table):
    from statex_dist.kernels.ssd import triton_ssd

    monkeypatch.setitem(getattr(triton_ssd, table)["walk"], "heads", heads)
    assert _walk_heads(P, H, G, torch.bfloat16 if table == "LAUNCH" else torch.float32) == want


def test_walk_heads_missing_from_a_table_means_one(settings):
    # settings' tables have no "heads" (as a best.json written before the key existed)
    assert _walk_heads(64, 64, 1) == 1


@pytest.mark.parametrize("heads, P, want_heads", [(1, 64, 1), (2, 64, 2), (4, 64, 4), (4, 32, 4), (4, 24, 1),
                                                  (2, 48, 1)])
def test_walk_launch_grid_covers_the_heads_per_program(settings, monkeypatch, heads, P, want_heads):
    """_Chunks.walk launches R * H / heads programs per state block with HEADS set (the kernel replaced by a
    recorder: nothing runs)."""
    from statex_dist.kernels.ssd import triton_ssd

    monkeypatch.setitem(triton_ssd.LAUNCH["walk"], "heads", heads)
    monkeypatch.setitem(triton_ssd.LAUNCH_CHECKED["walk"], "heads", heads)
    calls = []

    class Recorder:
        def __getitem__(self, grid):
            return lambda *args, **kw: calls.append((grid, kw))

    monkeypatch.setattr(triton_ssd, "ssd_state_walk_kernel", Recorder())
    b, T, H, G, N = 2, 130, 8, 2, 80
    x = torch.zeros(b, T, H, P, dtype=torch.bfloat16)
    dt, A = torch.zeros(b, T, H), -torch.ones(H)
    B = C = torch.zeros(b, T, G, N, dtype=torch.bfloat16)
    triton_ssd._Chunks(x, dt, A, B, C, None).states(None)
    (grid, kw), = calls
    assert kw["HEADS"] == want_heads
    assert grid == (triton.cdiv(P, kw["BP"]) * triton.cdiv(N, kw["BN"]), b * H // want_heads)
