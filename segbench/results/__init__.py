"""The run directory: what a run writes and how reports read it back."""

from segbench.results.store import RunResults, RunStore, load_run, merge_runs

__all__ = ["RunResults", "RunStore", "load_run", "merge_runs"]
