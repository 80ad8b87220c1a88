"""What a run records about where it ran: the command line, package versions, the kernels that computed it
and the git commit."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import segbench

if TYPE_CHECKING:
    import torch


def command_line() -> str:
    return " ".join(sys.argv) if sys.argv else ""


def versions() -> dict[str, str]:
    import torch

    return {"segbench": segbench.__version__, "torch": torch.__version__, "python": platform.python_version()}


# Variables that pin a kernel path (ATen's vector ISA, oneDNN's ISA, MKL's code path); a run records those set.
KERNEL_PINS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")


def kernels(device_type: str) -> dict[str, str]:
    """What decides a result's last bits besides the code and the device: the CPU model, ATen's CPU kernel
    path (AVX512, AVX2, DEFAULT), the oneDNN and BLAS builds, the CPU threads, the pins set in the
    environment, and on CUDA the CUDA and cuDNN versions. Runs agree bit for bit only where these agree."""
    import torch

    built = torch.__config__.show()
    found = {
        "cpu": cpu_model(),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn": _match(r"MKL-DNN v([\w.]+)", built),
        "blas": " ".join(filter(None, (_match(r"BLAS_INFO=(\w+)", built),
                                       _match(r"Math Kernel Library Version ([\w.]+)", built)))),
        "cpu_threads": str(torch.get_num_threads()),
        **{name.lower(): os.environ[name] for name in KERNEL_PINS if os.environ.get(name)},
    }
    if device_type == "cuda":
        found.update(cuda=str(torch.version.cuda), cudnn=str(torch.backends.cudnn.version()))
    return {key: value for key, value in found.items() if value}


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) ..."), from /proc/cpuinfo where there is one."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    return _match(r"model name\s*:\s*(.+)", text) or platform.processor()


def _match(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    return found.group(1).strip() if found else ""


def git_sha() -> str:
    """The commit of segbench's own checkout, or "" outside one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(segbench.__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def provenance(device: torch.device) -> dict[str, Any]:
    """What config.json records of where a run ran (RunRecord's fields): command line, device, package
    versions, kernels and commit."""
    from segbench.engine.device import describe

    return {"command": command_line(), "device_name": describe(device), "versions": versions(),
            "kernels": kernels(device.type), "git_sha": git_sha()}
