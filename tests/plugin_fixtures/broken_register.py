"""A plugin whose registration raises."""

from segbench import hookimpl


@hookimpl
def register_models(register) -> None:
    raise RuntimeError("registration broken on purpose")
