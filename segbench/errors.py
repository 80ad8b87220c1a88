"""The one exception type the CLI turns into a clear, one-line message."""


class SegbenchError(Exception):
    """A problem the user can fix: bad input, missing data, an unknown name.

    The message is one line that names the thing and what would be valid.
    """


def unknown(kind: str, name: str, valid: "list[str] | tuple[str, ...]") -> SegbenchError:
    """Error for an unknown name, listing the valid choices."""
    choices = ", ".join(sorted(valid)) or "(none registered)"
    return SegbenchError(f"unknown {kind} {name!r}; valid: {choices}")
