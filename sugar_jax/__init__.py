"""sugar-jax: SUGAR surrogate gradients for ReLU networks in JAX and NNX."""

from sugar_jax import activations, surrogates
from sugar_jax.activations import resolve
from sugar_jax.core import sugar
from sugar_jax.surrogates import SURROGATES, Surrogate

__all__ = [
  "SURROGATES",
  "Surrogate",
  "activations",
  "resolve",
  "sugar",
  "surrogates",
]

__version__ = "0.1.0"
