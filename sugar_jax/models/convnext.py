"""ConvNeXt for small images ("Conv2NeXt" in the SUGAR paper's tables).

The ConvNeXt of Liu et al. (2022) with a patchify stem sized for 32x32 or
64x64 inputs: a `patch_size` x `patch_size` convolution with that stride
(2 by default, so a 32x32 image becomes a 16x16 grid and the last stage
sees 2x2) and LayerNorm; then four stages of ConvNeXt blocks with a
LayerNorm and a 2x2 stride-2 convolution between stages; global average
pooling, LayerNorm and a linear classifier. Stochastic depth is left out.

A block is a 7x7 depthwise convolution, LayerNorm, a pointwise expansion
to 4x the channels, the activation (GELU natively), a pointwise
projection back, a learned per-channel layer scale, and the residual sum:
one nonlinearity per block.

Parameter count at width 1 for 10 classes with the ConvNeXt-T defaults
(depths (3, 3, 9, 3), dims (96, 192, 384, 768)) and a 2x2 stem:
27,824,362. With the original 4x4 stem and 1000 classes it is ConvNeXt-T's
28,589,128.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from sugar_jax import nn
from sugar_jax.models import _width

_INIT = nnx.initializers.truncated_normal(stddev=0.02)


def _layer_norm(features: int, rngs: nnx.Rngs) -> nnx.LayerNorm:
  return nnx.LayerNorm(features, epsilon=1e-6, rngs=rngs)


class ConvNeXtBlock(nnx.Module):
  """Depthwise 7x7 conv, LayerNorm, inverted bottleneck, layer scale."""

  def __init__(
    self,
    dim: int,
    *,
    activation: str | Callable[[jax.Array], jax.Array],
    layer_scale_init: float,
    rngs: nnx.Rngs,
  ):
    self.depthwise_conv = nnx.Conv(
      dim,
      dim,
      (7, 7),
      padding="SAME",
      feature_group_count=dim,
      kernel_init=_INIT,
      rngs=rngs,
    )
    self.norm = _layer_norm(dim, rngs)
    self.expand = nnx.Linear(dim, 4 * dim, kernel_init=_INIT, rngs=rngs)
    self.activation = nn.Activation(activation)
    self.project = nnx.Linear(4 * dim, dim, kernel_init=_INIT, rngs=rngs)
    self.layer_scale = nnx.Param(jnp.full((dim,), layer_scale_init))

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.norm(self.depthwise_conv(x))
    y = self.project(self.activation(self.expand(y)))
    return x + self.layer_scale[...] * y


class Downsample(nnx.Module):
  """LayerNorm, then a 2x2 stride-2 convolution between two stages."""

  def __init__(self, in_dim: int, out_dim: int, *, rngs: nnx.Rngs):
    self.norm = _layer_norm(in_dim, rngs)
    self.conv = nnx.Conv(
      in_dim,
      out_dim,
      (2, 2),
      strides=(2, 2),
      padding="VALID",
      kernel_init=_INIT,
      rngs=rngs,
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.conv(self.norm(x))


class ConvNeXt(nnx.Module):
  """ConvNeXt with a small patchify stem, for NHWC images."""

  def __init__(
    self,
    num_classes: int,
    *,
    image_shape: Sequence[int] = (32, 32, 3),
    activation: str | Callable[[jax.Array], jax.Array] = "gelu",
    width: float = 1.0,
    depths: Sequence[int] = (3, 3, 9, 3),
    dims: Sequence[int] = (96, 192, 384, 768),
    patch_size: int = 2,
    layer_scale_init: float = 1e-6,
    rngs: nnx.Rngs,
  ):
    """Builds the model.

    Args:
      num_classes: number of logits.
      image_shape: (height, width, channels) of an input image. Height and
        width must be divisible by `patch_size * 2 ** (len(depths) - 1)`.
      activation: the nonlinearity of every block, a name known to
        `sugar_jax.activations.resolve` or a callable.
      width: multiplies every entry of `dims`.
      depths: the number of blocks in each stage.
      dims: the channels of each stage at width 1.
      patch_size: side and stride of the stem's patchify convolution.
      layer_scale_init: initial value of every block's layer scale.
      rngs: the random streams for parameter initialization.
    """
    if len(depths) != len(dims):
      raise ValueError(
        f"depths {tuple(depths)} and dims {tuple(dims)} must have one "
        "entry per stage."
      )
    reduction = patch_size * 2 ** (len(depths) - 1)
    if image_shape[0] % reduction or image_shape[1] % reduction:
      raise ValueError(
        f"image size {tuple(image_shape[:2])} is not divisible by "
        f"{reduction}, the stem's patch size times the downsampling "
        "between stages."
      )
    dims = [_width.scale(dim, width) for dim in dims]

    self.stem_conv = nnx.Conv(
      image_shape[-1],
      dims[0],
      (patch_size, patch_size),
      strides=(patch_size, patch_size),
      padding="VALID",
      kernel_init=_INIT,
      rngs=rngs,
    )
    self.stem_norm = _layer_norm(dims[0], rngs)
    self.downsamples = nnx.List(
      [
        Downsample(in_dim, out_dim, rngs=rngs)
        for in_dim, out_dim in zip(dims[:-1], dims[1:], strict=True)
      ]
    )
    self.stages = nnx.List(
      [
        nnx.List(
          [
            ConvNeXtBlock(
              dim,
              activation=activation,
              layer_scale_init=layer_scale_init,
              rngs=rngs,
            )
            for _ in range(depth)
          ]
        )
        for depth, dim in zip(depths, dims, strict=True)
      ]
    )
    self.norm = _layer_norm(dims[-1], rngs)
    self.classifier = nnx.Linear(
      dims[-1], num_classes, kernel_init=_INIT, rngs=rngs
    )

  def __call__(self, images: jax.Array) -> jax.Array:
    """Maps images (B, H, W, C) to logits (B, num_classes)."""
    x = self.stem_norm(self.stem_conv(images))
    for index, stage in enumerate(self.stages):
      if index > 0:
        x = self.downsamples[index - 1](x)
      for block in stage:
        x = block(x)

    features = self.norm(jnp.mean(x, axis=(1, 2)))
    return self.classifier(features)
