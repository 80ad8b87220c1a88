"""A plugin that registers a model name the toy plugin already has."""

from segbench import ModelSpec, hookimpl


@hookimpl
def register_models(register) -> None:
    register(ModelSpec("toy-cnn", factory=lambda c: None, family="cnn", presets={}, description="duplicate"))
