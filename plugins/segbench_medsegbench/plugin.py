"""Registers one dataset per MedSegBench flag, `medsegbench:<flag>`, with the tasks it serves. The factory
imports the reader on first use, so listing plugins does not pay for numpy or PIL."""

from __future__ import annotations

from functools import partial

from segbench import DatasetSpec, deferred, hookimpl
from segbench_medsegbench.catalog import FLAGS, targets


@hookimpl
def register_datasets(register) -> None:
    for flag in FLAGS:
        register(
            DatasetSpec(
                name=f"medsegbench:{flag.name}",
                tasks=tuple(targets(flag)),
                factory=partial(deferred("segbench_medsegbench.source:MedSegBenchSource.from_options"), flag.name),
                description=flag.description,
                needs_root=True,
            )
        )
