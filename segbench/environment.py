"""What a run records about where it ran: the command line, package versions and the git commit."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import segbench


def command_line() -> str:
    return " ".join(sys.argv) if sys.argv else ""


def versions() -> dict[str, str]:
    import torch

    return {"segbench": segbench.__version__, "torch": torch.__version__, "python": platform.python_version()}


def git_sha() -> str:
    """The commit of segbench's own checkout, or "" outside one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(segbench.__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""
