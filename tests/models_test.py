"""Tests of the models: sizes, shapes, gradients and the activation swap.

Width-1 models are only ever built abstractly (`nnx.eval_shape`), so their
parameter counts and output shapes cost a trace, not an initialization.
Anything that runs is built at a small width.
"""

import collections
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sugar_jax import activations, measure, models, nn, swap
from sugar_jax.models import swin

NUM_CLASSES = 10
IMAGES = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)


def convnext_parameter_count(depths, dims, patch_size, num_classes):
  """ConvNeXt's parameters on RGB images, layer by layer."""
  stem = 3 * patch_size**2 * dims[0] + dims[0] + 2 * dims[0]
  downsamples = sum(
    2 * d + 4 * d * e + e for d, e in zip(dims[:-1], dims[1:], strict=True)
  )

  def block(d):
    depthwise = 49 * d + d
    norm = 2 * d
    expand = d * 4 * d + 4 * d
    project = 4 * d * d + d
    layer_scale = d
    return depthwise + norm + expand + project + layer_scale

  blocks = sum(n * block(d) for n, d in zip(depths, dims, strict=True))
  head = 2 * dims[-1] + dims[-1] * num_classes + num_classes
  return stem + downsamples + blocks + head


def swin_parameter_count(
  embed_dim, depths, num_heads, windows, patch_size, num_classes
):
  """Swin's parameters on RGB images, `windows` being each stage's window."""
  dims = [embed_dim * 2**i for i in range(len(depths))]
  embedding = 3 * patch_size**2 * embed_dim + embed_dim + 2 * embed_dim
  mergings = sum(2 * 4 * d + 4 * d * 2 * d for d in dims[:-1])
  blocks = 0
  for n, d, h, w in zip(depths, dims, num_heads, windows, strict=True):
    norms = 2 * (2 * d)
    attention = (3 * d * d + 3 * d) + (d * d + d) + (2 * w - 1) ** 2 * h
    mlp = (d * 4 * d + 4 * d) + (4 * d * d + d)
    blocks += n * (norms + attention + mlp)
  head = 2 * dims[-1] + dims[-1] * num_classes + num_classes
  return embedding + mergings + blocks + head


# Width 1, 10 classes, 32x32x3 inputs, each model's defaults.
PARAMETER_COUNTS = {
  # The CIFAR VGG-16 and ResNet-18 of kuangliu/pytorch-cifar.
  "vgg16": 14_728_266,
  "resnet18": 11_173_962,
  # ConvNeXt-T with a 2x2 stem.
  "convnext": convnext_parameter_count(
    (3, 3, 9, 3), (96, 192, 384, 768), 2, NUM_CLASSES
  ),
  # Swin-T with patch size 2; the 2x2 grid of the last stage shrinks its
  # window from 4 to 2.
  "swin": swin_parameter_count(
    96, (2, 2, 6, 2), (3, 6, 12, 24), (4, 4, 4, 2), 2, NUM_CLASSES
  ),
  "mlp": (32 * 32 * 3 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10),
}

# Nonlinearities per model at the defaults: one per convolution (VGG), the
# stem and two per basic block (ResNet), one per block (ConvNeXt, Swin),
# one per hidden layer (MLP).
ACTIVATION_COUNTS = {
  "vgg16": 13,
  "resnet18": 1 + 2 * 8,
  "convnext": 3 + 3 + 9 + 3,
  "swin": 2 + 2 + 6 + 2,
  "mlp": 2,
}

# Small but with every kind of layer: two stages and the downsampling
# between them for ConvNeXt and Swin, and a shifted block in Swin's first.
SMALL = {
  "vgg16": dict(width=1 / 16),
  "resnet18": dict(width=1 / 16),
  "convnext": dict(width=1 / 16, depths=(1, 1), dims=(96, 192)),
  "swin": dict(width=1 / 16, depths=(2, 1), num_heads=(3, 6)),
  "mlp": dict(width=1 / 16),
}


