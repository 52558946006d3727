"""Model behaviour on CPU: fla key compatibility, packed == separate, cached decode == full forward, round trips."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from statex_dist.models.loading import CheckpointError, load_pretrained
from tests.conftest import tiny_config, tiny_model


def test_forward_backward_and_loss(family):
    model = tiny_model(family).train()
    ids = torch.randint(0, 512, (2, 70))
    out = model(ids, labels=ids)
    assert torch.isfinite(out.loss) and out.logits.shape == (2, 70, 512)
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    # HF labels (shifted inside) and pre-shifted targets give the same loss.
    shifted = torch.nn.functional.pad(ids[:, 1:], (0, 1), value=-100)
    assert torch.allclose(model(ids, shift_labels=shifted).loss, out.loss)


def test_packed_documents_match_separate_runs(family):
    model = tiny_model(family)
    ids = torch.randint(0, 512, (2, 96))
    cu = torch.tensor([0, 37, 96, 101, 150, 192], dtype=torch.int32)
    packed = model(ids, cu_seqlens=cu).logits.reshape(1, 192, -1)
    flat = ids.reshape(1, 192)
    separate = torch.cat([model(flat[:, a:b]).logits for a, b in zip(cu[:-1].tolist(), cu[1:].tolist())], dim=1)
    torch.testing.assert_close(packed, separate, atol=2e-5, rtol=1e-4)
    # Without cu_seqlens the state leaks across the boundary: outputs after it must differ.
    leaky = model(flat).logits
    assert (leaky[:, 37:96] - separate[:, 37:96]).abs().max() > 1e-3


@pytest.mark.parametrize("expanded", [False, True])
def test_cached_decoding_matches_full_forward(family, expanded):
    overrides = {}
    if expanded:
        overrides = {"layer_overrides": {"0": {"num_heads": 1}} if family == "gla" else {"0": {"state_size": 48}}}
    model = tiny_model(family, **overrides)
    ids = torch.randint(0, 512, (2, 40))
    full = model(ids).logits
    out = model(ids[:, :25], use_cache=True)
    logits = [out.logits]
    for t in range(25, 40):
        out = model(ids[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True)
        logits.append(out.logits)
    torch.testing.assert_close(torch.cat(logits, 1), full, atol=2e-5, rtol=1e-4)
    # Hugging Face generate (greedy) and our greedy decoder agree.
    ours = model.greedy_generate(ids[:, :10], 6)
    hf = model.generate(ids[:, :10], max_new_tokens=6, do_sample=False, attention_mask=torch.ones_like(ids[:, :10]))
    assert torch.equal(hf[:, 10:], ours)


def test_fla_checkpoint_keys_load_into_our_model(tmp_path, family):
    """A checkpoint written by fla's own classes loads strictly into ours, tensor for tensor."""
    pytest.importorskip("fla.models", reason="fla models need triton installed")
    from fla.models import GLAConfig, GLAForCausalLM, Mamba2Config, Mamba2ForCausalLM

    raw = json.loads(open(f"configs/models/{family}-tiny.json").read())
    raw.pop("model_type")
    torch.manual_seed(0)
    fla_model = (GLAForCausalLM(GLAConfig(**raw)) if family == "gla" else Mamba2ForCausalLM(Mamba2Config(**raw)))
    fla_model.save_pretrained(tmp_path / "fla")
    ours = load_pretrained(tmp_path / "fla")
    theirs = fla_model.state_dict()
    mine = ours.state_dict()
    assert set(theirs) == set(mine)
    for key in theirs:
        assert torch.equal(theirs[key], mine[key]), key


