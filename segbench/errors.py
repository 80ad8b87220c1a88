"""The one exception type the CLI turns into a clear, one-line message."""

import difflib


class SegbenchError(Exception):
    """A problem the user can fix: bad input, missing data, an unknown name.

    The message is one line that names the thing and what would be valid.
    """


def did_you_mean(name: str, valid: "list[str] | tuple[str, ...]") -> str:
    """"; did you mean 'x'?" for the valid name closest to `name` (case aside), or ""."""
    by_lower = {v.lower(): v for v in valid}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def unknown(kind: str, name: str, valid: "list[str] | tuple[str, ...]") -> SegbenchError:
    """Error for an unknown name, with the closest valid name and the valid choices."""
    choices = ", ".join(sorted(valid)) or "(none registered)"
    return SegbenchError(f"unknown {kind} {name!r}{did_you_mean(name, valid) or ';'} valid: {choices}")


class HyperparameterError(SegbenchError):
    """A model's hyperparameter out of range for the run (raised by a model's schema): `key` names it and
    `fix`, where one exists, is a value that would be valid, so the run can say which `--set` fixes it."""

    def __init__(self, key: str, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.fix = fix
