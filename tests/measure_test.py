"""Tests of the measurements and of swapping a model's activation."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sugar_jax import activations, measure, nn, swap


def linear(kernel, bias):
  """An nnx.Linear with the given parameters."""
  kernel, bias = jnp.asarray(kernel, jnp.float32), jnp.asarray(bias)
  layer = nnx.Linear(*kernel.shape, rngs=nnx.Rngs(0))
  layer.kernel[...] = kernel
  layer.bias[...] = bias
  return layer


class Dense(nnx.Module):
  """Unit 0 never fires, unit 1 fires where x[0] > 0, unit 2 always."""

  def __init__(self, activation="relu"):
    self.hidden = linear([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [-3, 0, 1])
    self.activation = nn.Activation(activation)
    self.head = linear([[1.0], [2.0], [3.0]], [0.5])

  def __call__(self, x):
    return self.head(self.activation(self.hidden(x)))


DENSE_INPUTS = jnp.array([[1.0, 0.0], [-1.0, 5.0], [2.0, 0.0], [0.0, 0.0]])


class Twice(nnx.Module):
  """One activation, called before and after swapping the two features."""

  def __init__(self):
    self.swap = linear([[0.0, 1.0], [1.0, 0.0]], [0.0, 0.0])
    self.activation = nn.Activation("relu")

  def __call__(self, x):
    return self.activation(self.swap(self.activation(x)))


class Conv(nnx.Module):
  """Channel 0 fires where a pixel exceeds 5; channel 1 never fires."""

  def __init__(self):
    self.conv = nnx.Conv(1, 2, (1, 1), rngs=nnx.Rngs(0))
    self.conv.kernel[...] = jnp.array([1.0, 0.0]).reshape(1, 1, 1, 2)
    self.conv.bias[...] = jnp.array([-5.0, -1.0])
    self.activation = nn.Activation("relu")
    self.blocks = nnx.List([Dense()])

  def __call__(self, images):
    y = self.activation(self.conv(images))
    return self.blocks[0](y.max(axis=(1, 2)))


def statistics(model, inputs, mask=None):
  _, batch = nnx.jit(measure.forward_with_statistics)(model, inputs, mask)
  return measure.accumulate(None, batch)


def layer(fires, zeros=0, size=0, examples=0):
  return measure.LayerStatistics(np.array(fires), zeros, size, examples)


def assert_same_statistics(a, b):
  assert a.layers.keys() == b.layers.keys()
  for path, layer_a in a.layers.items():
    layer_b = b.layers[path]
    np.testing.assert_array_equal(layer_a.fires, layer_b.fires)
    assert (layer_a.zeros, layer_a.size, layer_a.examples) == (
      layer_b.zeros,
      layer_b.size,
      layer_b.examples,
    )


def test_dense_counts_are_exact():
  stats = statistics(Dense(), DENSE_INPUTS)

  [(path, counts)] = stats.layers.items()
  assert path == "activation"
  np.testing.assert_array_equal(counts.fires, [0, 2, 4])
  assert (counts.zeros, counts.size, counts.examples) == (6, 12, 4)
  assert measure.dead_fraction(stats) == (1 / 3, {"activation": 1 / 3})
  assert measure.sparsity(stats) == (0.5, {"activation": 0.5})
  np.testing.assert_array_equal(
    measure.activation_counts(stats)["activation"], [0, 2, 4]
  )


def test_conv_channel_firing_at_one_position_of_one_image():
  images = jnp.zeros((3, 4, 4, 1)).at[1, 2, 3, 0].set(10.0)

  stats = statistics(Conv(), images)

  conv = stats.layers["activation"]
  np.testing.assert_array_equal(conv.fires, [1, 0])
  assert (conv.zeros, conv.size, conv.examples) == (95, 96, 3)
  # The dense block sees (5, 0) for image 1 and zeros otherwise.
  np.testing.assert_array_equal(
    stats.layers["blocks/0/activation"].fires, [0, 1, 3]
  )
  network, layers = measure.dead_fraction(stats)
  assert network == 2 / 5
  assert layers == {"activation": 0.5, "blocks/0/activation": 1 / 3}
  assert measure.sparsity(stats)[0] == (95 + 5) / (96 + 9)


def test_activation_called_twice_fires_if_it_fired_in_either_call():
  inputs = jnp.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])

  stats = statistics(Twice(), inputs)

  counts = stats.layers["activation"]
  np.testing.assert_array_equal(counts.fires, [2, 2])
  assert (counts.zeros, counts.size, counts.examples) == (6, 12, 3)


def test_collection_leaves_outputs_and_model_unchanged():
  model = Conv()
  images = jax.random.normal(jax.random.key(0), (5, 4, 4, 1)) * 8
  expected = model(images)
  traces = []

  @nnx.jit
  def forward(model, images):
    traces.append(None)
    return measure.forward_with_statistics(model, images)

  for _ in range(2):
    logits, _ = forward(model, images)
    np.testing.assert_array_equal(logits, expected)
  assert len(traces) == 1
  assert not model.activation.record
  assert not nnx.state(model, nn.UnitStatistics)

  # The pattern of a train loop: merge the model inside jax.jit.
  graphdef, state = nnx.split(model)
  merged = jax.jit(
    lambda state: measure.forward_with_statistics(
      nnx.merge(graphdef, state), images
    )
  )
  logits, batch = merged(state)
  np.testing.assert_array_equal(logits, expected)
  assert_same_statistics(
    measure.accumulate(None, batch), statistics(model, images)
  )


def test_recording_outside_capture_leaves_nothing_behind():
  model = Conv()
  images = jnp.ones((2, 4, 4, 1))

  with measure.recording(model):
    assert model.activation.record
    # Outside nnx.capture, a recording module stores what it sows.
    with pytest.warns(DeprecationWarning):
      model(images)

  assert not model.activation.record
  assert not nnx.state(model, nn.UnitStatistics)

  # The model's own error comes through, and recording is switched off.
  with pytest.raises(ValueError, match="feature dimension"):
    measure.forward_with_statistics(model, jnp.ones((2, 4, 4, 3)))
  assert not model.activation.record


def test_collection_of_a_sharded_batch():
  model = Conv()
  images = jax.random.normal(jax.random.key(3), (8, 4, 4, 1)) * 8
  mask = np.arange(8) < 5
  sharding = jax.NamedSharding(
    jax.make_mesh((jax.device_count(),), ("data",)), jax.P("data")
  )

  _, batch = nnx.jit(measure.forward_with_statistics)(
    model, jax.device_put(images, sharding), jax.device_put(mask, sharding)
  )

  assert_same_statistics(
    measure.accumulate(None, batch), statistics(model, images[:5])
  )


def test_batches_with_padding_equal_one_batch():
  model = Conv()
  images = jax.random.normal(jax.random.key(1), (7, 4, 4, 1)) * 8
  # Padding that would fire every unit, so leaving it out is visible.
  padding = jnp.full((3, 4, 4, 1), 20.0)
  batches = [
    (images[:4], None),
    (jnp.concatenate([images[4:], padding]), np.arange(6) < 3),
  ]

  evaluated = measure.evaluate_statistics(model, batches)

  assert_same_statistics(evaluated, statistics(model, images))
  assert measure.examples(evaluated) == 7
  padded = statistics(model, jnp.concatenate([images, padding]))
  assert padded.layers["activation"].fires[0] == (
    evaluated.layers["activation"].fires[0] + 3
  )


def test_nothing_to_record_is_an_error():
  x = jnp.ones((1, 2))
  with pytest.raises(ValueError, match="no sugar_jax.nn.Activation"):
    with measure.recording(nnx.Linear(2, 2, rngs=nnx.Rngs(0))):
      pass
  with pytest.raises(ValueError, match="no sugar_jax.nn.Activation"):
    measure.forward_with_statistics(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), x)
  with pytest.raises(ValueError, match="no batches"):
    measure.evaluate_statistics(Dense(), [])


def test_summary_is_json():
  summary = measure.summary(statistics(Dense(), DENSE_INPUTS))

  assert json.loads(json.dumps(summary)) == {
    "dead_fraction": 1 / 3,
    "sparsity": 0.5,
    "layers": {
      "activation": {"dead_fraction": 1 / 3, "sparsity": 0.5, "units": 3}
    },
  }


def test_resurrected_counts_both_directions():
  before = measure.Statistics({"a": layer([0, 0, 3, 1]), "b": layer([0, 2])})
  after = measure.Statistics({"a": layer([5, 0, 0, 1]), "b": layer([4, 2])})

  result = measure.resurrected(before, after)
  # What a checkpoint keeps of the earlier measurement is enough.
  alive = json.loads(
    json.dumps({k: v.tolist() for k, v in measure.alive_units(before).items()})
  )
  assert measure.resurrected(alive, after) == result

  assert result == {
    "resurrected": 2,
    "resurrected_fraction": 2 / 3,
    "newly_dead": 1,
    "newly_dead_fraction": 1 / 3,
    "layers": {
      "a": {
        "resurrected": 1,
        "resurrected_fraction": 0.5,
        "newly_dead": 1,
        "newly_dead_fraction": 0.5,
      },
      "b": {
        "resurrected": 1,
        "resurrected_fraction": 1.0,
        "newly_dead": 0,
        "newly_dead_fraction": 0.0,
      },
    },
  }
  json.dumps(result)


def test_gradient_norms_group_parameters_by_module():
  model = Conv()
  grads = jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param))
  grads["conv"]["kernel"][...] = jnp.array([3.0, 4.0]).reshape(1, 1, 1, 2)
  grads["conv"]["bias"][...] = jnp.zeros(2)

  norms = jax.jit(measure.gradient_norms)(grads)

  # Conv: |(3, 4)| = 5. Dense hidden: 6 + 3 ones; head: 3 + 1 ones.
  expected = {
    "conv": 5.0,
    "blocks/0/hidden": 3.0,
    "blocks/0/head": 2.0,
    "total": np.sqrt(25 + 9 + 4),
  }
  assert norms.keys() == expected.keys()
  for module, norm in expected.items():
    np.testing.assert_allclose(norms[module], norm, rtol=1e-6)


def hidden_gradient(model):
  grads = nnx.grad(lambda m: m(DENSE_INPUTS).sum())(model)
  return grads["hidden"]


def test_sugar_gives_a_dead_unit_gradient_and_relu_does_not():
  relu = hidden_gradient(Dense("relu"))
  sugar = hidden_gradient(Dense("sugar_bsilu"))

  # Unit 0's pre-activation is -3 on every input.
  np.testing.assert_array_equal(relu["bias"][0], 0.0)
  np.testing.assert_array_equal(relu["kernel"][:, 0], 0.0)
  assert sugar["bias"][0] != 0
  assert jnp.all(sugar["kernel"][:, 0] != 0)
  np.testing.assert_array_equal(
    Dense("relu")(DENSE_INPUTS), Dense("sugar_bsilu")(DENSE_INPUTS)
  )


def test_swap_replaces_nn_activations():
  model = Dense("relu")

  assert swap.swap_activation(model, "sugar_bsilu", alpha=1.5) == 1

  target = Dense(activations.resolve("sugar_bsilu", alpha=1.5))
  assert model.activation.function == target.activation.function
  reference, swapped = hidden_gradient(target), hidden_gradient(model)
  for name in ("kernel", "bias"):
    np.testing.assert_array_equal(swapped[name], reference[name])
  # A module shared by two calls is one activation.
  assert swap.swap_activation(Twice(), "gelu") == 1


class UserModel(nnx.Module):
  """Stores plain JAX activations, as code written without SUGAR does."""

  def __init__(self):
    rngs = nnx.Rngs(0)
    self.layers = nnx.Sequential(
      nnx.Linear(2, 4, rngs=rngs), jax.nn.relu, nnx.Linear(4, 4, rngs=rngs)
    )
    self.act = nnx.gelu
    self.gate = jax.nn.sigmoid
    self.head = nnx.Linear(4, 1, rngs=rngs)

  def __call__(self, x):
    return self.head(self.gate(self.act(self.layers(x))))


def reference(model, x, function):
  hidden = function(model.layers.layers[0](x))
  hidden = function(model.layers.layers[2](hidden))
  return model.head(jax.nn.sigmoid(hidden))


def test_swap_replaces_plain_activation_attributes():
  model = UserModel()
  forward = nnx.jit(lambda m, x: m(x))
  x = jax.random.normal(jax.random.key(2), (8, 2))
  before = forward(model, x)

  assert swap.swap_activation(model, "elu") == 2

  elu = activations.resolve("elu")
  assert model.layers.layers[1] == elu and model.act == elu
  assert model.gate is jax.nn.sigmoid
  after = forward(model, x)
  assert not np.allclose(after, before)
  np.testing.assert_allclose(after, reference(model, x, elu), rtol=1e-6)

  # An activation already swapped in is recognised again.
  assert swap.swap_activation(model, "sugar_nelu") == 2
  sugar = activations.resolve("sugar_nelu")
  swapped = nnx.grad(lambda m: m(x).sum())(model)
  expected = nnx.grad(lambda m: reference(m, x, sugar).sum())(model)
  np.testing.assert_allclose(
    swapped["layers"]["layers"][0]["kernel"][...],
    expected["layers"]["layers"][0]["kernel"][...],
    rtol=1e-6,
  )


class Opaque(nnx.Module):
  def __init__(self):
    self.linear = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    self.wrapped = functools.partial(jax.nn.gelu, approximate=False)
    self.anonymous = lambda x: jax.nn.relu(x)

  def __call__(self, x):
    return jax.nn.relu(self.anonymous(self.wrapped(self.linear(x))))


def test_swap_without_anything_to_swap_is_an_error():
  with pytest.raises(ValueError, match="no activation to swap"):
    swap.swap_activation(Opaque(), "sugar_bsilu")
  with pytest.raises(ValueError, match="unknown activation"):
    swap.swap_activation(Dense(), "sugar_swish")
