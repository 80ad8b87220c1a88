"""A third-party tracker, "recorder": registered through register_trackers, it keeps every on_train_step
of the runs that name it in --track."""

from segbench import TrackerSpec, hookimpl

STEPS: list[tuple[str, object]] = []
_tracking = [False]


@hookimpl
def register_trackers(register) -> None:
    register(TrackerSpec("recorder", "keeps every training step in memory"))


@hookimpl
def on_run_start(run_dir, record) -> None:
    _tracking[0] = "recorder" in record.plan.track


@hookimpl
def on_train_step(model_name, step) -> None:
    if _tracking[0]:
        STEPS.append((model_name, step))
