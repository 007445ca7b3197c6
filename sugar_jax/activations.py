"""Activations by name, for models and configs.

The names are:

* ``"relu"``: plain ReLU.
* each surrogate's name (``"bsilu"``, ``"nelu"``, ``"leaky_relu"``,
  ``"elu"``, ``"selu"``, ``"gelu"``, ``"silu"``, ``"mish"``): that smooth
  function as the forward activation, with its own gradient. These are the
  paper's non-SUGAR controls.
* ``"sugar_"`` followed by a surrogate's name (``"sugar_bsilu"``,
  ``"sugar_nelu"``, ...): ReLU forward with that surrogate's gradient.

:func:`resolve` turns a name into an :class:`ActivationFunction`, a frozen,
hashable callable: two resolutions of the same name and hyperparameters are
equal, so storing one as a static attribute of an NNX module never causes a
retrace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from sugar_jax import surrogates as surrogates_lib
from sugar_jax.core import sugar

Array = jax.Array

SUGAR_PREFIX = "sugar_"

NAMES: tuple[str, ...] = (
  ("relu",)
  + tuple(surrogates_lib.SURROGATES)
  + tuple(SUGAR_PREFIX + name for name in surrogates_lib.SURROGATES)
)
"""Every activation name :func:`resolve` accepts."""


@dataclasses.dataclass(frozen=True)
class ActivationFunction:
  """An activation given by name and hyperparameters.

  Attributes:
    name: one of :data:`NAMES`.
    hyperparameters: sorted ``(key, value)`` pairs; for SUGAR activations
      they may include ``negative_only`` and ``residual_dtype`` (see
      :func:`sugar_jax.sugar`).
  """

  name: str
  hyperparameters: tuple[tuple[str, Any], ...] = ()

  def __call__(self, x: Array) -> Array:
    options = dict(self.hyperparameters)
    if self.name == "relu":
      return jax.nn.relu(x)
    if self.name.startswith(SUGAR_PREFIX):
      return sugar(x, self.name.removeprefix(SUGAR_PREFIX), **options)
    return surrogates_lib.SURROGATES[self.name].function(x, **options)

  @property
  def is_sugar(self) -> bool:
    """Whether this is ReLU with a surrogate gradient."""
    return self.name.startswith(SUGAR_PREFIX)


def takes_alpha(name: str) -> bool:
  """Whether the named activation has an ``alpha`` hyperparameter."""
  surrogate = name.removeprefix(SUGAR_PREFIX)
  spec = surrogates_lib.SURROGATES.get(surrogate)
  return spec is not None and "alpha" in spec.defaults


def resolve(
  activation: str | Callable[[Array], Array], **hyperparameters: Any
) -> Callable[[Array], Array]:
  """Resolves an activation name (or passes a callable through).

  Args:
    activation: a name from :data:`NAMES`, or a callable, returned as it is.
    **hyperparameters: the surrogate's hyperparameters, such as ``alpha``;
      a value of None means the default. SUGAR activations also accept
      ``negative_only`` and ``residual_dtype``.

  Returns:
    A callable of one array. For a name, an :class:`ActivationFunction`.

  Raises:
    ValueError: an unknown name (the message lists the valid ones), or an
      unknown or invalid hyperparameter.
    TypeError: a hyperparameter of the wrong type.

  Examples:
    >>> from sugar_jax import activations
    >>> act = activations.resolve("sugar_nelu", alpha=0.01)
    >>> act == activations.resolve("sugar_nelu", alpha=0.01)
    True
  """
  given = {k: v for k, v in hyperparameters.items() if v is not None}
  if callable(activation) and not isinstance(activation, str):
    if given:
      raise ValueError(
        "hyperparameters apply to named activations only; bind them into "
        f"the callable instead, got {sorted(given)}"
      )
    return activation
  if activation not in NAMES:
    raise ValueError(
      f"unknown activation {activation!r}; valid names: {', '.join(NAMES)}"
    )

  sugar_options = {}
  if activation.startswith(SUGAR_PREFIX):
    for key in ("negative_only", "residual_dtype"):
      if key in given:
        sugar_options[key] = given.pop(key)
    if "negative_only" in sugar_options:
      sugar_options["negative_only"] = bool(sugar_options["negative_only"])
  if activation == "relu":
    if given:
      raise ValueError(f"relu takes no hyperparameters, got {sorted(given)}")
  else:
    surrogate = activation.removeprefix(SUGAR_PREFIX)
    surrogates_lib.SURROGATES[surrogate].hyperparameters(given)
  options = tuple(sorted((given | sugar_options).items()))
  return ActivationFunction(activation, options)
