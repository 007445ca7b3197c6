"""The surrogate catalogue: smooth activations and their derivatives.

SUGAR keeps ReLU in the forward pass and uses the derivative of one of these
functions in the backward pass. Each surrogate is also usable as a plain
forward activation, which is the paper's non-SUGAR control.

Every function here takes an array and the surrogate's hyperparameters as
keyword arguments, and is elementwise. Hyperparameters may be Python floats
or (traced) JAX arrays. This module depends on JAX alone.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# SELU's fixed constants (Klambauer et al., 2017).
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def bsilu(x: Array, alpha: Any = 1.67) -> Array:
  r"""B-SiLU: a SiLU shifted so that it has a bounded negative part.

  .. math:: f(x) = (x + \alpha)\,\sigma(x) - \alpha / 2

  Default: ``alpha = 1.67``, the paper's value.
  """
  return (x + alpha) * jax.nn.sigmoid(x) - alpha / 2


def bsilu_derivative(x: Array, alpha: Any = 1.67) -> Array:
  r""":math:`f'(x) = \sigma(x) + (x + \alpha)\,\sigma(x)(1 - \sigma(x))`."""
  s = jax.nn.sigmoid(x)
  return s + (x + alpha) * s * (1 - s)


def nelu(x: Array, alpha: Any = 0.1) -> Array:
  r"""NeLU: identity for positive inputs, a bump for negative ones.

  .. math:: f(x) = x \text{ if } x > 0 \text{ else } -\alpha / (1 + x^2)

  Default: ``alpha = 0.1``, the paper's value for ConvNeXt-style networks
  (and for CNNs generally); the paper's Swin runs use 0.01, which their
  configs set explicitly. The larger value is the default because it is
  the one used for convolutional networks, the models most users of a ReLU
  surrogate train.
  """
  return jnp.where(x > 0, x, -alpha / (1 + x * x))


def nelu_derivative(x: Array, alpha: Any = 0.1) -> Array:
  r""":math:`f'(x) = 1` for :math:`x > 0`, else :math:`2\alpha x/(1+x^2)^2`.

  The square is taken of :math:`1 + x^2`, not of :math:`x^2`.
  """
  # Squaring 1 + x^2 overflows float32 only past |x| ~ 1e9; dividing in
  # two steps keeps it finite for any finite x.
  denominator = 1 + x * x
  return jnp.where(x > 0, 1.0, 2 * alpha * x / denominator / denominator)


def leaky_relu(x: Array, alpha: Any = 0.01) -> Array:
  r""":math:`f(x) = x` for :math:`x > 0`, else :math:`\alpha x`.

  Default: ``alpha = 0.01``, the usual negative slope.
  """
  return jnp.where(x > 0, x, alpha * x)


def leaky_relu_derivative(x: Array, alpha: Any = 0.01) -> Array:
  r""":math:`f'(x) = 1` for :math:`x > 0`, else :math:`\alpha`."""
  return jnp.where(x > 0, 1.0, alpha * jnp.ones_like(x))


def elu(x: Array, alpha: Any = 1.0) -> Array:
  r""":math:`f(x) = x` for :math:`x > 0`, else :math:`\alpha(e^x - 1)`.

  Default: ``alpha = 1.0``.
  """
  return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))


def elu_derivative(x: Array, alpha: Any = 1.0) -> Array:
  r""":math:`f'(x) = 1` for :math:`x > 0`, else :math:`\alpha e^x`."""
  return jnp.where(x > 0, 1.0, alpha * jnp.exp(jnp.minimum(x, 0)))


def selu(x: Array) -> Array:
  r""":math:`f(x) = \lambda x` for :math:`x > 0`, else
  :math:`\lambda\alpha(e^x - 1)`, with SELU's fixed
  :math:`\lambda \approx 1.0507` and :math:`\alpha \approx 1.6733`."""
  return _SELU_SCALE * elu(x, _SELU_ALPHA)


def selu_derivative(x: Array) -> Array:
  r""":math:`f'(x) = \lambda` for :math:`x > 0`, else
  :math:`\lambda\alpha e^x`."""
  return _SELU_SCALE * elu_derivative(x, _SELU_ALPHA)


def gelu(x: Array) -> Array:
  r"""Exact GELU: :math:`f(x) = x\,\Phi(x)`, :math:`\Phi` the normal CDF."""
  return x * _normal_cdf(x)


def gelu_derivative(x: Array) -> Array:
  r""":math:`f'(x) = \Phi(x) + x\,\varphi(x)`, :math:`\varphi` the normal
  density."""
  density = jnp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
  return _normal_cdf(x) + x * density


def silu(x: Array) -> Array:
  r"""SiLU (swish): :math:`f(x) = x\,\sigma(x)`."""
  return x * jax.nn.sigmoid(x)


def silu_derivative(x: Array) -> Array:
  r""":math:`f'(x) = \sigma(x)\,(1 + x(1 - \sigma(x)))`."""
  s = jax.nn.sigmoid(x)
  return s * (1 + x * (1 - s))


def mish(x: Array) -> Array:
  r"""Mish: :math:`f(x) = x \tanh(\mathrm{softplus}(x))`."""
  return x * jnp.tanh(jax.nn.softplus(x))


def mish_derivative(x: Array) -> Array:
  r""":math:`f'(x) = t + x\,\sigma(x)(1 - t^2)`, with
  :math:`t = \tanh(\mathrm{softplus}(x))`."""
  t = jnp.tanh(jax.nn.softplus(x))
  return t + x * jax.nn.sigmoid(x) * (1 - t * t)


def _normal_cdf(x: Array) -> Array:
  return 0.5 * (1 + jax.lax.erf(x / math.sqrt(2)))


@dataclasses.dataclass(frozen=True)
class Surrogate:
  """A smooth elementwise function and its derivative.

  Attributes:
    name: the surrogate's name.
    function: ``function(x, **hyperparameters)``.
    derivative: ``derivative(x, **hyperparameters)``, the closed form of
      ``function``'s derivative. When omitted, it is obtained by forward-mode
      autodiff of ``function``, so any smooth elementwise function becomes a
      surrogate in one line: ``Surrogate("softsign", jax.nn.soft_sign)``.
    defaults: the hyperparameters and their default values.
    bounds: for each hyperparameter, the closed interval of valid values.
  """

  name: str
  function: Callable[..., Array]
  derivative: Callable[..., Array] | None = None
  defaults: Mapping[str, float] = dataclasses.field(default_factory=dict)
  bounds: Mapping[str, tuple[float, float]] = dataclasses.field(
    default_factory=dict
  )

  def __hash__(self) -> int:
    return hash((self.name, self.function, self.derivative))

  def derivative_at(self, x: Array, **hyperparameters: Any) -> Array:
    """The derivative at ``x``, in closed form or by autodiff."""
    if self.derivative is not None:
      return self.derivative(x, **hyperparameters)

    def function(x):
      return self.function(x, **hyperparameters)

    # The function is elementwise, so the JVP with a tangent of ones is the
    # derivative at every point; it stays differentiable for grad-of-grad.
    return jax.jvp(function, (x,), (jnp.ones_like(x),))[1]

  def hyperparameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
    """Fills in defaults and checks the given hyperparameters.

    Args:
      given: hyperparameters chosen by the caller; Python numbers or arrays.

    Returns:
      Every hyperparameter of the surrogate, with defaults filled in.

    Raises:
      TypeError: a hyperparameter is not a real number or a real array.
      ValueError: an unknown name, or a concrete value that is NaN,
        infinite or outside the surrogate's valid range.
    """
    unknown = sorted(set(given) - set(self.defaults))
    if unknown:
      accepted = ", ".join(sorted(self.defaults)) or "none"
      raise ValueError(
        f"surrogate {self.name!r} has no hyperparameter "
        f"{', '.join(map(repr, unknown))}; it accepts: {accepted}"
      )
    resolved = dict(self.defaults)
    for key, value in given.items():
      _check_hyperparameter(self.name, key, value, self.bounds.get(key))
      resolved[key] = value
    return resolved


def _check_hyperparameter(surrogate, key, value, bounds):
  where = f"hyperparameter {key!r} of surrogate {surrogate!r}"
  if isinstance(value, (bool, np.bool_)) or not isinstance(
    value, (int, float, np.generic, np.ndarray, jax.Array)
  ):
    raise TypeError(f"{where} must be a real number, got {value!r}")
  if not isinstance(value, (int, float)):
    dtype = jnp.result_type(value)
    if not (
      jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    ):
      raise TypeError(f"{where} must be real, got dtype {dtype}")
    if jnp.shape(value):
      raise TypeError(f"{where} must be a scalar, got shape {jnp.shape(value)}")
    if isinstance(value, jax.core.Tracer):
      return  # Traced values are only known at run time.
    value = float(value)
  if not math.isfinite(value):
    raise ValueError(f"{where} must be finite, got {value}")
  if bounds is not None and not bounds[0] <= value <= bounds[1]:
    raise ValueError(
      f"{where} must lie in [{bounds[0]}, {bounds[1]}], got {value}"
    )


_INF = math.inf

SURROGATES: dict[str, Surrogate] = {
  s.name: s
  for s in (
    Surrogate(
      "bsilu", bsilu, bsilu_derivative, {"alpha": 1.67}, {"alpha": (0, _INF)}
    ),
    Surrogate(
      "nelu", nelu, nelu_derivative, {"alpha": 0.1}, {"alpha": (0, _INF)}
    ),
    Surrogate(
      "leaky_relu",
      leaky_relu,
      leaky_relu_derivative,
      {"alpha": 0.01},
      {"alpha": (0, 1)},
    ),
    Surrogate("elu", elu, elu_derivative, {"alpha": 1.0}, {"alpha": (0, _INF)}),
    Surrogate("selu", selu, selu_derivative),
    Surrogate("gelu", gelu, gelu_derivative),
    Surrogate("silu", silu, silu_derivative),
    Surrogate("mish", mish, mish_derivative),
  )
}
"""The paper's surrogates, by name."""

PAPER_ORDER: tuple[str, ...] = (
    "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "bsilu", "nelu",
)  # fmt: skip
"""The surrogates in the order of the paper's tables."""


def get(surrogate: str | Surrogate | Callable[..., Array]) -> Surrogate:
  """Looks up a surrogate by name, or wraps a user's function.

  Args:
    surrogate: a name from :data:`SURROGATES`, a :class:`Surrogate`, or a
      smooth elementwise function of one array (its derivative then comes
      from autodiff).

  Returns:
    The :class:`Surrogate`.

  Raises:
    ValueError: an unknown name; the message lists the valid ones.
  """
  if isinstance(surrogate, Surrogate):
    return surrogate
  if isinstance(surrogate, str):
    if surrogate not in SURROGATES:
      raise ValueError(
        f"unknown surrogate {surrogate!r}; valid names: {', '.join(SURROGATES)}"
      )
    return SURROGATES[surrogate]
  if callable(surrogate):
    name = getattr(surrogate, "__name__", repr(surrogate))
    return Surrogate(name, surrogate)
  raise TypeError(
    f"a surrogate is a name, a Surrogate or a function, got {surrogate!r}"
  )
