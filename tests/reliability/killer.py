"""`python -m tests.reliability.killer WHERE N ARGS...`: the segbench CLI, killed with SIGKILL at a chosen point.

WHERE is `train` (the Nth training step starts), `predict` (the Nth prediction batch starts), or a
file name such as `per_image.csv`: the Nth atomic write of that file dies after writing its temporary
file, before the rename. ARGS are the CLI's (the toy plugins are added). N = 0 never kills.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def main() -> None:
    where, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))  # as tests/conftest.py: same arithmetic as in-process runs
    from tests.toy_plugin import ToyCNN

    calls = 0

    def tick() -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            os.kill(os.getpid(), signal.SIGKILL)

    def counting(method):
        def wrapper(*a, **k):
            tick()
            return method(*a, **k)
        return wrapper

    if where == "train":
        ToyCNN.training_loss = counting(ToyCNN.training_loss)
    elif where == "predict":
        ToyCNN.predict = counting(ToyCNN.predict)
    else:
        replace = os.replace

        def dying_replace(src, dst, *a, **k):
            if Path(dst).name == where:
                tick()
            return replace(src, dst, *a, **k)

        os.replace = dying_replace
    sys.argv = ["segbench", "--plugin", "tests.toy_plugin", "--plugin", "tests.reliability.faulty_plugin", *args]
    from segbench.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