def build_abstract(name, **options):
  return nnx.eval_shape(
    lambda: models.create(
      name, num_classes=NUM_CLASSES, rngs=nnx.Rngs(0), **options
    )
  )


@functools.cache
def shared_model(name, **options):
  """An abstract model shared between tests, so not to be changed."""
  return build_abstract(name, **options)


def with_numpy_parameters(abstract_module):
  """The module with its abstract variables drawn by NumPy.

  XLA compiles each random initializer on its own, for seconds apiece on a
  busy CPU; what these tests run does not depend on how the parameters
  were drawn.
  """
  graphdef, state = nnx.split(abstract_module)
  generator = np.random.default_rng(0)

  def draw(path, leaf):
    if len(leaf.shape) >= 2:
      fan_in = math.prod(leaf.shape[:-1])
      return generator.normal(size=leaf.shape) * math.sqrt(2 / fan_in)
    if path[-2].key in ("scale", "var", "layer_scale"):
      return np.ones(leaf.shape)
    return np.zeros(leaf.shape)

  state = jax.tree_util.tree_map_with_path(
    lambda path, leaf: jnp.asarray(draw(path, leaf), leaf.dtype), state
  )
  return nnx.merge(graphdef, state)


def build_small(name):
  return with_numpy_parameters(build_abstract(name, **SMALL[name]))


def activation_modules(model):
  return [
    (path, node)
    for path, node in nnx.iter_graph(model)
    if isinstance(node, nn.Activation)
  ]


def batch_norms(model):
  return [
    node for _, node in nnx.iter_graph(model) if isinstance(node, nnx.BatchNorm)
  ]


def output_shape(model, images=IMAGES):
  return nnx.eval_shape(lambda m, x: m(x), model, images).shape


def test_published_counts_anchor_the_formulas():
  assert (
    convnext_parameter_count(
      (3, 3, 9, 3), (96, 192, 384, 768), patch_size=4, num_classes=1000
    )
    == 28_589_128
  )
  assert (
    swin_parameter_count(
      96, (2, 2, 6, 2), (3, 6, 12, 24), (7, 7, 7, 7), 4, num_classes=1000
    )
    == 28_288_354
  )


@pytest.mark.parametrize("name", models.NAMES)
def test_width_one_parameter_count_and_output_shape(name):
  model = shared_model(name)

  assert models.parameter_count(model) == PARAMETER_COUNTS[name]
  assert output_shape(model) == (2, NUM_CLASSES)


def test_imagenet_configurations_match_published_counts():
  convnext_t = nnx.eval_shape(
    lambda: models.ConvNeXt(
      1000, image_shape=(224, 224, 3), patch_size=4, rngs=nnx.Rngs(0)
    )
  )
  swin_t = nnx.eval_shape(
    lambda: models.SwinTransformer(
      1000,
      image_shape=(224, 224, 3),
      patch_size=4,
      window_size=7,
      rngs=nnx.Rngs(0),
    )
  )

  assert models.parameter_count(convnext_t) == 28_589_128
  assert models.parameter_count(swin_t) == 28_288_354


def test_vgg16_without_batch_norm_drops_only_its_parameters():
  model = shared_model("vgg16", batch_norm=False)

  batch_norm_channels = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512
  assert models.parameter_count(model) == (
    PARAMETER_COUNTS["vgg16"] - 2 * batch_norm_channels
  )
  assert not batch_norms(model)


@pytest.mark.parametrize("name", ["convnext", "swin"])
def test_64x64_images(name):
  images = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
  model = shared_model(name, image_shape=(64, 64, 3), **SMALL[name])

  assert output_shape(model, images) == (2, NUM_CLASSES)


