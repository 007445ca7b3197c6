"""Scaling a model's channel and feature counts by a width multiplier.

Every model takes a `width` that multiplies each of its channel or feature
counts, so the same architecture (same layers, same number of
nonlinearities) can be shrunk for quick runs on a CPU.
"""

import math


def check_width(width: float) -> None:
  """Raises ValueError unless `width` is a positive, finite number."""
  if not (isinstance(width, int | float) and math.isfinite(width)):
    raise ValueError(f"width must be a finite number, got {width!r}.")
  if width <= 0:
    raise ValueError(f"width must be positive, got {width!r}.")


def scale(features: int, width: float, multiple: int = 1) -> int:
  """Returns `features * width` rounded to a positive multiple of `multiple`.

  Args:
    features: the channel or feature count at width 1.
    width: the multiplier; must be positive.
    multiple: the result is a multiple of this (e.g. the number of attention
      heads, so that every head gets the same number of features).

  Returns:
    The nearest multiple of `multiple` to `features * width`, at least
    `multiple`. At width 1, `features` itself when it is such a multiple.
  """
  check_width(width)
  return max(multiple, round(features * width / multiple) * multiple)
