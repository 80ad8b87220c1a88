"""A third-party report format: the summary as JSON."""

from segbench import FormatSpec, hookimpl


def render(results, options=None) -> str:
    return results.summary.to_json(orient="records")


@hookimpl
def register_formats(register) -> None:
    register(FormatSpec("json", render, "json", "summary rows as JSON"))
