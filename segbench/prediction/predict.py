"""`segbench predict RUN_DIR --model M INPUT... --out DIR`: the run's trained (EMA) model on image files.

Each image is read and resized as the run's dataset was (`segbench.data.images.read_image`,
`segbench.data.resize.resize_image`) and predicted as the run evaluated (`predict_split`: the run's seed,
per-sample seeds from the sample id, ensemble size and fusion, threshold, batch shape and precision), so a run's own
test image gets the run's probabilities. Written to DIR: per input the files of `outputs`, the
probabilities at the run's image size in `predictions/<model>.npz` (as a run stores them), and index.csv.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segbench.data.prepare import SplitData
from segbench.data.images import read_image
from segbench.data.resize import resize_image
from segbench.engine.device import Runtime, resolve_device
from segbench.engine.evaluation import predict_split
from segbench.errors import SegbenchError
from segbench.io import atomic_write_text
from segbench.plan.build import refuse_stage_sets, refuse_training_sets
from segbench.plan.request import check_counts, check_fusion
from segbench.plan.run_plan import EvaluationPlan
from segbench.plan.sets import parse_sets
from segbench.plugins import Registry
from segbench.prediction.inputs import InputImage, collect
from segbench.prediction.outputs import write_outputs
from segbench.progress import Progress
from segbench.results import RunStore
from segbench.results.trained import load_trained

INDEX_FILE = "index.csv"
INDEX_COLUMNS = ("sample_id", "input", "width", "height", "status", "foreground", "mask", "probability",
                 "uncertainty", "overlay")


@dataclass(frozen=True)
class PredictRequest:
    """What `segbench predict` was asked for; None keeps the run's own setting."""

    run_dir: str
    model: str
    inputs: list[str]
    out: str
    ids_relative_to: str | None = None
    sets: list[str] = field(default_factory=list)  # MODEL.KEY=VALUE, sampling hyperparameters only
    ensemble: int | None = None
    fusion: str | None = None
    batch_size: int | None = None
    device: str = "auto"


@dataclass(frozen=True)
class PredictOutcome:
    """How many inputs were written, one line per input that was not, and the index file."""

    written: int
    problems: list[str]
    index: Path


def predict(request: PredictRequest, registry: Registry, progress: Progress) -> PredictOutcome:
    """Predict every input that can be read; an unreadable one is a problem line, the others are written.
    A missing run, a model it did not finish, or no readable input at all is a SegbenchError."""
    check_counts(("--ensemble", request.ensemble), ("--batch-size", request.batch_size))
    sets = parse_sets(request.sets, [request.model]).get(request.model, {})
    refuse_training_sets(request.model, sets, "predict")
    network, _, record = load_trained(request.run_dir, request.model, registry, sets)
    spec = registry.model(request.model)
    refuse_stage_sets(spec, request.model, sets, "predict")
    run = record.plan
    device = resolve_device(request.device)
    evaluation = EvaluationPlan(None, request.batch_size or run.evaluation.batch_size,
                                request.ensemble or run.evaluation.ensemble, run.evaluation.threshold,
                                fusion=request.fusion or run.evaluation.fusion)
    check_fusion(evaluation.fusion, evaluation.ensemble, [spec])
    inputs, problems = collect(request.inputs, request.ids_relative_to)
    rows = {item.sample_id: {"sample_id": item.sample_id, "input": str(item.path)} for item in inputs}
    images = _read(inputs, rows, problems)
    readable = [item for item in inputs if item.sample_id in images]
    if not readable:
        raise SegbenchError(f"none of the inputs could be read ({len(problems)} problems, the first: "
                            f"{problems[0] if problems else 'no input given'})")
    size = run.data.image_size
    data = SplitData([item.sample_id for item in readable],
                     np.stack([resize_image(images[item.sample_id], size) for item in readable]),
                     np.zeros((len(readable), size, size), np.uint8))  # no reference masks: nothing is scored
    with progress.task(f"{request.model} predict", total=len(data) * evaluation.ensemble) as bar:
        predictions = predict_split(network, data, evaluation, run_seed=run.seed,
                                    runtime=Runtime(device, run.precision), model_name=request.model,
                                    on_batch=lambda done, total: bar.step(done), paper_fusion=spec.fusion)
    out = Path(request.out)
    probabilities = predictions.probabilities[:, 0].numpy()
    uncertainty = None if predictions.uncertainty is None else predictions.uncertainty[:, 0].numpy()
    with progress.task("writing", total=len(readable)) as bar:
        for i, item in enumerate(readable):
            image = images[item.sample_id]
            files = write_outputs(out, item.sample_id, image, probabilities[i],
                                  None if uncertainty is None else uncertainty[i], evaluation.threshold)
            rows[item.sample_id].update(files, status="done", width=image.shape[1], height=image.shape[0])
            bar.step(i + 1)
    RunStore(out).write_predictions(request.model, data.ids, probabilities, uncertainty, evaluation.threshold)
    index = out / INDEX_FILE
    atomic_write_text(index, _index_text([rows[item.sample_id] for item in inputs]))
    return PredictOutcome(len(readable), problems, index)


def _read(inputs: list[InputImage], rows: dict[str, dict[str, object]], problems: list[str]) -> dict[str, np.ndarray]:
    """Each input's image as the datasets read it, by id; one that cannot be read is a problem line and
    its index row says so."""
    images = {}
    for item in inputs:
        try:
            images[item.sample_id] = read_image(item.path)
        except SegbenchError as exc:
            problems.append(str(exc))
            rows[item.sample_id]["status"] = f"failed: {exc}"
    return images


def _index_text(rows: list[dict[str, object]]) -> str:
    """index.csv: one row per input in id order; files relative to the output folder, empty where none."""
    text = io.StringIO()
    writer = csv.DictWriter(text, INDEX_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
