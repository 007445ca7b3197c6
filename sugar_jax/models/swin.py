"""Swin Transformer for small images.

The Swin Transformer of Liu et al. (2021) sized for 32x32 or 64x64 inputs:
a `patch_size` x `patch_size` patch embedding (2 by default, so a 32x32
image becomes a 16x16 grid of tokens) with LayerNorm; stages of Swin
blocks with patch merging between stages; a final LayerNorm, global
average pooling and a linear classifier. Dropout, stochastic depth and the
absolute position embedding are left out.

A Swin block is multi-head self-attention within non-overlapping windows
of `window_size` x `window_size` tokens, with a learned relative position
bias, followed by an MLP; both are pre-norm residual branches. Every other
block cyclically shifts the grid by half a window first, so information
crosses window borders; an attention mask keeps tokens that the shift
brought together from opposite edges of the grid from attending to each
other. Where a stage's grid is no larger than a window, the window shrinks
to the grid and nothing is shifted.

Only the MLP's nonlinearity (GELU natively) is swappable: one per block.
The attention softmax stays.

Parameter count at width 1 for 10 classes with the Swin-T defaults
(embed_dim 96, depths (2, 2, 6, 2), num_heads (3, 6, 12, 24)), 32x32
inputs, patch size 2 and window 4: 27,505,108. With the original 224x224
inputs, patch size 4, window 7 and 1000 classes it is Swin-T's 28,288,354.
"""

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sugar_jax import nn
from sugar_jax.models import _width

_INIT = nnx.initializers.truncated_normal(stddev=0.02)


