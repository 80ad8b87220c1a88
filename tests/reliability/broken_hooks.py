"""A logger plugin whose lifecycle hooks raise, and whose model factory raises."""

from segbench import ModelSpec, hookimpl


@hookimpl
def on_epoch_end(model_name, epoch, metrics) -> None:
    raise RuntimeError("logger broken on purpose")


@hookimpl
def on_run_end(run_dir) -> None:
    raise KeyError("tracker broken on purpose")


def _factory(config):
    raise ZeroDivisionError("factory broken on purpose")


@hookimpl
def register_models(register) -> None:
    register(ModelSpec("unbuildable", _factory, "cnn", {"small": {}}, "a model whose factory raises"))
