"""The run directory: what a run writes, its typed records, and how reports and tools read it back."""

from segbench.results.record import ModelRecord, RunRecord, read_models, read_record
from segbench.results.store import RunResults, RunStore, load_run, merge_runs

__all__ = ["ModelRecord", "RunRecord", "RunResults", "RunStore", "load_run", "merge_runs", "read_models", "read_record"]
