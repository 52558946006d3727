"""The trainer: wiring in ``__init__``, the loop in ``train()``, one optimizer step in ``train_step()``.

Wiring order: process group -> which checkpoint to resume (if any) -> model on meta (+ StateX plan, or the
saved expanded config when resuming) -> parallelize + materialise + load weights -> optimizer -> data loader ->
restore the checkpoint -> signal handlers. Stop requests (SIGUSR1, SIGTERM, or a ``STOP`` file in the run
directory) are agreed on by all ranks at a step boundary: the trainer saves a checkpoint, writes ``REQUEUE``
in the run directory and exits with :data:`EXIT_REQUEUE`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from pathlib import Path

import torch

from statex_dist.checkpoint import manager
from statex_dist.checkpoint.state_io import (
    convert_deepspeed_to_universal,
    load_engine,
    load_rank_states,
    save_engine,
    save_rank_state,
    set_rng_state,
)
from statex_dist.config.io import dump_yaml, to_dict
from statex_dist.models.loading import build_model
from statex_dist.parallel.dist import (
    all_reduce_max,
    all_reduce_sum,
    barrier,
    broadcast_object,
    destroy_distributed,
    init_distributed,
)
from statex_dist.parallel.engine import build_engine
from statex_dist.parallel.materialize import DictSource, SafetensorsSource, model_configs, random_init_state
from statex_dist.train.collector import GarbageCollection
from statex_dist.train.config import TrainConfig, accumulation_steps
from statex_dist.train.data import build_train_loader, target_tokens
from statex_dist.train.metrics import MetricsSink, device_peak_tflops, flops_per_token, peak_memory_gib
from statex_dist.train.nonfinite import first_nonfinite_module
from statex_dist.train.optim import group_lr
from statex_dist.train.profiling import StepProfiler

log = logging.getLogger("statex.train")
EXIT_OK = 0
EXIT_REQUEUE = 75  # EX_TEMPFAIL: checkpointed on request; run again (Slurm: scontrol requeue) to continue
STOP_FILE = "STOP"
REQUEUE_FILE = "REQUEUE"


class NonFiniteError(RuntimeError):
    """Too many consecutive steps with a non-finite loss or gradient norm."""


class DataExhausted(RuntimeError):
    pass


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.info = init_distributed(cfg.parallel.backend, cfg.device, cfg.parallel.dist_timeout_s)
        self.is_main = self.info.is_main
        _setup_logging(self.is_main)
        torch.manual_seed(cfg.seed)
        self.ckpt_root = self.run_dir / "checkpoints"
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            manager.clean_temp_dirs(self.ckpt_root)
        resume = None
        if cfg.checkpoint.resume and self.is_main:
            found = manager.find_resume_checkpoint(self.ckpt_root)
            resume = str(found) if found else None
        resume = broadcast_object(resume)
        self.resume_from = Path(resume) if resume else None
        saved = json.loads((self.resume_from / "model_config.json").read_text()) if resume else None
        self.base_config, self.model_config, self.plan = model_configs(cfg.model, cfg.seed, saved)
        self.accum = accumulation_steps(cfg, self.info.world)

        manifest = manager.read_manifest(self.resume_from) if resume else None
        universal = False
        if manifest and cfg.parallel.backend == "deepspeed" and manifest["world"] != self.info.world:
            # DeepSpeed's own shards only load at the world size that wrote them.
            if self.is_main:
                log.info("resuming DeepSpeed at world %d from world %d: converting to a universal checkpoint",
                         self.info.world, manifest["world"])
                convert_deepspeed_to_universal(self.resume_from)
            barrier()
            universal = True
        source = None
        if not resume:
            source = (SafetensorsSource(cfg.model.path) if cfg.model.path
                      else DictSource(random_init_state(self.base_config, cfg.seed)))
        model = build_model(self.model_config, device="meta")
        self.num_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
        self.engine = build_engine(cfg, self.info, model, self.base_config, self.model_config, self.plan, source,
                                   resuming=resume is not None, accum=self.accum, ds_universal=universal)
        del source
        self.loader = build_train_loader(cfg.data, self.info.rank, self.info.world, self.model_config.vocab_size)
        self.step, self.tokens_seen, self.bad_in_row, self.bad_total = 0, 0, 0, 0
        self.nonfinite_at: str | None = None  # where the last streak of non-finite losses started (a module name)
        _nan_fault_injection(self.engine.model)
        if self.resume_from is not None:
            self._restore(self.resume_from, manifest, universal)
        self._signal: int | None = None
        self._pending = None  # an async save waiting to be published
        self._last_saved = self.step if self.resume_from is not None else -1
        if self.is_main:
            dump_yaml(cfg, self.run_dir / "resolved.yaml")
            (self.run_dir / REQUEUE_FILE).unlink(missing_ok=True)
        fpt = flops_per_token(self.model_config, self.num_params, cfg.data.seq_len)
        self.flops_per_token, self.peak_tflops = fpt, device_peak_tflops(cfg.logging.peak_tflops, self.info.device)
        self.sink = MetricsSink(self.run_dir, cfg.logging, cfg.steps, self.is_main, to_dict(cfg))
        self.profiler = StepProfiler(cfg.profiling, self.run_dir, self.info.rank, self.info.device)
        if self.is_main:
            log.info("backend %s, world %d, accumulation %d, %s parameters, start at step %d%s",
                     cfg.parallel.backend, self.info.world, self.accum, f"{self.num_params:,}", self.step,
                     f" (resumed from {self.resume_from})" if self.resume_from else "")

    # ------------------------------------------------------------------ checkpoints

    def _restore(self, ckpt: Path, manifest: dict, universal: bool) -> None:
        t0 = time.perf_counter()
        load_engine(self.engine, ckpt, universal=universal)
        state = json.loads((ckpt / "train_state.json").read_text())
        self.step, self.tokens_seen = state["step"], state["tokens_seen"]
        self.bad_in_row, self.bad_total = state["bad_in_row"], state["bad_total"]
        ranks = load_rank_states(ckpt, manifest["world"])
        if manifest["world"] == self.info.world:
            mine = ranks[self.info.rank]
            if self.cfg.checkpoint.load_data_state:
                self.loader.load_state_dict(mine["data"])
            set_rng_state(mine["rng"])
        elif self.cfg.checkpoint.load_data_state:
            # Another number of ranks: the data layer re-deals the unread documents of all old ranks.
            self.loader.load_state_dict({"ranks": [r["data"] for r in ranks]})
        barrier()
        if self.is_main:
            log.info("loaded checkpoint %s (world %d -> %d) in %.1f s", ckpt.name, manifest["world"], self.info.world,
                     time.perf_counter() - t0)

    def save(self) -> None:
        cfg = self.cfg
        self._finish_pending()
        started = time.perf_counter()
        if self.is_main:
            tmp = manager.new_temp_dir(self.ckpt_root, self.step)
        barrier()
        tmp = self.ckpt_root / f".tmp-{manager.step_dir_name(self.step)}"
        future = save_engine(self.engine, tmp, async_save=cfg.checkpoint.async_save and self.engine.backend != "deepspeed")
        save_rank_state(tmp, self.info.rank, self.loader.state_dict())
        meta = {"step": self.step, "tokens_seen": self.tokens_seen, "bad_in_row": self.bad_in_row,
                "bad_total": self.bad_total}
        self._pending = (future, tmp, meta, started)
        self._last_saved = self.step
        if future is None:
            self._finish_pending()

    def _finish_pending(self) -> None:
        if self._pending is None:
            return
        future, tmp, meta, started = self._pending
        self._pending = None
        if future is not None:
            future.result()
        barrier()
        if self.is_main:
            (tmp / "train_state.json").write_text(json.dumps(meta))
            (tmp / "model_config.json").write_text(json.dumps(self.model_config.to_dict(), indent=1))
            dump_yaml(self.cfg, tmp / "train_config.yaml")
            final = manager.publish(tmp, self.ckpt_root, meta["step"],
                                    {"world": self.info.world, "backend": self.engine.backend,
                                     "tokens_seen": meta["tokens_seen"]},
                                    self.cfg.checkpoint.keep_last)
            log.info("saved checkpoint %s in %.1f s", final, time.perf_counter() - started)
        barrier()

    # ------------------------------------------------------------------ signals

    def _on_signal(self, signum, frame) -> None:
        self._signal = signum

    def _install_signal_handlers(self) -> None:
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _stop_requested(self) -> bool:
        local = self._signal is not None
        if self.is_main and (self.run_dir / STOP_FILE).exists():
            local = True
        return bool(all_reduce_max([1.0 if local else 0.0], self.info.device)[0])

    # ------------------------------------------------------------------ loop

    def train(self) -> int:
        cfg = self.cfg
        self._install_signal_handlers()
        self.engine.train()
        data = iter(self.loader)
        status = EXIT_OK
        with GarbageCollection(cfg.gc_interval) as collector:
            try:
                while self.step < cfg.steps:
                    if self._stop_requested():
                        self._handle_stop()
                        return EXIT_REQUEUE
                    self.profiler.step_begins(self.step + 1)
                    t0 = time.perf_counter()
                    metrics = self.train_step(data)
                    self.step += 1
                    collector.after_step(self.step)
                    metrics["step_time_s"] = time.perf_counter() - t0
                    metrics["gc_ms"] = collector.take_ms()
                    self.profiler.step_ends(self.step)
                    if self.step % cfg.logging.interval == 0 or self.step == cfg.steps:
                        self._log(metrics)
                    if cfg.checkpoint.interval and self.step % cfg.checkpoint.interval == 0:
                        self.save()
                    _fault_injection(self.step)
            except DataExhausted as e:
                log.warning("%s; saving and stopping at step %d", e, self.step)
            finally:
                self.profiler.close(self.step)
        if cfg.checkpoint.save_at_end and self._last_saved != self.step:
            self.save()
        self._finish_pending()
        return status

    def _handle_stop(self) -> None:
        why = signal.Signals(self._signal).name if self._signal else f"{STOP_FILE} file"
        log.warning("stop requested (%s) at step %d: checkpointing, then exiting with %d", why, self.step,
                    EXIT_REQUEUE)
        if self._last_saved != self.step:
            self.save()
        self._finish_pending()
        if self.is_main:
            (self.run_dir / STOP_FILE).unlink(missing_ok=True)
            (self.run_dir / REQUEUE_FILE).write_text(f"step {self.step}\n")

    def _next_micro_batches(self, data) -> list[dict]:
        batches = []
        for _ in range(self.accum):
            try:
                batches.append(next(data))
            except StopIteration:
                raise DataExhausted("the data loader ran out of data (data.epochs is set)") from None
        return batches

    def train_step(self, data) -> dict:
        cfg, eng, dev = self.cfg, self.engine, self.info.device
        batches = self._next_micro_batches(data)
        # The loss is normalised by the number of target tokens of the whole step on all ranks, so every token
        # weighs the same whatever the packing, padding, accumulation or world size.
        num_tokens = all_reduce_sum([float(sum(target_tokens(b) for b in batches))], dev)[0]
        lrs = [group_lr(s, self.step, cfg.steps, cfg.optim, cfg.schedule) for s in eng.specs]
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        bad_micro = False
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            with eng.micro_step_context(last):
                out = self._forward(batch)
                loss = out.loss
                if eng.backend == "deepspeed":
                    # DeepSpeed cannot drop a step afterwards: keep a non-finite loss out of the gradients.
                    bad = bool(all_reduce_max([0.0 if torch.isfinite(loss).item() else 1.0], dev)[0])
                    if bad:
                        bad_micro = True
                        loss = sum(p.sum() for p in eng.model.parameters()) * 0.0
                eng.backward(loss, max(num_tokens, 1.0), self.accum)
            if eng.backend == "deepspeed" and not last:
                eng.step_micro()
            loss_sum += out.loss.detach().to(torch.float64)
        total_loss = all_reduce_sum([loss_sum.item()], dev)[0]
        mean_loss = total_loss / max(num_tokens, 1.0)
        loss_bad = bad_micro or not math.isfinite(mean_loss)
        grad_norm, stepped = eng.clip_and_step(cfg.optim.grad_clip, lrs, loss_bad)
        if stepped:
            self.bad_in_row = 0
        else:
            self.bad_in_row += 1
            self.bad_total += 1
            log.warning("step %d skipped: loss %s, grad norm %s (%d in a row, %d in total)", self.step, mean_loss,
                        grad_norm, self.bad_in_row, self.bad_total)
            if self.bad_in_row == 1 and loss_bad:
                self.nonfinite_at = self._locate_nonfinite(batches)
                log.warning("step %d: first module with a non-finite output: %s", self.step, self.nonfinite_at)
            if self.bad_in_row >= cfg.max_bad_steps:
                raise NonFiniteError(f"{self.bad_in_row} steps in a row with a non-finite loss or gradient "
                                     f"(max_bad_steps={cfg.max_bad_steps}); last loss {mean_loss}, grad norm {grad_norm}"
                                     f"; first module with a non-finite output in the first of them: "
                                     f"{self.nonfinite_at}")
        self.tokens_seen += int(num_tokens)
        metrics = {"loss": mean_loss, "grad_norm": grad_norm, "tokens": int(num_tokens), "skipped": not stepped,
                   "bad_steps_total": self.bad_total}
        for spec, lr in zip(eng.specs, lrs):
            metrics[f"lr/{spec.name}"] = lr
        return metrics

    def _forward(self, batch):
        """The model on one micro-batch, the summed token loss (normalised by the step's token count later)."""
        dev, cu = self.info.device, batch.get("cu_seqlens")
        return self.engine.module(input_ids=batch["input_ids"].to(dev), shift_labels=batch["labels"].to(dev),
                                  cu_seqlens=cu.to(dev) if cu is not None else None, loss_reduction="sum")

    def _locate_nonfinite(self, batches) -> str:
        """Re-run the step's forward passes without gradients and name the first module whose output is not
        finite. Every rank runs every micro-batch (no early exit), so sharded models stay in step."""
        found = None
        for batch in batches:
            where = first_nonfinite_module(self.engine.model, lambda batch=batch: self._forward(batch))
            found = found or where
        return found or ("none: the forward is finite when re-run (non-deterministic, e.g. a kernel reading out of "
                         "bounds: rerun with CUDA_LAUNCH_BLOCKING=1 or under compute-sanitizer; or the gradient "
                         "is at fault)")

    def _log(self, m: dict) -> None:
        dt = m["step_time_s"]
        tokens = self.cfg.global_batch_tokens
        m["tokens_per_s"] = tokens / dt
        m["tokens_per_s_per_device"] = tokens / dt / self.info.world
        m["tokens_seen"] = self.tokens_seen
        for conv in ("attn", "linear"):
            tflops = self.flops_per_token[conv] * m["tokens_per_s_per_device"] / 1e12
            m[f"tflops_{conv}"] = tflops
            m[f"mfu_{conv}"] = tflops / self.peak_tflops if self.peak_tflops else None
        m["peak_memory_gib"] = peak_memory_gib(self.info.device)
        self.sink.log(self.step, m)

    def close(self) -> None:
        self.sink.close()
        destroy_distributed()


def _fault_injection(step: int) -> None:
    """Tests only: ``STATEX_FAULT_HANG_AFTER_STEP=N`` parks every rank after step N (and its checkpoint) so a
    test can SIGKILL the job at a known point, as a node failure would."""
    hang = os.environ.get("STATEX_FAULT_HANG_AFTER_STEP")
    if hang is not None and step == int(hang):
        log.warning("fault injection: hanging after step %d", step)
        # torchrun starts workers in sessions of their own, so killing the launcher's process group misses
        # them: a parked rank leaves as soon as its parent is gone (or after 10 minutes), never outliving the job.
        parent, deadline = os.getppid(), time.monotonic() + 600
        while os.getppid() == parent and time.monotonic() < deadline:
            time.sleep(0.1)
        os._exit(1)


def _nan_fault_injection(model) -> None:
    """Tests only: ``STATEX_FAULT_NAN_MODULE=name`` makes that submodule's output NaN on every rank (a model that
    diverges inside), to check that the trainer names it and that sharded ranks stay in step while it looks."""
    name = os.environ.get("STATEX_FAULT_NAN_MODULE")
    if name:
        log.warning("fault injection: %s outputs NaN", name)
        model.get_submodule(name).register_forward_hook(lambda mod, inp, out: out * float("nan"))


def _setup_logging(is_main: bool) -> None:
    level = logging.INFO if is_main else logging.WARNING
    logging.basicConfig(level=level, format="[statex %(asctime)s r" + os.environ.get("RANK", "0") +
                        "] %(message)s", datefmt="%H:%M:%S", force=True)