def test_save_from_pretrained_round_trip(tmp_path, family):
    overrides = {"layer_overrides": {"2": {"num_heads": 2}} if family == "gla" else {"2": {"state_size": 64}}}
    model = tiny_model(family, **overrides)
    model.save_pretrained(tmp_path / "m")
    auto = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    assert type(auto) is type(model)
    assert auto.config.layer_overrides == model.config.layer_overrides
    ids = torch.randint(0, 512, (1, 50))
    torch.testing.assert_close(auto(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_load_errors_name_the_problem(tmp_path, family, tiny_checkpoint):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_pretrained(tmp_path / "nowhere")
    # Weights that do not fit the config are refused, not re-initialised.
    cfg = json.loads((tiny_checkpoint / "config.json").read_text())
    cfg["num_hidden_layers"] = 5
    (tiny_checkpoint / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match"):
        load_pretrained(tiny_checkpoint)
    # A truncated weight file is reported as such.
    cfg["num_hidden_layers"] = 4
    (tiny_checkpoint / "config.json").write_text(json.dumps(cfg))
    weights = tiny_checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_pretrained(tiny_checkpoint)


def test_unsupported_config_is_refused():
    with pytest.raises(ValueError, match="use_short_conv"):
        tiny_config("gla", use_short_conv=True)
    with pytest.raises(ValueError, match="do not divide"):
        tiny_config("gla", layer_overrides={"0": {"num_heads": 3}})
    with pytest.raises(ValueError, match="out of range"):
        tiny_config("mamba2", layer_overrides={"9": {"state_size": 32}})


def test_mamba_ssm_conversion(tmp_path):
    from safetensors.torch import save_file

    from statex_dist.models.loading import convert_mamba_ssm

    model = tiny_model("mamba2")
    state = {k.replace("backbone.embeddings.", "backbone.embedding."): v.clone()
             for k, v in model.state_dict().items() if k != "lm_head.weight"}
    src = tmp_path / "ssm"
    src.mkdir()
    save_file(state, str(src / "model.safetensors"))
    (src / "config.json").write_text(json.dumps({
        "d_model": 64, "n_layer": 4, "vocab_size": 500, "pad_vocab_size_multiple": 16,
        "ssm_cfg": {"layer": "Mamba2", "d_state": 16, "headdim": 16, "chunk_size": 32},
        "rms_norm": True, "residual_in_fp32": True, "tie_embeddings": True,
    }))
    with pytest.raises(CheckpointError, match="convert-mamba-ssm"):
        load_pretrained(src)
    out = convert_mamba_ssm(src, tmp_path / "hf")
    loaded = load_pretrained(out).eval()
    assert loaded.config.vocab_size == 512  # 500 padded to a multiple of 16
    ids = torch.randint(0, 500, (1, 30))
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_mamba2_mixer_output_is_not_cast_to_fp32_under_autocast():
    """With fp32 parameters under bf16 autocast the gated-norm output (bf16) goes to out_proj as it is: an
    ``.to(fp32)`` before it was a read + write of a [B, T, d_inner] tensor per layer, and the autocast cast back
    another one (the same in backward). The result is unchanged: the linear sees the same bf16 values."""
    from torch.utils._python_dispatch import TorchDispatchMode

    model = tiny_model("mamba2").train()
    block = model.backbone.layers[0]
    shape = (2, 16, block.mixer.intermediate_size)

    class CountFp32Copies(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is torch.ops.aten._to_copy.default and out.dtype == torch.float32 and tuple(out.shape) == shape:
                self.count += 1
            return out

    # the PyTorch gated norm computes in fp32 by design (fla's fused one on CUDA does not): keep it out of the count
    block.mixer.norm.forward = lambda y, z: (y * torch.sigmoid(z)).to(y.dtype)
    x = torch.randn(2, 16, model.config.hidden_size)
    with torch.autocast("cpu", dtype=torch.bfloat16), CountFp32Copies() as casts:
        y = block.mixer(block.norm(x))
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    assert casts.count == 0, f"{casts.count} fp32 copies of the [B, T, d_inner] mixer activations"


@pytest.mark.parametrize("family,module,op", [("gla", "gla", "gla_attention"), ("mamba2", "mamba2", "ssd_attention")])
def test_kernel_save_states_reaches_the_kernel_call_and_round_trips(tmp_path, monkeypatch, family, module, op):
    """``kernel_save_states`` (kept in config.json) is passed to every layer's kernel call; the CPU backend
    ignores it, so the loss is the same either way."""
    import importlib

    mod = importlib.import_module(f"statex_dist.models.{module}")
    seen = []
    real = getattr(mod, op)

    def spy(*args, **kwargs):
        seen.append(kwargs["save_states"])
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, op, spy)
    ids = torch.randint(0, 512, (2, 40))
    losses = []
    for flag in (False, True):
        model = tiny_model(family, kernel_save_states=flag)
        losses.append(model(ids, labels=ids).loss)
    layers = model.config.num_hidden_layers
    assert seen == [False] * layers + [True] * layers
    assert torch.equal(*losses)
    model.save_pretrained(tmp_path)
    assert load_pretrained(tmp_path).config.kernel_save_states is True
