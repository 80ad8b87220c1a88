"""Helpers for the reliability tests: the CLI in-process and in a subprocess that kills itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import repo_root

PLUGINS = ("--plugin", "tests.toy_plugin", "--plugin", "tests.reliability.faulty_plugin")


def cli(*args: str) -> tuple[int, str, str]:
    """`segbench ARGS` in-process with the toy and faulty plugins; (exit code, stdout, stderr).

    Like cli.main(): a SegbenchError is exit 2 with one line; any other exception fails the test.
    """
    from typer.testing import CliRunner

    from segbench import cli as segbench_cli
    from segbench.errors import SegbenchError

    result = CliRunner().invoke(segbench_cli.app, [*PLUGINS, *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        if not isinstance(result.exception, SegbenchError):
            raise result.exception
        return 2, result.stdout, f"error: {result.exception}\n"
    return result.exit_code, result.stdout, result.stderr


def killed_run(where: str, n: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess that SIGKILLs itself at (`where`, `n`); see tests/reliability/killer.py."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "tests.reliability.killer", where, str(n), *args],
                          cwd=repo_root(), env=env, capture_output=True, text=True, timeout=timeout)


def differing_files(a: Path, b: Path, names: list[str]) -> list[str]:
    """The names whose bytes differ between run directories `a` and `b`."""
    return [n for n in names if (a / n).read_bytes() != (b / n).read_bytes()]
