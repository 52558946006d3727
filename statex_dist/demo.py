"""``statex demo``: the whole StateX pipeline on a laptop CPU, through the same code a cluster run uses.

1. **data**: a synthetic corpus (text-like documents with embedded facts and later questions about them, plus
   multi-query associative recall (MQAR) sequences), written as jsonl;
2. **tokenizer**: a small byte-level BPE trained on it (``data.tokenizer.train_tokenizer``), then the corpus
   is tokenized into MDS shards (``data.prepare.prepare_corpus``), exactly like ``statex data prepare``;
3. **pre-train** a tiny Mamba2 (the default; GLA with --family gla) whose recurrent state is too small for the recall load, with the
   real trainer (``train.run_training``, backend ``single``; fp32 on the CPU by default, ``device`` and
   ``precision`` choose a GPU and bf16: ``configs/demo/gpu.json``), then ``checkpoint.export_checkpoint``;
4. **post-train two arms** from that export with the same data, steps and seed: LPT (no expansion) and StateX
   (``model.expand``: the chosen layers merged to one head and re-initialised, as in the paper);
5. **evaluate** base, LPT and StateX with ``statex eval``'s runner (MQAR by number of pairs, NIAH/passkey,
   loss by position on held-out shards) and write ``report.md``, ``results.json`` and the PNGs.

Each seed repeats steps 3-5 (data and tokenizer are shared). Nothing touches the network.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from statex_dist.eval import tasks as T

log = logging.getLogger("statex.demo")

DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("fp32", "mixed_bf16", "pure_bf16")  # train.config.PrecisionConfig.mode
EVAL_DTYPES = ("float32", "bfloat16", "float16")  # eval.runner.EvalConfig.dtype


@dataclass
class DemoConfig:
    """Sizes and budgets of the demo; :meth:`preset` gives ``default`` (about 10 minutes on 2 cores) and
    ``quick`` (about a minute, for tests)."""

    out: str = "runs/demo"
    seeds: list[int] = field(default_factory=lambda: [0])
    families: list[str] = field(default_factory=lambda: ["mamba2"])
    # model: a GLA with 4 heads; StateX merges the expanded layers to 1 head (state x4 there)
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mamba2_state_size: int = 16
    """Mamba2 arm: d_state of the base model (StateX grows the expanded layers x4)."""
    expand_layers: str = "1"
    """Layers StateX expands (every:K, all, or 0,2,...); in a 2-layer model layer 1 does the lookup."""
    gate_bias_init: float | None = 4.0
    """GLA: start the forget-gate bias here (decay close to 1, long memory at step 0). A tiny model trained
    for minutes does not learn to open its gates from fla's default init in time; None keeps that init."""
    gate_decay_range: list[float] | None = None
    """GLA, instead of ``gate_bias_init``: ``[d_min, d_max]``, the per-step decays the key channels start with,
    spread geometrically in time scale (-1/ln d) across each layer's channels, head-major (head 0 forgets
    fastest). A channel near 0.05 can copy the previous token (GLA has no short convolution), one near 0.9995
    keeps a pair for thousands of tokens; a single constant bias gives only the second kind."""
    vocab_size: int = 512
    # data
    mqar_keys: int = 64
    mqar_values: int = 64
    pretrain_pairs: tuple[int, int] = (2, 6)
    posttrain_pairs: tuple[int, int] = (2, 32)
    mqar_docs: int = 20000
    fact_docs: int = 800
    text_docs: int = 300
    heldout_docs: int = 200
    # training
    seq_len: int = 256
    micro_batch_size: int = 4
    pretrain_steps: int = 2000
    posttrain_steps: int = 2000
    pretrain_lr: float = 3e-3
    posttrain_lr: float = 1e-3
    warmup_steps: int = 50
    # evaluation
    eval_pairs: list[int] = field(default_factory=lambda: [4, 8, 16, 24, 32, 48])
    eval_lengths: list[int] = field(default_factory=lambda: [256, 512])
    eval_depths: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    eval_samples: int = 16
    eval_batch_size: int = 16
    """Sequences per evaluation forward pass (bounded by 65,536 padded tokens)."""
    eval_dtype: str = "float32"
    """Weights/activations of the evaluated models: float32, bfloat16 or float16."""
    # hardware
    device: str = "cpu"
    """Where training and evaluation run: cpu, cuda, or auto (cuda when torch sees a GPU, else cpu)."""
    precision: str = "fp32"
    """Training precision (``PrecisionConfig.mode``): fp32, mixed_bf16 (bf16 autocast, fp32 weights) or pure_bf16."""
    kernel_backend: str | None = None
    """Token-mixer kernels written into the model config (torch, auto, triton, fla); None = torch on the CPU,
    auto on a GPU (our Triton kernels for GLA)."""
    num_workers: int = 0
    """Training data-loader worker processes (0 = in the main process)."""
    data_workers: int = 1
    """Processes tokenizing the corpus into shards (``prepare_corpus(workers=...)``)."""

    def __post_init__(self) -> None:
        for name, allowed in (("device", DEVICES), ("precision", PRECISIONS), ("eval_dtype", EVAL_DTYPES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"demo setting {name}={getattr(self, name)!r}: choose one of {allowed}")
        if self.gate_decay_range is not None and (len(self.gate_decay_range) != 2 or not
                                                  0 < self.gate_decay_range[0] < self.gate_decay_range[1] < 1):
            raise ValueError(f"demo setting gate_decay_range={self.gate_decay_range}: expected [d_min, d_max] with "
                             "0 < d_min < d_max < 1")
        if self.kernel_backend not in (None, "auto", "triton", "fla", "torch"):
            raise ValueError(f"demo setting kernel_backend={self.kernel_backend!r}: choose auto, triton, fla, "
                             "torch or null")
        for name in ("num_workers", "data_workers", "eval_batch_size"):
            if getattr(self, name) < (0 if name == "num_workers" else 1):
                raise ValueError(f"demo setting {name}={getattr(self, name)} is out of range")
        from statex_dist.expansion.plan import parse_layers

        try:  # a bad layer list would otherwise only fail at the StateX arm, after pre-training and LPT
            parse_layers(self.expand_layers, self.num_layers)
        except Exception as e:
            raise ValueError(f"demo setting expand_layers={self.expand_layers!r}: {e}") from None
        too_many = max([*self.eval_pairs, *self.pretrain_pairs, *self.posttrain_pairs])
        if too_many > self.mqar_keys:
            raise ValueError(f"MQAR with {too_many} pairs needs mqar_keys >= {too_many} (got {self.mqar_keys})")

    @classmethod
    def preset(cls, name: str) -> "DemoConfig":
        if name == "default":
            return cls()
        if name == "quick":
            return cls(mqar_docs=300, fact_docs=100, text_docs=50, heldout_docs=20, pretrain_steps=12,
                       posttrain_steps=6, seq_len=128, micro_batch_size=4, warmup_steps=2, eval_pairs=[4, 16],
                       eval_lengths=[128], eval_depths=[0.0, 1.0], eval_samples=4)
        raise ValueError(f"unknown demo preset {name!r}: quick or default")

    def updated(self, fields: dict) -> "DemoConfig":
        """A copy with ``fields`` replaced; unknown names are an error that lists the known ones."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown demo setting(s) {unknown}; known: {sorted(known)}")
        fields = {k: tuple(v) if isinstance(getattr(self, k), tuple) else v for k, v in fields.items()}
        # --set expand_layers=1 parses as a number: text fields keep text
        fields = {k: str(v) if isinstance(getattr(self, k), str) and isinstance(v, (int, float))
                  and not isinstance(v, bool) else v for k, v in fields.items()}
        return dataclasses.replace(self, **fields)

    def resolved_device(self) -> str:
        """``cpu`` or ``cuda`` for :attr:`device`; asking for cuda where torch sees no GPU is a clear error here,
        before any data is written, instead of a failure deep inside the trainer."""
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise RuntimeError(
                f"demo device 'cuda' but torch {torch.__version__} ({build}) sees no GPU; run on a GPU machine, "
                "or use device 'cpu' or 'auto' (e.g. `statex demo ... --set device=cpu`)")
        return self.device

    def resolved_kernel_backend(self, device: str) -> str:
        return self.kernel_backend or ("torch" if device == "cpu" else "auto")

    def scale_steps(self, factor: float) -> None:
        self.pretrain_steps = max(1, round(self.pretrain_steps * factor))
        self.posttrain_steps = max(1, round(self.posttrain_steps * factor))


# ---------------------------------------------------------------------------------------------------------
# 1. corpus
# ---------------------------------------------------------------------------------------------------------


def fact_document(rng: random.Random, sentences: list[str], names: list[str], n_facts: int, n_filler: int) -> str:
    """Filler with ``n_facts`` named codes (and sometimes a pass key), then questions answered in the text."""
    parts = rng.sample(sentences, n_filler)
    facts = [(rng.choice(names), T.random_number(rng, 6)) for _ in range(n_facts)]
    for name, value in facts:
        parts.insert(rng.randrange(len(parts) + 1), f" Note: the secret code of {name} is {value}.")
    passkey = T.random_number(rng, 5) if rng.random() < 0.5 else None
    if passkey:
        parts.insert(rng.randrange(len(parts) + 1), f" Listen carefully: the pass key is {passkey}. "
                                                    f"Say it back later: {passkey}.")
    questions = [f" Which secret code belongs to {n}? The secret code of {n} is {v}." for n, v in facts]
    if passkey:
        questions.append(f" What was the pass key? The pass key is {passkey}.")
    rng.shuffle(questions)
    return "".join(parts) + "".join(questions)


def write_corpus(cfg: DemoConfig, out: Path) -> dict[str, Path]:
    """jsonl files: ``pretrain`` (few MQAR pairs), ``posttrain`` (more pairs), ``heldout`` (for loss by position)."""
    out.mkdir(parents=True, exist_ok=True)
    vocab = T.MQARVocab(cfg.mqar_keys, cfg.mqar_values)
    sentences = T.filler_sentences(600, seed=7)
    names = T.pseudo_words(3000, syllables=3)

    def docs(seed: int, pairs: tuple[int, int], n_mqar: int, n_facts: int, n_text: int) -> list[str]:
        rng = random.Random(seed)
        out_docs = [T.mqar_text(*T.draw_mqar(rng, vocab, rng.randint(*pairs))) for _ in range(n_mqar)]
        out_docs += [fact_document(rng, sentences, names, rng.randint(1, 3), rng.randint(3, 12)) for _ in range(n_facts)]
        out_docs += ["".join(rng.sample(sentences, rng.randint(4, 16))) for _ in range(n_text)]
        rng.shuffle(out_docs)
        return out_docs

    splits = {
        "pretrain": docs(1, cfg.pretrain_pairs, cfg.mqar_docs, cfg.fact_docs, cfg.text_docs),
        "posttrain": docs(2, cfg.posttrain_pairs, cfg.mqar_docs, cfg.fact_docs, cfg.text_docs),
        "heldout": docs(3, cfg.posttrain_pairs, cfg.heldout_docs // 2, cfg.heldout_docs // 4, cfg.heldout_docs // 4),
    }
    files = {}
    for name, texts in splits.items():
        files[name] = out / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return files


# ---------------------------------------------------------------------------------------------------------
# 2-4. tokenizer, shards, training through the real trainer
# ---------------------------------------------------------------------------------------------------------


def model_json(cfg: DemoConfig, family: str, tok, path: Path, device: str = "cpu") -> Path:
    common = {"hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_layers, "vocab_size": len(tok),
              "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "bos_token_id": tok.eos_token_id,
              "kernel_backend": cfg.resolved_kernel_backend(device)}
    if family == "gla":
        raw = {"model_type": "gla", "num_heads": cfg.num_heads, "expand_k": 0.5, "expand_v": 1.0,
               "hidden_ratio": 4, "tie_word_embeddings": False, **common}
    else:
        raw = {"model_type": "mamba2", "head_dim": 16, "expand": 2, "state_size": cfg.mamba2_state_size,
               "n_groups": 1, "conv_kernel": 4, "chunk_size": 32, "tie_word_embeddings": True, **common}
    path.write_text(json.dumps(raw, indent=1))
    return path


def gate_biases(decay_range, n: int, normalizer: float):
    """Biases ``b`` so that GLA's decay ``exp(logsigmoid(b) / normalizer)`` runs from ``decay_range[0]`` to
    ``decay_range[1]`` over ``n`` channels, evenly in log time scale (``tau = -1 / ln d``)."""
    import math

    import torch

    lo, hi = decay_range
    tau = torch.logspace(math.log10(-1 / math.log(lo)), math.log10(-1 / math.log(hi)), n, dtype=torch.float64)
    a = normalizer / tau  # -normalizer * ln d = -ln sigmoid(b)
    return (-a - torch.log(-torch.expm1(-a))).float()  # logit(exp(-a)), stable for a -> 0


def initial_checkpoint(cfg: DemoConfig, family: str, config_path: Path, out: Path, seed: int) -> Path:
    """The step-0 model of pre-training, written as a checkpoint directory the trainer starts from."""
    import torch

    from statex_dist.models.loading import build_model, config_from_dict

    torch.manual_seed(seed)
    model = build_model(config_from_dict(json.loads(config_path.read_text())), device="cpu")
    model.init_weights()
    if family == "gla" and (cfg.gate_bias_init is not None or cfg.gate_decay_range):
        with torch.no_grad():
            for layer in model.model.layers:
                bias = layer.attn.gk_proj[1].bias
                if cfg.gate_decay_range:
                    bias.copy_(gate_biases(cfg.gate_decay_range, bias.numel(), layer.attn.gate_logit_normalizer))
                else:
                    bias.fill_(cfg.gate_bias_init)
    model.save_pretrained(out)
    raw = json.loads((out / "config.json").read_text())
    raw["model_type"] = family
    (out / "config.json").write_text(json.dumps(raw, indent=1))
    return out


def pretrain_settings(cfg: DemoConfig, family: str, seed: int) -> dict:
    """Everything the pre-trained base depends on (a re-run with equal settings reuses it)."""
    skip = {"out", "seeds", "families", "posttrain_pairs", "posttrain_steps", "posttrain_lr", "expand_layers",
            "eval_pairs", "eval_lengths", "eval_depths", "eval_samples", "eval_batch_size", "eval_dtype",
            "data_workers"}
    return {"family": family, "seed": seed,
            **{k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip}}


def train_config(cfg: DemoConfig, *, run_dir: Path, data_dir: Path, eos_id: int, seed: int, steps: int, lr: float,
                 model_path: Path, expand: bool, family: str, device: str | None = None):
    """The TrainConfig of one run: the same dataclasses ``statex train --config`` fills from YAML.

    ``device``: the resolved device (``cpu``/``cuda``); None = :attr:`DemoConfig.device` as written."""
    from statex_dist.data.config import DataConfig, SourceConfig
    from statex_dist.train.config import (
        CheckpointConfig, ExpandConfig, LoggingConfig, ModelConfig, OptimConfig, ParallelConfig, PrecisionConfig,
        ScheduleConfig, TrainConfig,
    )

    plan = None
    if expand:
        plan = ExpandConfig(layers=cfg.expand_layers, mode="reinit", gla_heads=1,
                            mamba2_state_size=4 * cfg.mamba2_state_size, seed=seed)
    return TrainConfig(
        model=ModelConfig(path=str(model_path), expand=plan),
        data=DataConfig(sources=[SourceConfig(kind="mds", path=str(data_dir))], seq_len=cfg.seq_len,
                        micro_batch_size=cfg.micro_batch_size, packing="pad", reset_state_at_docs=True,
                        shuffle_buffer=1000, seed=seed, num_workers=cfg.num_workers, eos_id=eos_id),
        run_dir=str(run_dir), seed=seed, steps=steps, global_batch_tokens=cfg.seq_len * cfg.micro_batch_size,
        optim=OptimConfig(lr=lr, weight_decay=0.1, grad_clip=1.0),
        schedule=ScheduleConfig(kind="cosine", warmup_steps=cfg.warmup_steps, min_lr_ratio=0.1),
        parallel=ParallelConfig(backend="single"), precision=PrecisionConfig(mode=cfg.precision),
        checkpoint=CheckpointConfig(interval=0, keep_last=1),
        logging=LoggingConfig(interval=max(1, steps // 10), tensorboard=False, progress_bar=True),
        device=device or cfg.device,
    )


def train_and_export(tcfg, export_dir: Path, tokenizer_dir: Path) -> Path:
    from statex_dist.checkpoint.export import export_checkpoint
    from statex_dist.models.loading import copy_tokenizer_files
    from statex_dist.train.api import run_training

    run_dir = run_training(tcfg)
    export_checkpoint(run_dir, export_dir, overwrite=True)
    copy_tokenizer_files(tokenizer_dir, export_dir)
    return export_dir


# ---------------------------------------------------------------------------------------------------------
# 5. evaluation and report
# ---------------------------------------------------------------------------------------------------------


def eval_config(cfg: DemoConfig, heldout: Path, device: str | None = None):
    """``device``: the resolved device (``cpu``/``cuda``); None = resolve :attr:`DemoConfig.device` now."""
    from statex_dist.eval.runner import EvalConfig

    return EvalConfig(tasks=["mqar", "niah", "passkey", "ppl"], lengths=cfg.eval_lengths, depths=cfg.eval_depths,
                      samples=cfg.eval_samples, mqar_pairs=cfg.eval_pairs, mqar_keys=cfg.mqar_keys,
                      mqar_values=cfg.mqar_values, ppl_data=str(heldout), ppl_windows=4,
                      batch_size=cfg.eval_batch_size, dtype=cfg.eval_dtype,
                      device=device or cfg.resolved_device(), progress=False)


def run_demo(cfg: DemoConfig, overwrite: bool = False) -> Path:
    """Run the demo end to end; returns the run directory holding ``report.md``."""
    import torch

    from statex_dist.data.prepare import prepare_corpus
    from statex_dist.data.tokenizer import load_tokenizer, train_tokenizer
    from statex_dist.eval.report import groups_from_results, markdown_tables, write_outputs
    from statex_dist.eval.runner import evaluate_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    device = cfg.resolved_device()  # before any work: device cuda without a GPU stops here, clearly
    out = Path(cfg.out)
    if out.exists() and overwrite:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    t0 = time.time()
    timings: dict[str, float] = {}

    files = write_corpus(cfg, out / "corpus")
    tok_dir = out / "tokenizer"
    if not (tok_dir / "tokenizer.json").is_file():
        train_tokenizer([str(files["pretrain"]), str(files["posttrain"])], cfg.vocab_size, tok_dir)
    tok = load_tokenizer(tok_dir)
    shards = {}
    for name, f in files.items():
        shards[name] = out / "data" / name
        prepare_corpus(str(f), str(tok_dir), str(shards[name]), fmt="mds", shard_size=2000, progress=False,
                       workers=cfg.data_workers)
    timings["data"] = time.time() - t0
    print(f"[demo] corpus, tokenizer ({len(tok)} ids) and MDS shards ready in {timings['data']:.0f}s; "
          f"training on {device} ({cfg.precision})", flush=True)

    results = []
    for family in cfg.families:
        cfg_path = model_json(cfg, family, tok, out / f"{family}_model.json", device)
        for seed in cfg.seeds:
            base = out / f"{family}-seed{seed}"
            common = dict(data_dir=None, eos_id=tok.eos_token_id, seed=seed, family=family, device=device)
            t = time.time()
            base_dir = base / "export-base"
            stamp = json.dumps(pretrain_settings(cfg, family, seed), sort_keys=True)
            if (base_dir / "demo_pretrain.json").is_file() and (base_dir / "demo_pretrain.json").read_text() == stamp:
                # Re-running with other post-training settings: the pre-trained base is the same, keep it.
                print(f"[demo] reusing the pre-trained base {base_dir}", flush=True)
            else:
                init_dir = initial_checkpoint(cfg, family, cfg_path, base / "init", seed)
                pre = train_config(cfg, run_dir=base / "pretrain", **{**common, "data_dir": shards["pretrain"]},
                                   steps=cfg.pretrain_steps, lr=cfg.pretrain_lr, model_path=init_dir, expand=False)
                train_and_export(pre, base_dir, tok_dir)
                (base_dir / "demo_pretrain.json").write_text(stamp)
            timings[f"{family}-{seed}-pretrain"] = time.time() - t
            arms = {}
            for arm, expand in (("LPT", False), ("StateX", True)):
                shutil.rmtree(base / f"post-{arm.lower()}", ignore_errors=True)  # a post-training run starts fresh
                t = time.time()
                post = train_config(cfg, run_dir=base / f"post-{arm.lower()}",
                                    **{**common, "data_dir": shards["posttrain"]}, steps=cfg.posttrain_steps,
                                    lr=cfg.posttrain_lr, model_path=base_dir, expand=expand)
                arms[arm] = train_and_export(post, base / f"export-{arm.lower()}", tok_dir)
                timings[f"{family}-{seed}-{arm}"] = time.time() - t
            ecfg = eval_config(cfg, shards["heldout"], device)
            t = time.time()
            for label, path in (("base", base_dir), *arms.items()):
                torch.manual_seed(seed)
                r = evaluate_dir(str(path), ecfg, label=f"{family} {label}")
                r["seed"] = seed
                results.append(r)
            timings[f"{family}-{seed}-eval"] = time.time() - t
            print(f"[demo] {family} seed {seed} done ({time.time() - t0:.0f}s so far)", flush=True)
            write_outputs(results, out / "results.json")

    written = write_outputs(results, out / "results.json")
    table = markdown_tables(groups_from_results(results))
    report = render_report(cfg, results, table, timings, time.time() - t0, written)
    (out / "report.md").write_text(report)
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    print(table)
    print(f"[demo] report: {out / 'report.md'}; plots: " + ", ".join(str(p) for k, p in written.items()
                                                                    if str(p).endswith(".png")))
    return out


# Packages whose versions the report names: the figures moved once with nothing but the installed versions changed
# (docs/benchmarks.md, 2026-11-30 twelfth round), and the report is what makes such a move traceable.
REPORTED_PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "safetensors", "streaming-community",
                     "flash-linear-attention")


def software_versions() -> str:
    import platform
    from importlib import metadata

    found = [f"Python {platform.python_version()}"]
    for name in REPORTED_PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def render_report(cfg: DemoConfig, results: list[dict], table: str, timings: dict, total: float, written: dict,
                  sources: list[Path] | None = None) -> str:
    from statex_dist.eval.report import groups_from_results

    groups = groups_from_results(results)
    lines = ["# StateX demo report", "",
             f"Seeds {cfg.seeds}; families {cfg.families}; "
             + (f"pooled from {len(sources)} runs ({', '.join(str(p) for p in sources)})." if sources
                else f"total {total / 60:.1f} min on this machine."), "",
             "## Setup", "",
             f"- model: {cfg.num_layers}-layer, hidden {cfg.hidden_size}; "
             + "; ".join(f"GLA with {cfg.num_heads} heads (StateX merges layers `{cfg.expand_layers}` to 1 head, "
                         f"re-initialised: state x{cfg.num_heads} there)" if f == "gla" else
                         f"Mamba2 with d_state {cfg.mamba2_state_size} (StateX grows layers `{cfg.expand_layers}` to "
                         f"d_state {4 * cfg.mamba2_state_size}, B/C/A/dt re-initialised)" for f in cfg.families),
             f"- pre-training: {cfg.pretrain_steps} steps, MQAR with {cfg.pretrain_pairs[0]}-{cfg.pretrain_pairs[1]} "
             f"pairs plus text with facts; post-training (both arms, same data/steps/seed): {cfg.posttrain_steps} "
             f"steps, MQAR with {cfg.posttrain_pairs[0]}-{cfg.posttrain_pairs[1]} pairs plus text",
             f"- batch {cfg.micro_batch_size} x {cfg.seq_len} tokens; LR {cfg.pretrain_lr} / {cfg.posttrain_lr}, cosine; "
             f"device {cfg.device}, precision {cfg.precision}",
             f"- MQAR: {cfg.mqar_keys} keys, {cfg.mqar_values} values (chance {100 / cfg.mqar_values:.1f}%), "
             f"{cfg.eval_samples} sequences per pair count, every pair queried",
             f"- software: {software_versions()}", "",
             "## Results", "", table, "## Verdict", ""]
    mq = {label: [r["tasks"]["mqar"]["accuracy"] for r in rs] for label, rs in groups.items()}
    for family in cfg.families:
        lpt, sx = mq.get(f"{family} LPT"), mq.get(f"{family} StateX")
        if not lpt or not sx:
            continue
        wins = sum(s > l for s, l in zip(sx, lpt))
        diff = [s - l for s, l in zip(sx, lpt)]
        mean = sum(diff) / len(diff)
        verdict = ("StateX beats LPT" if wins == len(diff) and mean > 0 else
                   "StateX does not beat LPT" if mean <= 0 else "mixed: StateX ahead on average, not in every seed")
        lines.append(f"- {family}: mean MQAR accuracy StateX - LPT = {100 * mean:+.1f} points "
                     f"(per seed: {', '.join(f'{100 * d:+.1f}' for d in diff)}); {verdict}.")
    lines += ["", "## Files", ""] + [f"- {k}: `{Path(v).name}`" for k, v in written.items()]
    lines += ["", "## Time", ""] + [f"- {k}: {v:.0f}s" for k, v in timings.items()]
    return "\n".join(lines) + "\n"


def combine_runs(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Pool the results of several demo runs (e.g. one seed per process) into one report with the spread."""
    from statex_dist.eval.report import groups_from_results, load_results, markdown_tables, write_outputs

    run_dirs = [Path(d) for d in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DemoConfig().updated({k: v for k, v in json.loads((run_dirs[0] / "demo_config.json").read_text()).items()})
    results = load_results([str(d / "results.json") for d in run_dirs])
    cfg.seeds = sorted({r.get("seed") for r in results})
    timings: dict[str, float] = {}
    for d in run_dirs:
        if (d / "timings.json").is_file():
            timings.update(json.loads((d / "timings.json").read_text()))
    written = write_outputs(results, out / "results.json")
    table = markdown_tables(groups_from_results(results))
    total = sum(timings.values())
    report = render_report(cfg, results, table, timings, total, written, sources=run_dirs)
    (out / "report.md").write_text(report)
    print(table)
    return out
