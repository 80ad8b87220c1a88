"""A trained model of a finished run, loaded back: the run's own hyperparameters (with overrides, e.g.
another sampler) and its EMA weights from the run's checkpoint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from segbench.errors import SegbenchError
from segbench.plan.build import replan_model
from segbench.plan.run_plan import ModelPlan
from segbench.plan.sets import ModelSets
from segbench.plugins import Registry
from segbench.results.record import RunRecord, read_models, read_record
from segbench.results.store import final_checkpoint
from segbench.selection import BEST
from segbench.specs import SINGLE_STAGE, Stage


def load_weights(network: Any, run_dir: Path, model: str, stages: Sequence[Stage] = SINGLE_STAGE) -> None:
    """Load what `run_dir` evaluated for `model` (trained in `stages`; the EMA's weights where its last stage
    kept one, its best.pt where that stage selected its weights by validation Dice) into `network`; a model
    that did not finish, or a network the checkpoint does not fit, is a clear error."""
    from segbench.io.checkpoints import load_checkpoint

    run_dir = Path(run_dir)
    status = read_models(run_dir).get(model)
    checkpoint = run_dir / final_checkpoint(model, stages)
    if status is not None and status.stages and status.stages[-1].selection is not None:
        checkpoint = checkpoint.with_name(BEST)
    if status is None or not status.done or not checkpoint.is_file():
        raise SegbenchError(f"model {model!r} of {run_dir} did not finish ({checkpoint} is missing or the model is "
                            "not done); finish the run with --resume first")
    saved = load_checkpoint(checkpoint)
    try:
        network.load_state_dict({**saved["model"], **saved["ema"]})
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise SegbenchError(f"the checkpoint of {model!r} in {run_dir} does not fit the network these hyperparameters "
                            f"build ({first}); only settings that change how a model samples can differ") from None


def load_trained(run_dir: str | Path, model: str, registry: Registry,
                 sets: ModelSets | Mapping[str, str] | None = None) -> tuple[Any, ModelPlan, RunRecord]:
    """(the model in eval mode, its plan with `sets` applied, the run's record) for `model` of `run_dir`.

    `sets` are `--set` overrides as text (e.g. {"sampler": "dpmpp2m"}, or parsed by `segbench.plan.sets`): they
    may change how the model
    samples, not what was trained.
    """
    record = read_record(Path(run_dir))
    spec = registry.model(model)
    plan = replan_model(spec, record.plan.model(model), record.plan.data.image_size, dict(sets or {}))
    network = spec.factory(plan.factory_input(record.plan.data.image_size))
    load_weights(network, Path(run_dir), model, spec.stages)
    return network.eval(), plan, record
