"""SUGAR: ReLU forward, a surrogate's derivative backward.

SUGAR (surrogate gradient for ReLU, Horuz et al., 2025) keeps ``relu(x)``
exactly in the forward pass and, in the backward pass, multiplies the
incoming cotangent by the derivative of a smooth surrogate at ``x``. Units
whose input is negative still receive gradient, so a dead ReLU can become
active again. This module depends on JAX alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from sugar_jax import surrogates as surrogates_lib

Array = jax.Array


def sugar(
  x: Array,
  surrogate: str | surrogates_lib.Surrogate | Callable[..., Array] = "bsilu",
  *,
  negative_only: bool = False,
  residual_dtype: Any = None,
  **hyperparameters: Any,
) -> Array:
  r"""ReLU with the gradient of a smooth surrogate.

  .. math::

    \mathrm{forward}(x) = \max(x, 0), \qquad
    \bar{x} = \bar{y} \cdot f'(x)

  where :math:`f` is the surrogate and :math:`\bar{y}` the incoming
  cotangent. The forward pass is exactly ``jax.nn.relu`` (bit for bit,
  including 0, infinities and NaN). The backward pass saves ``x`` alone and
  computes :math:`f'` in float32 (or in ``x``'s dtype if wider), returning a
  gradient of ``x``'s dtype.

  Reverse mode composes freely (``grad``, grad-of-grad, which gives
  :math:`\bar{y} f''(x)`, ``vmap``, ``jit``, ``checkpoint``, ``scan``,
  sharded inputs). Forward mode through the activation itself
  (``jax.jvp``, ``jax.jacfwd``) is not defined for a custom VJP and raises
  JAX's ``TypeError``: use ``jax.vjp`` or ``jax.jacrev``. Forward over
  reverse, as in ``jax.hessian``, works, because forward mode then only
  meets the backward pass, which is made of ordinary operations.

  Args:
    x: a floating-point array.
    surrogate: a name from :data:`sugar_jax.surrogates.SURROGATES`
      (``"bsilu"``, ``"nelu"``, ``"leaky_relu"``, ``"elu"``, ``"selu"``,
      ``"gelu"``, ``"silu"``, ``"mish"``), a
      :class:`~sugar_jax.surrogates.Surrogate`, or any smooth elementwise
      function, whose derivative then comes from autodiff.
    negative_only: if True, keep ReLU's gradient of 1 where ``x > 0`` and use
      the surrogate's derivative only where ``x <= 0``, the variant of some
      public PyTorch versions. The default, False, is the paper's: the
      surrogate's derivative everywhere.
    residual_dtype: the dtype in which ``x`` is saved for the backward pass.
      None (the default) saves ``x`` as it is. A narrower type such as
      ``jnp.bfloat16`` halves the memory of a float32 residual at the cost of
      evaluating the derivative at a rounded ``x``.
    **hyperparameters: the surrogate's hyperparameters, such as ``alpha``;
      Python numbers or scalar arrays. Pass an array (for example, an
      argument of a jitted function) to change it without recompiling.

  Returns:
    ``jax.nn.relu(x)``.

  Raises:
    TypeError: ``x`` is not floating point (integers and booleans are not
      cast), or a hyperparameter is not a real scalar.
    ValueError: an unknown surrogate or hyperparameter, or an invalid value.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from sugar_jax import sugar
    >>> x = jnp.array([-1.0, 0.0, 2.0])
    >>> sugar(x)
    Array([0., 0., 2.], dtype=float32)
    >>> jax.grad(lambda x: sugar(x).sum())(jnp.array(0.0))
    Array(0.9175, dtype=float32)
  """
  x = _as_float_array(x)
  spec = surrogates_lib.get(surrogate)
  resolved = spec.hyperparameters(hyperparameters)

  # Python numbers stay static (the residual is then x alone); arrays are
  # traced, so a jitted caller can change them without recompiling.
  static = tuple(
    (key, value)
    for key, value in sorted(resolved.items())
    if isinstance(value, (int, float))
  )
  traced_keys = tuple(sorted(set(resolved) - {key for key, _ in static}))
  traced = tuple(jnp.asarray(resolved[key]) for key in traced_keys)
  if residual_dtype is not None:
    residual_dtype = jnp.dtype(residual_dtype)
    if not jnp.issubdtype(residual_dtype, jnp.floating):
      raise TypeError(
        f"residual_dtype must be a floating dtype, got {residual_dtype}"
      )
  return _sugar(
    spec, bool(negative_only), residual_dtype, static, traced_keys, x, traced
  )


def _as_float_array(x: Any) -> Array:
  dtype = jnp.result_type(x)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(
      f"sugar takes a floating-point array, got dtype {dtype}; cast it "
      "explicitly if that is what you mean"
    )
  return jnp.asarray(x)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4))
def _sugar(spec, negative_only, residual_dtype, static, traced_keys, x, traced):
  del spec, negative_only, residual_dtype, static, traced_keys, traced
  return jax.nn.relu(x)


def _sugar_forward(
  spec, negative_only, residual_dtype, static, traced_keys, x, traced
):
  del spec, negative_only, static, traced_keys
  saved = x if residual_dtype is None else x.astype(residual_dtype)
  return jax.nn.relu(x), (saved, traced)


def _sugar_backward(
  spec, negative_only, residual_dtype, static, traced_keys, residuals, g
):
  del residual_dtype
  x, traced = residuals
  compute_dtype = jnp.promote_types(g.dtype, jnp.float32)
  x = x.astype(compute_dtype)
  hyperparameters = dict(static) | dict(zip(traced_keys, traced, strict=True))
  derivative = spec.derivative_at(x, **hyperparameters)
  if negative_only:
    derivative = jnp.where(x > 0, 1.0, derivative)
  dx = (g.astype(compute_dtype) * derivative).astype(g.dtype)
  # The forward pass does not depend on the hyperparameters.
  return dx, tuple(jnp.zeros_like(value) for value in traced)


_sugar.defvjp(_sugar_forward, _sugar_backward)
