"""`python -m tests.reliability.killer WHERE N ARGS...`: the segbench CLI, killed with SIGKILL at a chosen point.

WHERE is `train` (the Nth training step starts, in any stage: the calls of every stage's loss count),
`predict` (the Nth prediction batch starts; the pass of one mask that counts FLOPs is not a batch: CPU
batches are multiples of 32 masks; nor is the pass that counts a training step's FLOPs a step), either of
them as `train@MODEL` / `predict@MODEL` to count only that model's calls (any registered model: the
factories are wrapped, so built-in models are killed as the toy ones are), or a file name such as
`per_image.csv`: the Nth atomic write of that file dies after writing its temporary file, before the
rename. ARGS are the CLI's (the toy plugins are added). N = 0 never kills.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import types
from pathlib import Path


def counting_flops() -> bool:
    """Whether the engine is counting FLOPs (its counts run under torch.utils.flop_counter's dispatch mode):
    a call made then is not a training step or prediction batch."""
    from torch.utils._python_dispatch import is_in_torch_dispatch_mode

    return is_in_torch_dispatch_mode()


def main() -> None:
    where, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    import torch

    # as tests/conftest.py (same arithmetic as in-process runs), unless the caller fixed the thread count, as the
    # distributed tests do for torchrun's workers: CPU kernels may round differently with another count
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))
    from segbench import cli, plugins

    calls = 0

    def tick() -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            os.kill(os.getpid(), signal.SIGKILL)

    kind, _, only = where.partition("@")
    if kind in ("train", "predict"):
        def counting(factory, name, stages):
            methods = {stage.loss for stage in stages if not stage.fit} if kind == "train" else {"predict"}

            def build(values):
                model = factory(values)
                full = f"{name}:{values['variant']}" if "variant" in values else name
                for method in methods if not only or only == full else ():
                    def counted(self, *a, original=getattr(type(model), method), **k):
                        if not counting_flops() and (kind == "train" or len(a[0]) > 1):
                            tick()
                        return original(self, *a, **k)

                    # an instance attribute shadows the method; bound, so that the copy a training FLOP count
                    # makes (copy.deepcopy) runs itself, not this model
                    object.__setattr__(model, method, types.MethodType(counted, model))
                return model
            return build

        load_plugins = plugins.load_plugins

        def load_counting(*a, **k):
            registry = load_plugins(*a, **k)
            registry.specs["models"] = {name: dataclasses.replace(spec, factory=counting(spec.factory, name, spec.stages))
                                        for name, spec in registry.specs["models"].items()}
            return registry

        cli.load_plugins = plugins.load_plugins = load_counting  # the CLI's registry and a study cell's
    else:
        replace = os.replace

        def dying_replace(src, dst, *a, **k):
            if Path(dst).name == where:
                tick()
            return replace(src, dst, *a, **k)

        os.replace = dying_replace
    sys.argv = ["segbench", "--plugin", "tests.toy_plugin", "--plugin", "tests.reliability.faulty_plugin", *args]
    cli.main()


if __name__ == "__main__":
    main()
