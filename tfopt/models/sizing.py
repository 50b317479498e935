"""Sizing rules shared by the model families: the one width-rounding rule, the map-size check."""

from __future__ import annotations


def scale_channels(channels: int, width_multiplier: float = 1.0, *, divisor: int = 1,
                   minimum: int | None = None) -> int:
    """`channels` x `width_multiplier` rounded to a multiple of `divisor` (MobileNet's rule).

    Rounds half up to the nearest multiple, never below `minimum` (default: `divisor`), and adds
    one `divisor` if rounding lost more than 10% of the scaled value. A count that is already a
    multiple of `divisor` (and >= `minimum`) is unchanged at width 1.0, so every width-1 network
    keeps its exact published channel counts. E.g. divisor 8 maps the ghost plan's 10/22/42/86
    to the 16/24/40/88 of ResNet-101 variants 13/14.

    Args:
      channels: Channel count at width 1.0.
      width_multiplier: Scale factor (> 0).
      divisor: The result is a multiple of this (grouped convs, shuffles, fire splits).
      minimum: Lower bound of the result; defaults to `divisor`.

    Returns:
      The scaled channel count (int).
    """
    minimum = divisor if minimum is None else minimum
    value = channels * width_multiplier
    new = max(minimum, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def check_map_size(x, need: int, model: str, where: str) -> None:
    """A one-line ValueError if the feature map of `x` is smaller than need x need."""
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None or h < need or w < need:
        raise ValueError(f"{model}: the feature map is {h}x{w} {where} but needs at least "
                         f"{need}x{need}; use a larger input_shape (e.g. (32, 32, 3))")
