"""Device and precision selection: auto picks cuda, then mps, then cpu; bf16 on CUDA, else fp32;
the default prediction batch cap per device."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from segbench.engine.distributed import SINGLE, Distributed
from segbench.errors import SegbenchError
from segbench.plan.run_plan import RunDevice

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str) -> torch.device:
    """torch.device for "auto", "cpu", "cuda", "cuda:N" or "mps"; unavailable ones are an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":", 1)[0]
    if kind not in DEVICES[1:]:
        raise SegbenchError(f"unknown device {name!r}; valid: {', '.join(DEVICES)} (or cuda:N)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SegbenchError(f"device {name!r} is not available here (no CUDA); valid: auto, cpu")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SegbenchError(f"device {name!r} is not available here; valid: auto, cpu")
    try:
        device = torch.device(name)
    except RuntimeError:  # "cpu:abc", "cuda:x"
        raise SegbenchError(f"unknown device {name!r}; valid: {', '.join(DEVICES)} (or cuda:N)") from None
    if kind == "cpu" and device.index not in (None, 0):
        raise SegbenchError(f"unknown device {name!r}; valid: auto, cpu (the CPU has no index but 0)")
    if kind == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SegbenchError(f"device {name!r} is not available here; valid: cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


def describe(device: torch.device) -> str:
    """Human-readable device name for config.json and reports."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def resolve_precision(name: str, device: torch.device) -> str:
    """"fp32" or "bf16" for "auto" (bf16 on CUDA, else fp32), "fp32" or "bf16"; others are an error."""
    if name not in PRECISIONS:
        raise SegbenchError(f"unknown precision {name!r}; valid: {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return name


def eval_batch_cap(device: torch.device) -> int:
    """Default most masks per prediction batch: 256 on CUDA, where sampling gains from large batches
    (paper preset on an H200: 19.5 masks/s at 64, 23.8 at 512), 32 elsewhere (eager CPU convolutions
    gain nothing from larger ones). Out-of-memory halves it during the run."""
    return 256 if device.type == "cuda" else 32


def run_device(name: str, precision: str) -> RunDevice:
    """The device `segbench run --device NAME --precision PRECISION` plans for, resolved."""
    device = resolve_device(name)
    return RunDevice(str(device), resolve_precision(precision, device), eval_batch_cap(device))


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The network's autocast context: bf16 matrix products and convolutions for "bf16", off for "fp32".
    Samplers and losses keep their own arithmetic in float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


# ATen's CPU element-wise kernels compute two vectors of the widest register at a time (32 fp32 or 64 bf16
# values with AVX-512; AVX2 needs half) and a tensor's last, partial group with scalar code, whose exp (std::exp,
# not SLEEF) may differ in the last bit: a sample lying in that group gets other bits than elsewhere in the
# batch. A batch of a multiple of this many masks gives every tensor a multiple of that many elements, so no
# tensor has a partial group.
CPU_BATCH_MULTIPLE = {"fp32": 32, "bf16": 64}


def batch_shape(batch_size: int, device: torch.device, precision: str) -> int:
    """The number of masks the network predicts at once for `batch_size` asked: on the CPU rounded up to a
    multiple of CPU_BATCH_MULTIPLE[precision], so that no sample falls into a kernel's scalar remainder;
    elsewhere `batch_size`."""
    if device.type != "cpu":
        return batch_size
    multiple = CPU_BATCH_MULTIPLE[precision]
    return -(-batch_size // multiple) * multiple


@dataclass(frozen=True)
class Runtime:
    """Where and in what arithmetic the network runs: a device, a precision already resolved ("fp32" or
    "bf16", see `resolve_precision`), and this process's place among the run's processes."""

    device: torch.device
    precision: str
    dist: Distributed = SINGLE

    def autocast(self) -> torch.autocast:
        return autocast(self.device, self.precision)
