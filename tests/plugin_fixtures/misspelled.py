"""A plugin with a misspelled hook name."""

from segbench import hookimpl


@hookimpl
def register_modles(register) -> None:
    raise AssertionError("never called")
