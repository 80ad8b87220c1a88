"""Whether pinning the CPU kernel paths makes a run's bytes independent of the host, and what it costs.

    python benchmarks/kernel_pinning.py [--preset tiny|small] [--tasks infection]
    # results/kernel_pinning-<preset>.json

Runs the main job (`segbench run --task T --models diff-add,unet`, fresh cache each) under environments
side by side: the host's own kernels; ATen pinned to AVX2 (ATEN_CPU_CAPABILITY=avx2); that plus oneDNN
pinned (ONEDNN_MAX_CPU_ISA=AVX2); that plus MKL's reproducibility mode (MKL_CBWR=AVX2,STRICT), with the
machine's threads and with one; and the ATen default (scalar) path. For each: wall time and the SHA-256 of per_image.csv and every prediction archive, so
equal hashes mean the same bytes. A run on an AVX2-only host would see what the AVX2 rows see only if every
pinned library chose the same code there; oneDNN also blocks its loops by the cache sizes it detects, which
no variable pins, and that cannot be tested on one machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_json

PINS = {
    "host": {},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten+onednn-avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "aten+onednn+mkl-avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"},
    "aten+onednn+mkl-avx2, 1 thread": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                       "MKL_CBWR": "AVX2,STRICT", "OMP_NUM_THREADS": "1"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
}
PINNED = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS")


def digest(folder: Path) -> str:
    files = [folder / "per_image.csv", *sorted((folder / "predictions").glob("*.npz"))]
    return hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()[:16]


def run(task: str, preset: str, pins: dict[str, str], workdir: Path) -> dict[str, object]:
    out = workdir / "run"
    env = {**{k: v for k, v in os.environ.items() if k not in PINNED}, **pins,
           "SEGBENCH_CACHE": str(workdir / "cache")}
    command = [sys.executable, "-m", "segbench", "run", "--task", task, "--models", "diff-add,unet", "--preset",
               preset, "--out", str(out), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return {"pins": pins, "wall_seconds": round(time.perf_counter() - start, 1), "sha256": digest(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--tasks", default="infection")
    args = parser.parse_args()
    rows = {}
    for task in args.tasks.split(","):
        for name, pins in PINS.items():
            with tempfile.TemporaryDirectory() as tmp:
                rows[f"{task}/{name}"] = row = run(task, args.preset, pins, Path(tmp))
            print(f"{task:10s} {name:22s} {row['wall_seconds']:7.1f} s  {row['sha256']}", flush=True)
    write_json(f"kernel_pinning-{args.preset}", {"preset": args.preset, "runs": rows})


if __name__ == "__main__":
    main()
