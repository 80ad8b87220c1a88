"""The `--set` grammar, parsed once: `MODEL.KEY=VALUE` (a hyperparameter, or a training setting of every
stage) or `MODEL.STAGE.KEY=VALUE` (a training setting of one stage)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from segbench.errors import SegbenchError

EXAMPLE = "diff-add.sampling_steps=25"


@dataclass(frozen=True)
class SetKey:
    """A key of one model's `--set`: `setting` of the model (`stage` "") or of its stage `stage`."""

    stage: str
    setting: str

    @classmethod
    def of(cls, text: str) -> SetKey:
        """"sampling_steps" -> SetKey("", "sampling_steps"); "ddpm.steps" -> SetKey("ddpm", "steps")."""
        stage, _, setting = text.rpartition(".")
        return cls(stage, setting)

    def __str__(self) -> str:
        return f"{self.stage}.{self.setting}" if self.stage else self.setting


ModelSets = Mapping[SetKey, str]


def parse_sets(items: Sequence[str], model_names: Sequence[str]) -> dict[str, dict[SetKey, str]]:
    """`["diff-add.sampling_steps=25", "ddpm-features.ddpm.steps=9"]` ->
    {"diff-add": {SetKey("", "sampling_steps"): "25"}, "ddpm-features": {SetKey("ddpm", "steps"): "9"}}.
    The model is the longest name of `model_names` the target starts with (a name may hold dots)."""
    out: dict[str, dict[SetKey, str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        model = max((name for name in model_names if target.startswith(f"{name}.")), key=len, default=None)
        key = target[len(model) + 1:] if model else target.partition(".")[2]
        if not sep or not key or key.startswith(".") or key.endswith(".") or key.count(".") > 1:
            raise SegbenchError(f"--set {item!r} is not of the form MODEL.KEY=VALUE or MODEL.STAGE.KEY=VALUE "
                                f"(e.g. {EXAMPLE})")
        if model is None:
            named = target.partition(".")[0]
            raise SegbenchError(f"--set {item!r} names model {named!r}, which is not in --models "
                                f"({', '.join(model_names)})")
        out.setdefault(model, {})[SetKey.of(key)] = value
    return out
