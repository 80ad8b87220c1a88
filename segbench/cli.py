"""The `segbench` command line (Typer). Every user error is one line on stderr, never a traceback."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from segbench.engine.stopping import REQUEST as STOP_REQUEST
from segbench.engine.stopping import Stopped, stop_on_signals
from segbench.errors import SegbenchError, unknown
from segbench.plugins import Registry, load_plugins
from segbench.reports.console import print_table
from segbench.specs import DatasetSpec

# Typer's parse errors derive from click's UsageError (from the click that Typer >= 0.17 vendors, else click)
USAGE_ERROR: type[Exception] = typer.BadParameter.__mro__[1]
app = typer.Typer(
    help="Compare image segmenters (diffusion and U-Net) under one fixed-seed protocol.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
_state: dict = {"debug": False, "registry": None}

LIST_KINDS = ("models", "datasets", "metrics", "formats", "trackers")


def _say(label: str, style: str, message: str) -> None:
    """One line on stderr; the message is printed verbatim (no rich markup)."""
    err.print(Text.assemble((label, style), ": ", message), soft_wrap=True)


def _names(text: str | None) -> list[str]:
    """A comma-separated option's names ("a, b" -> ["a", "b"]); None gives none."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def registry() -> Registry:
    """The plugins, loaded once per invocation; load failures are reported once."""
    if _state["registry"] is None:
        _state["registry"] = load_plugins(_state.get("plugins", ()))
        if _state.get("warn_failures", True):
            for failed in _state["registry"].failures:
                _say("warning", "yellow", f"plugin {failed.name!r} failed: {failed.error} (see `segbench plugins`)")
    return _state["registry"]


@app.callback()
def main_options(
    plugin: Annotated[Optional[list[str]], typer.Option("--plugin", help="Import MODULE as a plugin (repeatable).",
                                                        metavar="MODULE")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
) -> None:
    _state.update(plugins=tuple(plugin or ()), debug=debug, registry=None, warn_failures=True)


@app.command("list")
def list_(kind: Annotated[str, typer.Argument(help="models, datasets, metrics, formats or trackers")] = "models") -> None:
    """List registered models, datasets, metrics, formats or trackers, each with its plugin."""
    if kind not in LIST_KINDS:
        raise unknown("list kind", kind, LIST_KINDS)
    reg = registry()
    specs = [reg.specs[kind][n] for n in reg.names(kind)]
    table = Table(box=None, header_style="bold")
    if kind == "models":
        for col in ("model", "family", "plugin", "description"):
            table.add_column(col)
        for s in specs:
            table.add_row(f"{s.name}:{s.variant_help or '<variant>'}" if s.prefix else s.name, s.family, s.plugin,
                          s.description)
    elif kind == "datasets":
        for col in ("dataset", "tasks", "needs --data-root", "plugin", "description"):
            table.add_column(col)
        for s in specs:
            table.add_row(s.name, ", ".join(s.tasks), "yes" if s.needs_root else "no", s.plugin, s.description)
    else:
        for col in (kind.rstrip("s"), "plugin", "description"):
            table.add_column(col)
        for s in specs:
            table.add_row(s.name, s.plugin, s.description.splitlines()[0] if s.description else "")
    print_table(out, table)


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="A model name, e.g. diff-add or smp:FPN:resnet34.")],
    preset: Annotated[str, typer.Option(help="auto (as run: paper on CUDA, else small), tiny, small or paper.")] = "auto",
    task: Annotated[str, typer.Option(help="Task for task-specific preset values.")] = "infection",
    image_size: Annotated[int, typer.Option(help="Image size the model is built for.")] = 64,
    device: Annotated[str, typer.Option(help="The device `auto` resolves for: auto, cpu, cuda, mps.")] = "auto",
) -> None:
    """Show a model's resolved hyperparameters and parameter count."""
    from segbench.plan.build import plan_model
    from segbench.presets import resolve_preset

    spec = registry().model(model)  # a mistyped name or setting is answered before torch loads
    if preset == "auto":
        from segbench.engine.device import resolve_device

        preset = resolve_preset(preset, resolve_device(device).type)
    plan = plan_model(spec, model, resolve_preset(preset, "cpu"), task, image_size)  # checks a named preset
    net = spec.factory(plan.factory_input(image_size))
    count = sum(p.numel() for p in net.parameters())
    out.print(f"[bold]{model}[/] ({spec.family}, plugin {spec.plugin}): {spec.description}")
    if spec.reference:
        out.print(f"reference: {spec.reference}")
    out.print(f"preset {preset}, task {task}, {image_size}x{image_size}: {count:,} parameters ({count / 1e6:.2f} M)")
    if spec.summary is not None:
        out.print(spec.summary(plan.factory_input(image_size)), markup=False, highlight=False)
    if spec.network_evaluations is not None:
        out.print(f"network evaluations per mask: {spec.network_evaluations(plan.factory_input(image_size))}")
    out.print(f"paper's ensemble fusion: {spec.fusion}")
    tables = [("hyperparameter", plan.hyperparameters)]
    for stage in spec.stages:
        if len(spec.stages) > 1:
            what = (f"fit: {stage.fit} of {stage.fit_on}, once, no optimiser" if stage.fit
                    else f"loss: {stage.loss}, trains: {stage.trains or 'all'}")
            out.print(f"stage [bold]{stage.name}[/]: view {stage.view} ({stage.split} split), {what}"
                      + (f"; {stage.description}" if stage.description else ""))
        if not stage.fit:
            settings = {k: v for k, v in plan.stage_training(stage.name).to_json().items() if v is not None}
            tables.append(("training setting" if len(spec.stages) == 1 else f"{stage.name} setting", settings))
    for title, values in tables:
        table = Table(title, "value", box=None, header_style="bold")
        for key, value in values.items():
            table.add_row(key, repr(value))
        print_table(out, table)


