"""Loading a local state-dict file into a whole network or into its encoder."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from segbench import SegbenchError


def load_weights(net: nn.Module, path: str | Path, encoder: nn.Module) -> str:
    """Load `path` into `net` if its keys match the whole network, else into `encoder`.

    A segbench checkpoint (last.pt) or a Segmenter's state dict (keys "net.<...>")
    loads too. Loading is strict and uses weights_only=True. Returns "model" or "encoder"; raises
    SegbenchError for a missing file or keys that fit neither.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise SegbenchError(f"weights_path {str(path)!r} does not exist or is not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise SegbenchError(f"weights_path {str(path)!r} is not a loadable state dict: {exc}") from None
    if not isinstance(state, dict):
        raise SegbenchError(f"weights_path {str(path)!r} holds a {type(state).__name__}, not a state dict")
    if isinstance(state.get("model"), dict):  # a segbench checkpoint
        state = state["model"]
    if state and all(key.startswith("net.") for key in state):
        state = {key.removeprefix("net."): value for key, value in state.items()}

    for target, module in (("model", net), ("encoder", encoder)):
        if set(state) == set(module.state_dict()):
            try:
                module.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[-1].strip()
                raise SegbenchError(f"weights_path {str(path)!r} does not fit the {target}: {first}") from None
            return target
    missing = sorted(set(net.state_dict()) - set(state))[:3]
    raise SegbenchError(
        f"weights_path {str(path)!r}: its {len(state)} keys match neither the model nor its encoder "
        f"(e.g. model keys {missing} are absent)"
    )
