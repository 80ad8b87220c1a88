"""Which decoder blocks make ddpm-features' pixel features: a range of output scales relative to the input,
or explicit block indices.

Baranchuk et al. chose guided-diffusion's decoder blocks {5, 6, 7, 8, 12} at 256 px, whose outputs are 32,
32, 32, 64 and 128 px: 1/8 to 1/2 of the input. A scale range carries that choice to any network and image
size. The setting is text: "1/8-1/2" (both ends included) or "1/4" is a scale range, "5,6,7,8,9" are indices
in the decoder's order (NoiseUNet's `decoder`, from the deepest level); text with a "/" is a scale range.

No torch import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from segbench import SegbenchError

SYNTAX = "a scale range such as 1/8-1/2 (output size / input size, both ends included) or block indices such as 5,6,7"


@dataclass(frozen=True)
class ScaleRange:
    """Every decoder block whose output is between `coarsest` and `finest` of the input's size."""

    coarsest: Fraction
    finest: Fraction

    def __str__(self) -> str:
        ends = (self.coarsest, self.finest) if self.coarsest != self.finest else (self.coarsest,)
        return "-".join(map(str, ends))


@dataclass(frozen=True)
class BlockIndices:
    """The decoder blocks `indices`, in this order."""

    indices: tuple[int, ...]

    def __str__(self) -> str:
        return ",".join(map(str, self.indices))


BlockChoice = ScaleRange | BlockIndices


@dataclass(frozen=True)
class ChosenBlocks:
    """The blocks a choice selects on one network, and `stand_in`: the network's coarsest scale where it
    stood in for a coarser end of the range (the network has no such level), else None."""

    indices: tuple[int, ...]
    stand_in: Fraction | None


def parse_block_choice(text: str) -> BlockChoice:
    """The setting's text as a `ScaleRange` or `BlockIndices`; one clear SegbenchError line otherwise."""
    try:
        if "/" in text:
            ends = sorted(Fraction(part.strip()) for part in text.split("-"))
            if len(ends) > 2 or not all(0 < end <= 1 for end in ends):
                raise ValueError
            return ScaleRange(ends[0], ends[-1])
        indices = tuple(int(part) for part in text.split(","))
    except (ValueError, ZeroDivisionError):
        raise SegbenchError(f"feature_blocks={text!r}: expected {SYNTAX}, scales in (0, 1]") from None
    if len(set(indices)) != len(indices):
        raise SegbenchError(f"feature_blocks={text!r} repeats a block")
    return BlockIndices(indices)


def choose_blocks(choice: BlockChoice, scales: Sequence[Fraction]) -> ChosenBlocks:
    """The decoder blocks `choice` selects, given each block's output scale (output size / input size, in
    decoder order). A range end coarser than the network's coarsest scale is read as that scale."""
    if isinstance(choice, BlockIndices):
        if not all(0 <= b < len(scales) for b in choice.indices):
            raise SegbenchError(f"feature_blocks={str(choice)!r}: this U-Net has decoder blocks 0..{len(scales) - 1}")
        return ChosenBlocks(choice.indices, None)
    coarsest = min(scales)
    low, high = max(choice.coarsest, coarsest), max(choice.finest, coarsest)
    indices = tuple(b for b, scale in enumerate(scales) if low <= scale <= high)
    if not indices:
        raise SegbenchError(f"feature_blocks={str(choice)!r}: no decoder block of this U-Net is at those scales (it has "
                            f"{', '.join(map(str, sorted(set(scales))))})")
    return ChosenBlocks(indices, coarsest if choice.coarsest < coarsest else None)
