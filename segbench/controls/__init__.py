"""Controls: models registered beside another to isolate what it adds (public: plugins declare them)."""

from segbench.controls.direct import DIRECT, direct_control

__all__ = ["DIRECT", "direct_control"]