@pytest.mark.parametrize("name", models.NAMES)
def test_forward_and_backward_under_jit(name):
  model = build_small(name)
  images = jnp.asarray(np.random.default_rng(1).normal(size=IMAGES.shape))
  labels = jnp.array([3, 7])

  @nnx.jit
  def loss_and_gradients(model, images, labels):
    def loss_fn(model):
      logits = model(images)
      log_probabilities = jax.nn.log_softmax(logits)
      return -jnp.mean(log_probabilities[jnp.arange(len(labels)), labels])

    return nnx.value_and_grad(loss_fn)(model)

  loss, gradients = loss_and_gradients(model, images, labels)

  assert np.isfinite(loss)
  for path, gradient in jax.tree.leaves_with_path(gradients):
    path = jax.tree_util.keystr(path)
    assert np.all(np.isfinite(gradient)), path
    # Every parameter is wired into the loss, except a bias right before
    # batch norm: in training mode the batch mean cancels it.
    if not (name == "vgg16" and "['conv']['bias']" in path):
      assert np.any(gradient != 0), path


@pytest.mark.parametrize("name", ["vgg16", "resnet18"])
def test_batch_norm_follows_train_and_eval(name):
  model = build_small(name)
  images = np.random.default_rng(1).normal(size=IMAGES.shape)
  # The same first image, in another batch.
  other_images = images.copy()
  other_images[1] = -images[1]
  forward = nnx.jit(lambda model, images: model(images))

  # Training mode normalizes with the batch's statistics, so an image's
  # logits depend on the rest of the batch, and updates the averages.
  assert not np.allclose(
    forward(model, images)[0], forward(model, other_images)[0], atol=1e-4
  )
  means = [node.mean[...] for node in batch_norms(model)]
  assert all(np.any(mean != 0) for mean in means)

  # Evaluation mode normalizes with the averages and leaves them be.
  model.eval()
  np.testing.assert_allclose(
    forward(model, images)[0],
    forward(model, other_images)[0],
    rtol=1e-5,
    atol=1e-5,
  )
  for node, mean in zip(batch_norms(model), means, strict=True):
    np.testing.assert_array_equal(node.mean[...], mean)


@pytest.mark.parametrize("name", models.NAMES)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_every_nonlinearity_is_the_requested_activation(name, activation):
  model = shared_model(name, activation=activation)

  found = activation_modules(model)
  assert len(found) == ACTIVATION_COUNTS[name]
  expected = activations.resolve(activation)
  assert all(module.function == expected for _, module in found)


@pytest.mark.parametrize("name", models.NAMES)
def test_each_activation_is_called_once_per_forward(name):
  traced = []

  def counting_relu(x):
    traced.append(x.shape)
    return jax.nn.relu(x)

  model = build_abstract(name, activation=counting_relu)
  output_shape(model)
  assert len(traced) == ACTIVATION_COUNTS[name]

  calls = collections.Counter()
  for path, module in activation_modules(model):

    def counting(x, path=path):
      calls[path] += 1
      return jax.nn.relu(x)

    module.function = counting
  output_shape(model)
  assert calls == {path: 1 for path, _ in activation_modules(model)}

  # Swapping finds exactly these nonlinearities, and nothing else.
  assert swap.swap_activation(model, "sugar_bsilu") == ACTIVATION_COUNTS[name]
  expected = activations.resolve("sugar_bsilu")
  assert all(
    module.function == expected for _, module in activation_modules(model)
  )


@pytest.mark.parametrize("name", models.NAMES)
def test_measurements_see_every_activation(name):
  model = build_abstract(name, **SMALL[name])

  _, statistics = nnx.eval_shape(measure.forward_with_statistics, model, IMAGES)

  assert set(statistics) == {
    "/".join(map(str, path)) for path, _ in activation_modules(model)
  }


