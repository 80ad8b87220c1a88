"""Helpers for the torch.distributed tests: the CLI under torchrun (gloo on the CPU), and the same
command in one process with the thread count each torchrun worker gets (torchrun sets OMP_NUM_THREADS=1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import repo_root

PLUGINS = ("--plugin", "tests.toy_plugin", "--plugin", "tests.distributed.step_log")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", **extra}


def single(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`segbench ARGS` in one process with one CPU thread."""
    return subprocess.run([sys.executable, "-m", "segbench", *PLUGINS, *args], cwd=repo_root(),
                          env=env or environment(), capture_output=True, text=True, timeout=timeout)


def torchrun_command(*args: str, nproc: int = 2, nnodes: int = 1, node_rank: int = 0, port: int | None = None,
                     module: str = "segbench", plugins: tuple[str, ...] = PLUGINS) -> list[str]:
    rendezvous = ["--nnodes", str(nnodes), "--node_rank", str(node_rank), "--master_addr", "127.0.0.1",
                  "--master_port", str(port or free_port())]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), *rendezvous,
            "-m", module, *plugins, *args]


def torchrun(*args: str, timeout: float = 300, env: dict[str, str] | None = None, **options) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=N -m segbench ARGS` (gloo on the CPU)."""
    return subprocess.run(torchrun_command(*args, **options), cwd=repo_root(), env=env or environment(),
                          capture_output=True, text=True, timeout=timeout)


def same_files(a: Path, b: Path, names: list[str]) -> list[str]:
    """The names whose bytes differ between run directories `a` and `b`."""
    return [n for n in names if (a / n).read_bytes() != (b / n).read_bytes()]
