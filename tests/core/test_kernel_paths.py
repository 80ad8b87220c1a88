"""The batch-independence guarantee holds on every ATen CPU kernel path this machine can run, not only its
own: the tests that prove it (a sample's prediction whatever its batch companions, and two processes
evaluating byte-identically to one) rerun in a child process with ATEN_CPU_CAPABILITY set to each other path.
The value `default` selects ATen's scalar kernels; a path the CPU lacks skips, saying so."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import repo_root

KERNEL_PATHS = {"avx512": "AVX512", "avx2": "AVX2", "default": "DEFAULT"}
GUARANTEES = ["tests/core/test_batch_independence.py",
              "tests/distributed/test_distributed.py::test_two_processes_evaluate_byte_identically_to_one"]


def _child_environment(path: str) -> dict[str, str]:
    return {**os.environ, "ATEN_CPU_CAPABILITY": path}


def _capability(path: str) -> str:
    """The kernel path ATen runs when asked for `path` (a CPU without it falls back to a lesser one)."""
    done = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                          env=_child_environment(path), capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("path", KERNEL_PATHS)
def test_batch_independence_holds_on_kernel_path(path):
    if os.environ.get("ATEN_CPU_CAPABILITY"):
        pytest.skip("this process already runs on a chosen kernel path")
    native = torch.backends.cpu.get_cpu_capability()
    if KERNEL_PATHS[path] == native:
        pytest.skip(f"{native} is this machine's own path: the suite runs those tests on it in this process")
    if (runs := _capability(path)) != KERNEL_PATHS[path]:
        pytest.skip(f"this CPU has no {KERNEL_PATHS[path]} kernels (asked for {path}, ATen runs {runs})")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *GUARANTEES],
                          cwd=repo_root(), env=_child_environment(path), capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout.splitlines()[-1] and "skipped" not in done.stdout.splitlines()[-1]