def window_partition(x: jax.Array, window_size: int) -> jax.Array:
  """Splits a grid of tokens into windows.

  Args:
    x: tokens (B, H, W, C), H and W divisible by `window_size`.
    window_size: the side of a square window.

  Returns:
    (B * num_windows, window_size ** 2, C), windows in row-major order
    within each image, tokens in row-major order within each window.
  """
  b, h, w, c = x.shape
  s = window_size
  x = x.reshape(b, h // s, s, w // s, s, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b * (h // s) * (w // s), s * s, c)


def window_reverse(windows: jax.Array, height: int, width: int) -> jax.Array:
  """Inverts `window_partition`: windows back to a (B, H, W, C) grid."""
  num_windows_batch, tokens, c = windows.shape
  s = math.isqrt(tokens)
  b = num_windows_batch // ((height // s) * (width // s))
  x = windows.reshape(b, height // s, width // s, s, s, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, height, width, c)


@functools.cache
def shifted_window_mask(
  height: int, width: int, window_size: int, shift_size: int
) -> np.ndarray:
  """Which tokens may attend to which after a cyclic shift of the grid.

  Rolling the grid up and left by `shift_size` moves the top rows and left
  columns to the bottom and right; those wrapped tokens share windows with
  tokens they were never next to. A token at shifted row i came from
  original row (i + shift_size) mod height and wrapped iff
  i >= height - shift_size (likewise for columns). Two tokens of a window
  may attend to each other iff they wrapped alike along both axes.

  Args:
    height: grid height, divisible by `window_size`.
    width: grid width, divisible by `window_size`.
    window_size: the side of a square window.
    shift_size: how far the grid was rolled along each axis.

  Returns:
    A boolean array (num_windows, window_size ** 2, window_size ** 2),
    True where the query token (second axis) may attend to the key token
    (third axis).
  """
  row_wrapped = np.arange(height) >= height - shift_size
  col_wrapped = np.arange(width) >= width - shift_size
  region = 2 * row_wrapped[:, None] + col_wrapped[None, :]
  region = window_partition(region[None, :, :, None], window_size)[..., 0]
  mask = region[:, :, None] == region[:, None, :]
  mask.setflags(write=False)  # Cached and shared by every call.
  return mask


@functools.cache
def relative_position_index(window_size: int) -> np.ndarray:
  """Indexes a relative position bias table by pairs of window tokens.

  Args:
    window_size: the side of a square window.

  Returns:
    An int array (window_size ** 2, window_size ** 2) whose entry for
    tokens p and q is the row in a ((2 * window_size - 1) ** 2)-row table of
    their offset (row of p - row of q, column of p - column of q).
  """
  rows, cols = np.divmod(np.arange(window_size**2), window_size)
  row_offset = rows[:, None] - rows[None, :] + window_size - 1
  col_offset = cols[:, None] - cols[None, :] + window_size - 1
  index = row_offset * (2 * window_size - 1) + col_offset
  index.setflags(write=False)  # Cached and shared by every call.
  return index


class WindowAttention(nnx.Module):
  """Multi-head self-attention within windows, with relative position bias."""

  def __init__(
    self, dim: int, num_heads: int, window_size: int, *, rngs: nnx.Rngs
  ):
    self.num_heads = num_heads
    self.window_size = window_size
    self.qkv = nnx.Linear(dim, 3 * dim, kernel_init=_INIT, rngs=rngs)
    self.relative_position_bias = nnx.Param(
      _INIT(rngs.params(), ((2 * window_size - 1) ** 2, num_heads))
    )
    self.projection = nnx.Linear(dim, dim, kernel_init=_INIT, rngs=rngs)

  def __call__(
    self, windows: jax.Array, mask: np.ndarray | None = None
  ) -> jax.Array:
    """Attends within each window.

    Args:
      windows: (B * num_windows, tokens, dim).
      mask: None, or booleans (num_windows, tokens, tokens), True where a
        query may attend to a key.

    Returns:
      (B * num_windows, tokens, dim).
    """
    batch_windows, tokens, dim = windows.shape
    head_dim = dim // self.num_heads
    qkv = self.qkv(windows).reshape(
      batch_windows, tokens, 3, self.num_heads, head_dim
    )
    query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]

    logits = jnp.einsum("bqhd,bkhd->bhqk", query * head_dim**-0.5, key)
    bias = self.relative_position_bias[...][
      relative_position_index(self.window_size)
    ]
    logits = logits + bias.transpose(2, 0, 1)
    if mask is not None:
      num_windows = mask.shape[0]
      logits = logits.reshape(
        batch_windows // num_windows, num_windows, self.num_heads, tokens, -1
      )
      # Every token may attend to itself, so no row is fully masked.
      logits = jnp.where(
        mask[None, :, None], logits, jnp.finfo(logits.dtype).min
      )
      logits = logits.reshape(batch_windows, self.num_heads, tokens, -1)
    weights = jax.nn.softmax(logits, axis=-1)

    attended = jnp.einsum("bhqk,bkhd->bqhd", weights, value)
    return self.projection(attended.reshape(batch_windows, tokens, dim))


class SwinBlock(nnx.Module):
  """(Shifted) window attention and an MLP, each a pre-norm residual."""

  def __init__(
    self,
    dim: int,
    num_heads: int,
    window_size: int,
    shift_size: int,
    *,
    activation: str | Callable[[jax.Array], jax.Array],
    mlp_ratio: float,
    rngs: nnx.Rngs,
  ):
    self.window_size = window_size
    self.shift_size = shift_size
    self.attention_norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs)
    self.attention = WindowAttention(dim, num_heads, window_size, rngs=rngs)
    hidden = int(dim * mlp_ratio)
    self.mlp_norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs)
    self.mlp_expand = nnx.Linear(dim, hidden, kernel_init=_INIT, rngs=rngs)
    self.activation = nn.Activation(activation)
    self.mlp_project = nnx.Linear(hidden, dim, kernel_init=_INIT, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps tokens (B, H, W, dim) to tokens of the same shape."""
    _, height, width, _ = x.shape
    shift = self.shift_size

    y = self.attention_norm(x)
    mask = None
    if shift:
      y = jnp.roll(y, (-shift, -shift), axis=(1, 2))
      mask = shifted_window_mask(height, width, self.window_size, shift)
    y = self.attention(window_partition(y, self.window_size), mask)
    y = window_reverse(y, height, width)
    if shift:
      y = jnp.roll(y, (shift, shift), axis=(1, 2))
    x = x + y

    y = self.mlp_project(self.activation(self.mlp_expand(self.mlp_norm(x))))
    return x + y


class PatchMerging(nnx.Module):
  """Halves the grid: concatenates 2x2 neighbours, LayerNorm, linear."""

  def __init__(self, dim: int, out_dim: int, *, rngs: nnx.Rngs):
    self.norm = nnx.LayerNorm(4 * dim, epsilon=1e-5, rngs=rngs)
    self.reduction = nnx.Linear(
      4 * dim, out_dim, use_bias=False, kernel_init=_INIT, rngs=rngs
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps tokens (B, H, W, dim) to (B, H / 2, W / 2, out_dim)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return self.reduction(self.norm(x.reshape(b, h // 2, w // 2, 4 * c)))


def _head_multiple(num_heads: Sequence[int]) -> int:
  """The smallest embed_dim step that every stage's heads divide.

  Stage i has embed_dim * 2 ** i features, split over num_heads[i] heads.
  """
  multiple = 1
  for stage, heads in enumerate(num_heads):
    multiple = math.lcm(multiple, heads // math.gcd(heads, 2**stage))
  return multiple


class SwinTransformer(nnx.Module):
  """Swin Transformer with a small patch embedding, for NHWC images."""

  def __init__(
    self,
    num_classes: int,
    *,
    image_shape: Sequence[int] = (32, 32, 3),
    activation: str | Callable[[jax.Array], jax.Array] = "gelu",
    width: float = 1.0,
    embed_dim: int = 96,
    depths: Sequence[int] = (2, 2, 6, 2),
    num_heads: Sequence[int] = (3, 6, 12, 24),
    window_size: int = 4,
    patch_size: int = 2,
    mlp_ratio: float = 4.0,
    rngs: nnx.Rngs,
  ):
    """Builds the model.

    Args:
      num_classes: number of logits.
      image_shape: (height, width, channels) of an input image. Each
        stage's grid must be divisible by its window (and by 2 before a
        patch merging).
      activation: the MLP nonlinearity of every block, a name known to
        `sugar_jax.activations.resolve` or a callable.
      width: multiplies `embed_dim`, rounded so that every stage's heads
        divide its features; the number of heads does not change.
      embed_dim: the first stage's features at width 1; stage i has
        `embed_dim * 2 ** i`.
      depths: the number of blocks in each stage.
      num_heads: the number of attention heads in each stage.
      window_size: the side of an attention window in tokens.
      patch_size: side and stride of the patch embedding.
      mlp_ratio: the MLP's hidden features over its input features.
      rngs: the random streams for parameter initialization.
    """
    if len(depths) != len(num_heads):
      raise ValueError(
        f"depths {tuple(depths)} and num_heads {tuple(num_heads)} must "
        "have one entry per stage."
      )
    multiple = _head_multiple(num_heads)
    if embed_dim % multiple:
      raise ValueError(
        f"embed_dim {embed_dim} must be a multiple of {multiple} for "
        f"num_heads {tuple(num_heads)} to divide every stage's features."
      )
    dim = _width.scale(embed_dim, width, multiple)
    if image_shape[0] % patch_size or image_shape[1] % patch_size:
      raise ValueError(
        f"image size {tuple(image_shape[:2])} is not divisible by the "
        f"patch size {patch_size}."
      )
    grid_height = image_shape[0] // patch_size
    grid_width = image_shape[1] // patch_size

    self.patch_embedding = nnx.Conv(
      image_shape[-1],
      dim,
      (patch_size, patch_size),
      strides=(patch_size, patch_size),
      padding="VALID",
      kernel_init=_INIT,
      rngs=rngs,
    )
    self.patch_norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs)

    stages = []
    downsamples = []
    for stage, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
      if stage > 0:
        if grid_height % 2 or grid_width % 2:
          raise ValueError(
            f"stage {stage} would merge patches of an odd "
            f"{grid_height}x{grid_width} grid."
          )
        downsamples.append(PatchMerging(dim, 2 * dim, rngs=rngs))
        dim, grid_height, grid_width = (
          2 * dim,
          grid_height // 2,
          grid_width // 2,
        )
      window = min(window_size, grid_height, grid_width)
      if grid_height % window or grid_width % window:
        raise ValueError(
          f"stage {stage}'s {grid_height}x{grid_width} grid is not divisible "
          f"by the window size {window}."
        )
      # A window that covers the whole grid has nothing to shift across.
      shift = window // 2 if window < min(grid_height, grid_width) else 0
      stages.append(
        nnx.List(
          [
            SwinBlock(
              dim,
              heads,
              window,
              shift if index % 2 else 0,
              activation=activation,
              mlp_ratio=mlp_ratio,
              rngs=rngs,
            )
            for index in range(depth)
          ]
        )
      )
    self.stages = nnx.List(stages)
    self.downsamples = nnx.List(downsamples)
    self.norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs)
    self.classifier = nnx.Linear(dim, num_classes, kernel_init=_INIT, rngs=rngs)

  def __call__(self, images: jax.Array) -> jax.Array:
    """Maps images (B, H, W, C) to logits (B, num_classes)."""
    x = self.patch_norm(self.patch_embedding(images))
    for index, stage in enumerate(self.stages):
      if index > 0:
        x = self.downsamples[index - 1](x)
      for block in stage:
        x = block(x)

    features = jnp.mean(self.norm(x), axis=(1, 2))
    return self.classifier(features)