def _budget_text(labels: int | None) -> str:
    """A label budget as --labels takes it: N, or all."""
    return "all" if labels is None else str(labels)


def _label_budget(text: str) -> int | None:
    """--labels: "all" is None, else a positive number of images."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise SegbenchError(f"--labels {text!r}: expected a number of labelled training images or all") from None


@app.command()
def run(
    task: Annotated[str, typer.Option(help="What to segment: lung or infection.")],
    models: Annotated[str, typer.Option(help="Comma-separated model names, e.g. diff-add,unet.")],
    dataset: Annotated[str, typer.Option(help="Dataset name (segbench list datasets).")] = "cxr-phantom",
    data_root: Annotated[Optional[str], typer.Option(
        help="Folder of a file-based dataset, or kaggle:OWNER/DATASET (downloaded once; pip install 'segbench[kaggle]').")] = None,
    preset: Annotated[str, typer.Option(help="auto, tiny, small or paper (auto: paper on CUDA, else small).")] = "auto",
    seed: Annotated[int, typer.Option(help="Run seed: training, sampling and bootstrap draws derive from it.")] = 0,
    epochs: Annotated[Optional[int], typer.Option(help="Train every model (each trained stage of a staged one) for N epochs, instead of its preset's budget; --set MODEL.STAGE.epochs=N wins for that stage.")] = None,
    steps: Annotated[Optional[int], typer.Option(
        help="Train every model (each trained stage of a staged one) for N optimiser steps (a budget that means the same on any dataset size); --set MODEL.STAGE.steps=N wins for that stage.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Override the training batch size of every model and trained stage.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Override the learning rate of every model and trained stage.")] = None,
    eval_samples: Annotated[Optional[int], typer.Option(help="Evaluate a seeded subset of N test images.")] = None,
    eval_batch_size: Annotated[Optional[int], typer.Option(
        help="Most masks per prediction batch (speed only; default 256 on CUDA, 32 elsewhere; "
             "halved on GPU out-of-memory).")] = None,
    ensemble: Annotated[int, typer.Option(help="Masks sampled per image, fused by --fusion, then thresholded.")] = 1,
    fusion: Annotated[str, typer.Option(
        help="How each image's --ensemble K masks become one: mean (uncertainty: std), vote (majority, a tie is "
             "background; uncertainty: entropy of the vote fraction) or staple (STAPLE, Warfield et al. 2004; "
             "uncertainty: entropy of its posterior; needs segbench[staple]) or paper (each model by its paper's "
             "rule: segbench info MODEL).")] = "mean",
    image_size: Annotated[int, typer.Option(help="Square size images are resized to.")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda[:N] or mps.")] = "auto",
    out_dir: Annotated[Optional[str], typer.Option("--out", help="Run directory (default runs/<task>-<time>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    compile: Annotated[bool, typer.Option(
        "--compile", help="torch.compile each model's submodules; the report gives the compile time (spent in the first batches).")] = False,
    precision: Annotated[str, typer.Option(
        help="Network arithmetic: auto (bf16 on CUDA, else fp32), fp32, or bf16 (autocast; on a CPU fast only "
             "with AVX512-BF16 or AMX).")] = "auto",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Per-model hyperparameter MODEL.KEY=VALUE (repeatable).")] = None,
    checkpoint_every: Annotated[float, typer.Option(
        help="Seconds between mid-epoch checkpoints (0: every step); one is always written after each epoch.")] = 300.0,
    mask_threshold: Annotated[Optional[int], typer.Option(
        help="Binarise masks that are not {0,1}/{0,255}: values above T are foreground.")] = None,
    folds: Annotated[Optional[str], typer.Option(
        help="k-fold cross-validation: a folds file (as a study writes one); with --fold.")] = None,
    fold: Annotated[Optional[int], typer.Option(help="The fold of --folds that is the test split.")] = None,
    track: Annotated[Optional[str], typer.Option(
        help="Experiment trackers, comma-separated, e.g. tensorboard,mlflow (segbench list trackers).")] = None,
    dist_backend: Annotated[str, typer.Option(
        help="Under torchrun/srun: torch.distributed backend, auto (nccl on CUDA, else gloo), nccl or gloo.")] = "auto",
    dist_timeout: Annotated[float, typer.Option(
        help="Under torchrun/srun: seconds a collective waits for a rank (one that hangs or died) before failing.")] = 600.0,
    sync_batchnorm: Annotated[bool, typer.Option(
        "--sync-batchnorm", help="Under torchrun/srun: BatchNorm statistics over the global batch (CNN baselines).")] = False,
    labels: Annotated[str, typer.Option(
        help="Label budget: N training images keep their masks (nested and stratified), or all.")] = "all",
    labels_seed: Annotated[int, typer.Option(
        help="Which N images are labelled; independent of --seed, so seeds vary training, not the data.")] = 0,
    select: Annotated[str, typer.Option(
        help="The weights a stage on the labelled images keeps: last, or best (of pooled validation Dice, scored on at "
             "most N validation masks at --labels N, drawn as the labels are).")] = "last",
    select_every: Annotated[Optional[int], typer.Option(
        help="With --select best: steps between validation scorings (default: 10 scorings per stage).")] = None,
    augment: Annotated[str, typer.Option(
        help="Augmentation of every model's labelled training images: none, or standard (nnU-Net-like: small "
             "rotations and scaling, grid deformation, flips the dataset allows, noise, blur, brightness, "
             "contrast, gamma).")] = "none",
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Train the models, evaluate them on identical samples, write the run directory and report."""
    from segbench.plan.build import check_arguments
    from segbench.plan.request import RunRequest

    request = RunRequest(
        task=task, models=_names(models), dataset=dataset,
        data_root=data_root, preset=preset, seed=seed, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr,
        eval_samples=eval_samples, eval_batch_size=eval_batch_size, ensemble=ensemble, image_size=image_size,
        device=device, out=out_dir, resume=resume, sets=list(set_ or []), compile=compile, precision=precision,
        checkpoint_every=checkpoint_every, mask_threshold=mask_threshold, folds=folds, fold=fold,
        track=_names(track), dist_backend=dist_backend, dist_timeout=dist_timeout, sync_batchnorm=sync_batchnorm,
        labels=_label_budget(labels), labels_seed=labels_seed, select=select, select_every=select_every,
        augment=augment, fusion=fusion,
    )
    check_arguments(request, registry())  # a mistyped command is answered before torch loads
    from segbench.reports.compose import write_run_report
    from segbench.runner import run as run_benchmark

    _run_and_show(lambda progress: run_benchmark(request, registry(), progress, write_run_report), quiet,
                  f"{task} on {dataset}, per-image mean [95% CI]")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (its trained models are reused).")],
    models: Annotated[Optional[str], typer.Option(help="Comma-separated models of the run (default: all finished).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="How a model samples, MODEL.KEY=VALUE (repeatable), e.g. diff-add.sampler=dpmpp2m.")] = None,
    ensemble: Annotated[Optional[int], typer.Option(help="Masks sampled per image (default: the run's).")] = None,
    fusion: Annotated[Optional[str], typer.Option(
        help="How the ensemble is fused: mean, vote, staple or paper (see run --help; default: the run's).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Threshold of the probabilities (default: the run's).")] = None,
    eval_samples: Annotated[Optional[int], typer.Option(
        help="A seeded subset of N evaluated images (default: the run's; on other data, every image).")] = None,
    eval_batch_size: Annotated[Optional[int], typer.Option(
        help="The network's batch shape when predicting (default: the run's on its kind of device).")] = None,
    dataset: Annotated[Optional[str], typer.Option(
        help="Evaluate on another registered dataset serving the trained task, at the run's image size "
             "(a calibrated threshold stays the one fitted on the training data).")] = None,
    data_root: Annotated[Optional[str], typer.Option(
        help="The evaluated data's folder (default: the run's, for the run's dataset).")] = None,
    split: Annotated[str, typer.Option(
        help="Evaluated images: test (the test split) or all (every image, e.g. a folder without splits.json).")] = "test",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda[:N] or mps.")] = "auto",
    out_dir: Annotated[Optional[str], typer.Option("--out", help="The new run directory (default runs/<task>-<time>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted evaluation in --out.")] = False,
    dist_backend: Annotated[str, typer.Option(help="Under torchrun/srun: auto, nccl or gloo.")] = "auto",
    dist_timeout: Annotated[float, typer.Option(help="Under torchrun/srun: seconds a collective waits.")] = 600.0,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Evaluate a finished run's trained models another way (sampler, steps, ensemble, fusion, threshold) or on another
    dataset, without training."""
    from segbench.evaluate import EvaluateRequest
    from segbench.evaluate import evaluate as evaluate_run

    request = EvaluateRequest(
        run_dir=str(run_dir), models=_names(models) or None,
        sets=list(set_ or []), ensemble=ensemble, fusion=fusion, threshold=threshold, eval_samples=eval_samples,
        eval_batch_size=eval_batch_size, dataset=dataset, data_root=data_root, split=split, device=device,
        out=out_dir, resume=resume, dist_backend=dist_backend, dist_timeout=dist_timeout)
    from segbench.reports.compose import write_run_report

    _run_and_show(lambda progress: evaluate_run(request, registry(), progress, write_run_report), quiet,
                  f"{run_dir} evaluated {f'on {dataset}' if dataset else 'again'}, per-image mean [95% CI]")


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory whose model finished.")],
    inputs: Annotated[list[str], typer.Argument(help="Image files or folders of them (PNG, JPEG, ...; grey or RGB).",
                                                metavar="INPUT...")],
    model: Annotated[str, typer.Option(help="The run's model to predict with.")],
    out_dir: Annotated[str, typer.Option("--out", help="Folder for the masks, maps, overlays and index.csv.")],
    ids_relative_to: Annotated[Optional[str], typer.Option(
        help="Sample ids (which seed each image's draws) are file paths relative to this folder, without "
             "extension (default: the folder above each file's folder: images/<stem>, as the folder dataset).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="How the model samples, MODEL.KEY=VALUE (repeatable), e.g. diff-add.sampling_steps=50.")] = None,
    ensemble: Annotated[Optional[int], typer.Option(help="Masks sampled per image (default: the run's).")] = None,
    fusion: Annotated[Optional[str], typer.Option(
        help="How the ensemble is fused: mean, vote, staple or paper (see run --help; default: the run's).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        help="The network's batch shape (default: the run's; another may change the last bits).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda[:N] or mps.")] = "auto",
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Segment image files with a run's trained (EMA) model, resized, seeded and sampled as the run did."""
    from segbench.prediction.predict import PredictRequest
    from segbench.prediction.predict import predict as predict_images
    from segbench.progress import Progress

    request = PredictRequest(run_dir=str(run_dir), model=model, inputs=list(inputs), out=out_dir,
                             ids_relative_to=ids_relative_to, sets=list(set_ or []), ensemble=ensemble, fusion=fusion,
                             batch_size=batch_size, device=device)
    outcome = predict_images(request, registry(), Progress(err, quiet=quiet))
    for problem in outcome.problems:
        _say("error", "red", problem)
    out.print(f"{outcome.written} masks in {out_dir}/ (index: {outcome.index})", markup=False, highlight=False)
    if outcome.problems:
        raise typer.Exit(1)


study_app = typer.Typer(help="Grids of runs over datasets, models, seeds and folds, from a TOML study file.",
                        no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("plan")
def study_plan(
    study_file: Annotated[Path, typer.Argument(help="A study file (TOML).")],
    out_dir: Annotated[Optional[str], typer.Option("--out", help="Study directory (default runs/study-<name>).")] = None,
) -> None:
    """Show a study's cells (ids, what each trains and evaluates, and their state) without running anything."""
    from segbench.study.grid import subsets_note
    from segbench.study.run import plan_study

    plan = plan_study(study_file, out_dir, registry())
    table = Table("cell", "task", "model", "labels", "augment", "seed", "fold", "evaluates", "state", box=None,
                  header_style="bold")
    for cell in plan.cells:
        evaluates = ", ".join(["as trained", *(v.name for v in cell.variants)])
        labels = _budget_text(cell.request.labels) + (f" (labels seed {cell.labels_seed})"
                                                      if cell.labels_seed is not None else "")
        table.add_row(cell.id, cell.request.task, cell.request.models[0], labels, cell.request.augment, str(cell.seed),
                      "–" if cell.fold is None else str(cell.fold), evaluates, plan.states[cell.id])
    print_table(out, table)
    if (note := subsets_note(plan.study)) is not None:
        out.print(note, markup=False, highlight=False, soft_wrap=True)
    done = sum(state == "done" for state in plan.states.values())
    out.print(f"{len(plan.cells)} cells in {plan.directory}/ ({done} done); run them with "
              f"`segbench study run {study_file}`", markup=False, highlight=False, soft_wrap=True)


@study_app.command("run")
def study_run(
    study_file: Annotated[Path, typer.Argument(help="A study file (TOML).")],
    out_dir: Annotated[Optional[str], typer.Option("--out", help="Study directory (default runs/study-<name>).")] = None,
    executor: Annotated[Optional[str], typer.Option(help="How cells run (default: the study file's executor table, else local).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="local executor: cells at once (one GPU each).")] = None,
) -> None:
    """Run a study's cells that are not done (finished ones are skipped, interrupted ones resumed)."""
    from segbench.study.run import executor_for, plan_study, run_study

    reg = registry()
    plan = plan_study(study_file, out_dir, reg)
    from segbench.reports.compose import write_run_report

    outcomes = run_study(plan, reg, executor_for(reg, plan.study, executor, workers), write_run_report,
                         _state.get("plugins", ()))
    failed = {cell: why for cell, why in outcomes.items() if why}
    for cell, why in failed.items():
        _say("error", "red", f"cell {cell} did not finish: {why}")
    out.print(f"{len(plan.cells) - len(failed)} of {len(plan.cells)} cells done in {plan.directory}/; "
              f"report: segbench report {plan.directory}", markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@study_app.command("run-cell", hidden=True)
def study_run_cell(study_dir: Path, cell_id: str) -> None:
    """Run one cell of a study directory (what the local executor's workers call)."""
    from segbench.reports.compose import write_run_report
    from segbench.study.jobs import run_cell

    run_cell(study_dir, cell_id, write_run_report, _state.get("plugins", ()))


data_app = typer.Typer(help="Lay a downloaded dataset out where segbench reads it, and check it against its "
                            "published counts.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _dataset_with(dataset: str, field: str, what: str) -> DatasetSpec:
    """The spec of `dataset`, which must have `field` (e.g. its layout step)."""
    reg = registry()
    spec = reg.dataset(dataset)
    if getattr(spec, field) is None:
        having = [name for name in reg.names("datasets") if getattr(reg.dataset(name), field) is not None]
        raise SegbenchError(f"dataset {dataset!r} has no {what}; datasets with one: {', '.join(having) or '(none)'}")
    return spec


@data_app.command("layout")
def data_layout(
    dataset: Annotated[str, typer.Argument(help="A dataset with a layout step, e.g. covid-qu-ex.")],
    source: Annotated[Path, typer.Argument(help="The downloaded copy: an extracted folder, or a bare git repository.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The data root to lay it out in (then pass it as --data-root).")],
    path: Annotated[str, typer.Option(help="The folder inside SOURCE that holds the data, e.g. dataset.")] = "",
) -> None:
    """Lay a downloaded copy out under --out where the dataset's reader looks (hard links where possible)."""
    spec = _dataset_with(dataset, "layout", "layout step")
    err.print(f"laying out {source} ...", markup=False, highlight=False, soft_wrap=True)
    for line in spec.layout(source, out_dir, path):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@data_app.command("check")
def data_check(
    dataset: Annotated[str, typer.Argument(help="A dataset with published counts, e.g. covid-qu-ex.")],
    root: Annotated[Path, typer.Argument(help="Its data root (what --data-root gets).")],
    task: Annotated[Optional[str], typer.Option(help="Tasks to check, comma-separated (default: every one).")] = None,
) -> None:
    """Count the images per task, split and group under ROOT against the published counts; exit 0 when complete."""
    from segbench.data.check import check_counts

    result = check_counts(_dataset_with(dataset, "expected", "published counts"), root, _names(task) or None)
    for line in result.found:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for problem in result.problems:
        _say("error", "red", problem)
    count = len(result.problems)
    verdict = (f"{count} difference{'s' * (count != 1)} from the published counts" if count
               else "complete (the published counts in every split)")
    out.print(f"{dataset} under {root}: {verdict}", markup=False, highlight=False, soft_wrap=True)
    if result.problems:
        raise typer.Exit(1)


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="One or more run directories (same task and dataset).")],
    format: Annotated[str, typer.Option("--format", help="md, latex, html, csv, or a plugin's format.")] = "md",
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", help="Write to FILE, not stdout; md/latex figures go to <FILE stem>-figures/ beside it.")] = None,
    standalone: Annotated[bool, typer.Option(help="LaTeX: a complete document that compiles on its own.")] = False,
    baseline: Annotated[Optional[str], typer.Option(
        help="Model the others are tested against (default: the first).")] = None,
    metrics: Annotated[Optional[list[str]], typer.Option(
        "--metrics", help="Metrics to report, comma-separated; one the run lacks is re-scored from predictions/.")] = None,
    threshold: Annotated[Optional[float], typer.Option(
        help="Re-score every model from predictions/ at this threshold.")] = None,
    transpose: Annotated[bool, typer.Option(help="Models as rows, metrics as columns.")] = False,
    figures: Annotated[bool, typer.Option(help="Figures: embedded in html, written beside --out for md/latex.")] = True,
    timings: Annotated[bool, typer.Option(help="Training time and masks/s; --no-timings for byte-reproducible reports.")] = True,
    by: Annotated[Optional[str], typer.Option(
        "--by", help="Break the results down by a metadata column of per_image.csv (e.g. group).")] = None,
) -> None:
    """Render the comparison of one or more runs, with paired tests and figures; re-score without re-running."""
    spec = registry().format(format)  # a mistyped format is answered before torch loads
    from segbench.io import atomic_write_text
    from segbench.reports.compose import compose_report

    if out_file is None and figures and sys.stdout.isatty() and spec.figures == "embedded":
        raise SegbenchError(f"--format {format} embeds its figures as base64, not for a terminal; pass "
                            f"--out FILE, or --no-figures to print it here")
    if standalone and format != "latex":
        _say("warning", "yellow", f"--standalone makes a LaTeX document; --format {format} ignores it")
    if transpose and format == "csv":
        _say("warning", "yellow", "--transpose lays out tables; CSV has one row per model and metric and ignores it")
    names = [m.strip() for item in metrics or [] for m in item.split(",") if m.strip()]
    text, notes = compose_report(
        registry(), list(run_dirs), format, out_file=out_file, standalone=standalone, transpose=transpose,
        baseline=baseline, metrics=names or None, threshold=threshold, figures=figures,
        timings=timings, by=by,
    )
    for note in notes:
        _say("note", "yellow", note)
    if out_file is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out_file, text)
        err.print(f"wrote {out_file}")


@app.command()
def plugins() -> None:
    """List loaded plugins with distribution and version, and those that failed to load."""
    _state["warn_failures"] = False
    table = Table("plugin", "distribution", "version", "source", "status", box=None, header_style="bold")
    for p in registry().plugins:
        table.add_row(p.name, p.distribution or "–", p.version or "–", p.source,
                      Text("failed (below)", style="red") if p.error else "ok")
    print_table(out, table)
    for p in registry().failures:
        out.print(Text.assemble((p.name, "bold"), ": ", p.error), soft_wrap=True)


def _run_and_show(work, quiet: bool, title: str) -> None:
    """Do `work(progress)` (a run or an evaluation, stopping cleanly on SIGTERM/SIGUSR1), then, in the
    process that prints, its table, time, directory and next command."""
    from segbench.progress import Progress
    from segbench.reports.terminal import print_finished

    started = time.monotonic()
    with stop_on_signals():
        path = work(Progress(err, quiet=quiet))
    if main_process():
        print_finished(out, registry(), path, title, time.monotonic() - started)


def main_process() -> bool:
    """Whether this process prints results: the only one, or rank 0 of a torchrun/srun launch."""
    from segbench.engine.distributed import launcher_environment

    found = launcher_environment()
    return found is None or found[0] == 0


def main() -> None:
    """Console entry point: SegbenchError -> one line and exit 2; other errors -> one line and exit 1."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(code)
            sys.exit(code)
    except USAGE_ERROR as exc:  # Typer's own parse errors: one line, as ours
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _say("error", "red", exc.format_message() + where)
        sys.exit(2)
    except typer.Abort:
        err.print("interrupted")
        sys.exit(130)
    except Stopped as exc:
        _say("stopped", "yellow", f"{STOP_REQUEST.name or 'stop requested'} {exc}; what was done is committed: "
                                  "run the same command with --resume to continue")
        sys.exit(128 + (STOP_REQUEST.signal or 15))
    except SegbenchError as exc:
        if _state["debug"]:
            raise
        _say("error", "red", str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; continue with the same command and --resume")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - never a bare traceback
        if _state["debug"]:
            raise
        _say("error", "red", f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")
        sys.exit(1)
