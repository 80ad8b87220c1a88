"""Shared fixtures: an isolated cache, the loaded registry, and the CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from segbench.plugins import Registry, load_plugins

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["SEGBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Built-ins plus the toy test plugin (also proves the --plugin route)."""
    return load_plugins(["tests.toy_plugin"])


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch):
    """Run `segbench ARGS...` in-process; returns (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from segbench import cli

    def invoke(*args: str) -> tuple[int, str, str]:
        runner = CliRunner()
        result = runner.invoke(cli.app, ["--plugin", "tests.toy_plugin", *args])
        code = result.exit_code
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            # Mirror cli.main(): errors become one line, anything else is a bug in segbench.
            from segbench.errors import SegbenchError

            if not isinstance(result.exception, SegbenchError):
                raise result.exception
            code, stderr = 2, f"error: {result.exception}\n"
        return code, result.stdout, stderr

    return invoke


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def single_thread():
    """For tests of tiny networks (a directory's conftest makes it autouse): one thread avoids OpenMP
    synchronisation costing more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