def test_create_rejects_unknown_names_and_bad_widths():
  with pytest.raises(ValueError, match="vgg16, resnet18, convnext, swin"):
    models.create("vgg19", num_classes=10, rngs=nnx.Rngs(0))
  for width in (0, -1.0, float("nan")):
    with pytest.raises(ValueError, match="width"):
      models.create("mlp", num_classes=10, width=width, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("name", models.NAMES)
def test_width_shrinks_without_changing_structure(name):
  full = shared_model(name)
  narrow = shared_model(name, width=0.1)

  assert models.parameter_count(narrow) < models.parameter_count(full) / 4
  assert len(activation_modules(narrow)) == len(activation_modules(full))
  assert output_shape(narrow) == (2, NUM_CLASSES)


def test_swin_width_keeps_features_divisible_by_heads():
  model = shared_model("swin", width=0.1)

  for stage in model.stages:
    for block in stage:
      features = block.attention.qkv.in_features
      assert features % block.attention.num_heads == 0
  assert model.stages[0][0].attention.qkv.in_features == 9


def test_swin_windows_and_shifts():
  model = shared_model("swin")

  layout = [
    [(block.window_size, block.shift_size) for block in stage]
    for stage in model.stages
  ]
  assert layout == [
    [(4, 0), (4, 2)],
    [(4, 0), (4, 2)],
    # A 4x4 grid is a single window, with nothing to shift across.
    [(4, 0)] * 6,
    # A 2x2 grid shrinks the window.
    [(2, 0)] * 2,
  ]


def test_window_partition_round_trips():
  x = np.random.default_rng(0).normal(size=(2, 8, 12, 5))

  windows = swin.window_partition(x, 4)

  assert windows.shape == (2 * 2 * 3, 16, 5)
  # Windows run row-major: the second is the top rows, columns 4 to 8.
  np.testing.assert_array_equal(windows[1], x[0, 0:4, 4:8].reshape(16, 5))
  np.testing.assert_array_equal(swin.window_reverse(windows, 8, 12), x)


@pytest.mark.parametrize(
  "height, width, window, shift", [(8, 8, 4, 2), (8, 12, 4, 2), (9, 6, 3, 1)]
)
def test_shifted_window_mask_matches_brute_force(height, width, window, shift):
  mask = swin.shifted_window_mask(height, width, window, shift)

  # Where each token of the rolled grid came from, window by window.
  rows, cols = np.meshgrid(
    (np.arange(height) + shift) % height,
    (np.arange(width) + shift) % width,
    indexing="ij",
  )
  origin = np.stack([rows, cols], axis=-1)[None]
  origin = swin.window_partition(origin, window)
  # Two tokens of a window were true neighbours iff they lie within one
  # window's span of each other in the original grid; tokens that wrapped
  # around sit at least height - window + 1 rows (or columns) away.
  offset = np.abs(origin[:, :, None] - origin[:, None, :])
  expected = np.all(offset < window, axis=-1)

  np.testing.assert_array_equal(mask, expected)
  assert mask.all(axis=(1, 2)).sum() == (height // window - 1) * (
    width // window - 1
  )


def test_attention_ignores_masked_keys():
  dim, num_heads, window, shift = 6, 3, 4, 2
  attention = with_numpy_parameters(
    nnx.eval_shape(
      lambda: swin.WindowAttention(dim, num_heads, window, rngs=nnx.Rngs(0))
    )
  )
  mask = swin.shifted_window_mask(8, 8, window, shift)
  attend = nnx.jit(lambda attention, windows: attention(windows, mask))
  windows = np.random.default_rng(0).normal(size=(4, window**2, dim))
  # The last window holds tokens from all four corners of the grid.
  last, key = 3, window**2 - 1
  perturbed = windows.copy()
  perturbed[last, key] += 1.0

  changed = np.any(
    attend(attention, windows) != attend(attention, perturbed), axis=-1
  )

  np.testing.assert_array_equal(changed[last], mask[last, :, key])
  assert 0 < changed[last].sum() < window**2
  assert not changed[:last].any()


def test_relative_position_index_pairs_offsets():
  window = 3
  index = swin.relative_position_index(window)

  # Two token pairs share a table row iff their offsets are equal.
  rows, cols = np.divmod(np.arange(window**2), window)
  offsets = np.stack(
    [rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]], axis=-1
  ).reshape(-1, 2)
  pairs = index.reshape(-1)
  np.testing.assert_array_equal(
    pairs[:, None] == pairs[None, :],
    np.all(offsets[:, None] == offsets[None, :], axis=-1),
  )
  np.testing.assert_array_equal(
    np.unique(pairs), np.arange((2 * window - 1) ** 2)
  )
