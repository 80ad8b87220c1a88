"""Data preparation: resize once to the run's size, validate, cache as uint8 arrays."""

from segbench.data.prepare import SplitData, load_split

__all__ = ["SplitData", "load_split"]
