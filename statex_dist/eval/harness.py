"""lm-evaluation-harness adapter: run any ``lm_eval`` task on our checkpoints (base, LPT, StateX).

Three ways in:

* ``statex eval --model DIR --tasks lm_eval:hellaswag,piqa`` (this module's :func:`run_lm_eval`);
* ``python -m statex_dist.eval.harness --model statex --model_args pretrained=DIR --tasks ...``: lm_eval's own
  CLI with our model registered under the name ``statex``;
* Python: ``lm_eval.simple_evaluate(model=StateXLM(pretrained=DIR), tasks=[...])``.

The adapter implements the three request types of ``lm_eval.api.model.LM`` itself. A recurrent model has no
context window, so ``loglikelihood_rolling`` scores each document in one pass (every token sees the whole
document) instead of lm_eval's overlapping windows; ``max_length`` only truncates very long contexts from the
left for ``loglikelihood`` and ``generate_until``. Datasets are whatever lm_eval loads: without Hub access the
user points the task YAMLs at local copies (the recall tasks SWDE/FDA need the user's data).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from statex_dist.eval.scoring import final_hidden, length_batches

try:  # lm_eval is an optional dependency: `pip install lm-eval`
    from lm_eval.api.model import LM as _LMBase
except ImportError:  # pragma: no cover - exercised only without lm_eval
    _LMBase = object

_REGISTERED = False


class StateXLM(_LMBase):
    """``lm_eval`` model over a statex/fla checkpoint directory or an in-memory model + tokenizer."""

    def __init__(self, pretrained=None, tokenizer=None, model=None, batch_size: int | str = 8,
                 max_length: int = 65536, max_gen_toks: int = 256, device: str = "cpu", dtype: str = "float32",
                 **_ignored):
        if _LMBase is object:
            raise ImportError("the lm-evaluation-harness adapter needs `pip install lm-eval`")
        super().__init__()
        if model is None:
            from statex_dist.eval.runner import load_for_eval

            if pretrained is None:
                raise ValueError("StateXLM needs pretrained=DIR (or model= and tokenizer=)")
            model, tok = load_for_eval(pretrained, tokenizer if isinstance(tokenizer, str) else None, dtype, device)
            tokenizer = tok if tokenizer is None or isinstance(tokenizer, str) else tokenizer
        elif tokenizer is None or isinstance(tokenizer, str):
            from statex_dist.data.tokenizer import load_tokenizer

            tokenizer = load_tokenizer(tokenizer or pretrained)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 8
        self.max_length = int(max_length)
        self.max_gen_toks = int(max_gen_toks)
        self.eot_token_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eot_token_id

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "statex")).replace("/", "__")

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    # ---- scoring ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def _score(self, rows: list[tuple[list[int], int]]) -> list[tuple[float, bool]]:
        """rows: (ids, n) -> sum of log p over the last n tokens of ids, and whether all are argmax."""
        out: list[tuple[float, bool] | None] = [None] * len(rows)
        for idx in length_batches([len(r[0]) for r in rows], self.batch_size, self.max_length * self.batch_size):
            width = max(len(rows[i][0]) for i in idx)
            ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            for j, i in enumerate(idx):
                ids[j, : len(rows[i][0])] = torch.tensor(rows[i][0])
            hidden, head = final_hidden(self.model, ids.to(self.device))
            for j, i in enumerate(idx):
                seq, n = rows[i]
                pos = torch.arange(len(seq) - n - 1, len(seq) - 1, device=hidden.device)
                logp = F.log_softmax(head(hidden[j, pos]).float(), dim=-1)
                target = torch.tensor(seq[len(seq) - n:], device=hidden.device)
                total = float(logp.gather(-1, target[:, None]).sum())
                out[i] = (total, bool((logp.argmax(-1) == target).all()))
        return out  # type: ignore[return-value]

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        rows = []
        for req in requests:
            context, continuation = req.args[0], req.args[1]
            ctx, cont = self._encode(context), self._encode(continuation)
            if not ctx:
                ctx = [self.eot_token_id]  # an empty context is conditioned on EOS, as lm_eval expects
            if not cont:
                raise ValueError(f"empty continuation for context {context[-40:]!r}")
            seq = (ctx + cont)[-(self.max_length + 1):]
            rows.append((seq, min(len(cont), len(seq) - 1)))
        return self._score(rows)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        rows = []
        for req in requests:
            ids = self._encode(req.args[0])
            rows.append(([self.eot_token_id] + ids, len(ids)))
        return [lp for lp, _ in self._score(rows)] if rows else []

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out = []
        for req in requests:
            context, kwargs = req.args[0], dict(req.args[1] or {})
            until = kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.pop("max_gen_toks", self.max_gen_toks))
            ids = (self._encode(context) or [self.eot_token_id])[-self.max_length:]
            prompt = torch.tensor([ids], device=self.device)
            if hasattr(self.model, "greedy_generate"):
                new = self.model.greedy_generate(prompt, max_new, eos_token_id=self.eot_token_id)[0].tolist()
            else:
                new = self.model.generate(prompt, max_new_tokens=max_new, do_sample=False)[0, len(ids):].tolist()
            if self.eot_token_id in new:
                new = new[: new.index(self.eot_token_id)]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            for stop in until:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            out.append(text)
        return out


def register() -> None:
    """Register :class:`StateXLM` with lm_eval under the name ``statex`` (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from lm_eval.api.registry import register_model

    register_model("statex")(StateXLM)
    _REGISTERED = True


def metrics_from_results(results: dict) -> dict[str, dict[str, float]]:
    """lm_eval's ``results`` section -> ``{task: {metric: value}}`` (numbers only, no stderr)."""
    out: dict[str, dict[str, float]] = {}
    for task, values in (results or {}).get("results", {}).items():
        for key, value in values.items():
            if "stderr" in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            out.setdefault(task, {})[key.split(",")[0]] = float(value)
    return out


def run_lm_eval(model, tokenizer, tasks: list[str], batch_size: int = 8, limit: int | float | None = None,
                num_fewshot: int | None = None, include_path: str | None = None,
                include_defaults: bool = True) -> dict:
    """Run lm_eval tasks on an in-memory model; returns ``{"tasks": [...], "metrics": {...}}``.

    ``include_path`` adds a folder of task YAMLs (e.g. local copies of SWDE/FDA); ``include_defaults=False``
    skips indexing lm_eval's built-in tasks (much faster when only local tasks run)."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as e:
        raise ImportError("lm_eval tasks need the harness: pip install lm-eval") from e
    lm = StateXLM(model=model, tokenizer=tokenizer, batch_size=batch_size)
    manager = (TaskManager(include_path=include_path, include_defaults=include_defaults)
               if include_path or not include_defaults else None)
    res = lm_eval.simple_evaluate(model=lm, tasks=tasks, num_fewshot=num_fewshot, limit=limit,
                                  task_manager=manager, log_samples=False, bootstrap_iters=0)
    return {"tasks": tasks, "metrics": metrics_from_results(res)}


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - thin wrapper over lm_eval's CLI
    import sys

    register()
    from lm_eval.__main__ import cli_evaluate

    sys.argv = [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]
    cli_evaluate()


if __name__ == "__main__":  # pragma: no cover
    main()
