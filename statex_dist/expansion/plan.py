"""A StateX expansion plan: which layers, what new geometry, how the touched parameters start. Pure data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Mode = Literal["reinit", "inherit", "preserve"]
MODES = ("reinit", "inherit", "preserve")


class ExpansionError(ValueError):
    """An expansion request that cannot be carried out; the message says which part and why."""


def parse_layers(spec: str | list[int] | None, num_layers: int) -> list[int]:
    """``every:K`` (layers 0, K, 2K, ... as in the paper), ``all``, ``none``, or ``0,6,12,18``."""
    if spec is None or spec == "none" or spec == []:
        return []
    if isinstance(spec, list):
        layers = [int(x) for x in spec]
    elif spec == "all":
        layers = list(range(num_layers))
    elif spec.startswith("every:"):
        try:
            step = int(spec.split(":", 1)[1])
        except ValueError as e:
            raise ExpansionError(f"layers {spec!r}: 'every:K' needs an integer K") from e
        if step < 1:
            raise ExpansionError(f"layers {spec!r}: K must be at least 1")
        layers = list(range(0, num_layers, step))
    else:
        try:
            layers = [int(x) for x in spec.split(",") if x.strip()]
        except ValueError as e:
            raise ExpansionError(f"layers {spec!r}: expected every:K, all, none or a comma list of indices") from e
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise ExpansionError(f"layer index {bad} out of range: the model has {num_layers} layers (0..{num_layers - 1})")
    if len(set(layers)) != len(layers):
        raise ExpansionError(f"layers {spec!r} lists a layer twice")
    return sorted(layers)


@dataclass
class ExpansionPlan:
    """What ``statex expand`` does. ``layers`` may be a spec string until :meth:`resolve` fixes it."""

    layers: list[int] | str = "every:6"
    mode: Mode = "reinit"
    gla_heads: int = 1
    """GLA: heads of an expanded layer (the paper merges 4 -> 1)."""
    mamba2_state_size: int = 512
    """Mamba2: d_state of an expanded layer (the paper grows 128 -> 512)."""
    seed: int = 0
    """Seeds the fresh parameters; each layer draws from its own generator (see ``layer_generator``)."""
    source: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ExpansionError(f"mode {self.mode!r}: expected one of {MODES}")
        if self.gla_heads < 1:
            raise ExpansionError(f"gla_heads must be >= 1, got {self.gla_heads}")
        if self.mamba2_state_size < 1:
            raise ExpansionError(f"mamba2_state_size must be >= 1, got {self.mamba2_state_size}")

    def resolve(self, num_layers: int) -> "ExpansionPlan":
        return ExpansionPlan(
            layers=parse_layers(self.layers, num_layers), mode=self.mode, gla_heads=self.gla_heads,
            mamba2_state_size=self.mamba2_state_size, seed=self.seed, source=self.source,
        )

    def record(self, family: str) -> dict:
        """The ``statex`` entry written into config.json."""
        rec = asdict(self)
        if family == "gla":
            rec.pop("mamba2_state_size")
        else:
            rec.pop("gla_heads")
        return rec
