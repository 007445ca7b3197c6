"""Tests of the SUGAR activation and the surrogate catalogue."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.ad_checkpoint import print_saved_residuals

from sugar_jax import activations, nn, sugar, surrogates

POINTS = jnp.array([-4.0, -1.0, -0.1, 0.0, 0.5, 1.0, 3.0])


def sugar_grad(x, surrogate="bsilu", **kwargs):
  return jax.vmap(jax.grad(lambda v: sugar(v, surrogate, **kwargs)))(x)


def autodiff_derivative(name, x):
  """The derivative of the smooth function, by autodiff at each point."""
  function = surrogates.SURROGATES[name].function
  return jax.vmap(jax.grad(function))(x)


def test_forward_is_relu_bit_for_bit():
  grid = jnp.array(
    [
      -jnp.inf,
      -1e30,
      -3.5,
      -1e-30,
      -0.0,
      0.0,
      1e-30,
      2.0,
      1e30,
      jnp.inf,
      jnp.nan,
    ]
  )
  for name in surrogates.SURROGATES:
    for negative_only in (False, True):
      out = sugar(grid, name, negative_only=negative_only)
      np.testing.assert_array_equal(
        np.asarray(out).view(np.uint32),
        np.asarray(jax.nn.relu(grid)).view(np.uint32),
      )


@pytest.mark.parametrize("name", list(surrogates.SURROGATES))
def test_gradient_matches_autodiff_of_surrogate(name):
  # At 0 the piecewise surrogates' autodiff picks one side; skip that point.
  points = POINTS[POINTS != 0]
  np.testing.assert_allclose(
    sugar_grad(points, name),
    autodiff_derivative(name, points),
    rtol=1e-6,
    atol=1e-7,
  )


@pytest.mark.parametrize(
  "name, x, expected",
  [
    ("bsilu", 0.0, 0.9175),  # 1/2 + 1.67 / 4
    ("bsilu", -1.0, 0.4006714),
    ("nelu", -1.0, -0.05),  # 2 * 0.1 * (-1) / (1 + 1)^2
    ("nelu", 0.0, 0.0),
    ("nelu", 0.5, 1.0),
    ("leaky_relu", -4.0, 0.01),
    ("leaky_relu", 3.0, 1.0),
    ("elu", -1.0, math.exp(-1.0)),
    ("elu", 0.0, 1.0),
    ("selu", 1.0, 1.0507009873554805),
    ("selu", -1.0, 1.0507009873554805 * 1.6732632423543772 * math.exp(-1)),
    ("gelu", 0.0, 0.5),
    ("silu", 0.0, 0.5),
    ("mish", 0.0, 0.6),  # tanh(log 2)
  ],
)
def test_gradient_hand_values(name, x, expected):
  got = jax.grad(lambda v: sugar(v, name))(jnp.float32(x))
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_hyperparameter_changes_gradient():
  np.testing.assert_allclose(
    jax.grad(lambda v: sugar(v, "nelu", alpha=0.01))(-1.0),
    -0.005,
    rtol=1e-6,
  )
  np.testing.assert_allclose(
    jax.grad(lambda v: sugar(v, "bsilu", alpha=0.0))(0.0), 0.5, rtol=1e-6
  )


def test_numpy_and_array_hyperparameters():
  for alpha in (np.float32(0.01), np.float64(0.01), jnp.float32(0.01)):
    np.testing.assert_allclose(
      jax.grad(lambda v, a=alpha: sugar(v, "nelu", alpha=a))(-1.0),
      -0.005,
      rtol=1e-6,
    )
  with pytest.raises(TypeError, match="scalar"):
    sugar(POINTS, "nelu", alpha=np.ones(2))
  with pytest.raises(ValueError, match="finite"):
    sugar(POINTS, "nelu", alpha=np.float32("nan"))


def test_gradient_scales_cotangent():
  x = POINTS
  cotangent = jnp.arange(1.0, 8.0)
  _, vjp = jax.vjp(sugar, x)
  np.testing.assert_allclose(
    vjp(cotangent)[0], cotangent * sugar_grad(x), rtol=1e-6
  )


def test_negative_only_keeps_relu_gradient_for_positive_inputs():
  for name in surrogates.SURROGATES:
    grad = sugar_grad(POINTS, name, negative_only=True)
    positive = POINTS > 0
    np.testing.assert_array_equal(grad[positive], 1.0)
    np.testing.assert_allclose(
      grad[~positive], sugar_grad(POINTS, name)[~positive], rtol=1e-6
    )


@pytest.mark.parametrize("name", ["bsilu", "nelu", "silu", "gelu", "mish"])
def test_grad_of_grad_is_second_derivative(name):
  points = POINTS[POINTS != 0]
  second = jax.vmap(jax.grad(jax.grad(lambda v: sugar(v, name))))(points)
  function = surrogates.SURROGATES[name].function
  expected = jax.vmap(jax.grad(jax.grad(function)))(points)
  np.testing.assert_allclose(second, expected, rtol=1e-5, atol=1e-6)


def test_user_defined_surrogate_uses_autodiff():
  def softsign(x):
    return x / (1 + jnp.abs(x))

  grad = sugar_grad(POINTS, softsign)
  np.testing.assert_allclose(grad, 1 / (1 + jnp.abs(POINTS)) ** 2, rtol=1e-6)
  wrapped = surrogates.Surrogate(
    "scaled_silu",
    lambda x, beta: x * jax.nn.sigmoid(beta * x),
    defaults={"beta": 1.0},
  )
  np.testing.assert_allclose(
    sugar_grad(POINTS, wrapped), sugar_grad(POINTS, "silu"), rtol=1e-6
  )


def test_transformations_agree_with_eager():
  x = jax.random.normal(jax.random.key(0), (4, 16))

  def loss(x):
    return jnp.sum(sugar(x, "nelu") ** 2 + sugar(x))

  eager = jax.grad(loss)(x)
  np.testing.assert_allclose(jax.jit(jax.grad(loss))(x), eager, rtol=1e-6)
  np.testing.assert_allclose(
    jax.vmap(jax.grad(loss))(x[:, None])[:, 0], eager, rtol=1e-6
  )
  np.testing.assert_allclose(
    jax.grad(jax.checkpoint(loss))(x), eager, rtol=1e-6
  )

  def scanned(x):
    def body(carry, row):
      return carry + loss(row), None

    return jax.lax.scan(body, 0.0, x)[0]

  np.testing.assert_allclose(jax.grad(scanned)(x), eager, rtol=1e-6)


def test_sharded_input_under_jit():
  mesh = jax.make_mesh((len(jax.devices()),), ("data",))
  sharding = jax.NamedSharding(mesh, jax.P("data"))
  x = jax.random.normal(jax.random.key(1), (len(jax.devices()) * 2, 8))
  x_sharded = jax.device_put(x, sharding)
  grad = jax.jit(jax.grad(lambda x: sugar(x).sum()))(x_sharded)
  np.testing.assert_allclose(
    grad, sugar_grad(x.ravel()).reshape(x.shape), rtol=1e-5
  )
  assert grad.sharding.is_equivalent_to(sharding, x.ndim)


def test_changing_alpha_does_not_recompile():
  traces = []

  @jax.jit
  def grad(x, alpha):
    traces.append(None)
    return jax.grad(lambda v: sugar(v, "nelu", alpha=alpha).sum())(x)

  np.testing.assert_allclose(grad(POINTS, 0.1), sugar_grad(POINTS, "nelu"))
  np.testing.assert_allclose(
    grad(POINTS, 0.01), sugar_grad(POINTS, "nelu", alpha=0.01)
  )
  grad(POINTS, 0.5)
  assert len(traces) == 1


def test_forward_mode_fails_clearly():
  with pytest.raises(TypeError, match="forward-mode"):
    jax.jvp(sugar, (POINTS,), (POINTS,))
  with pytest.raises(TypeError, match="forward-mode"):
    jax.jacfwd(sugar)(POINTS)


def test_hessian_is_forward_over_reverse_and_works():
  # jax.hessian applies forward mode to the backward pass only, which is
  # made of ordinary differentiable operations.
  hessian = jax.hessian(lambda x: sugar(x).sum())(POINTS)
  second = jax.vmap(jax.grad(jax.grad(surrogates.bsilu)))(POINTS)
  np.testing.assert_allclose(hessian, jnp.diag(second), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
@pytest.mark.parametrize("name", list(surrogates.SURROGATES))
def test_dtypes_and_finiteness(dtype, name):
  x = jnp.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4], dtype)
  y, vjp = jax.vjp(lambda v: sugar(v, name), x)
  (grad,) = vjp(jnp.ones_like(y))
  assert y.dtype == dtype and grad.dtype == dtype
  assert bool(jnp.all(jnp.isfinite(grad)))
  # Math in float32: the gradient is the float32 derivative, rounded once.
  expected = sugar_grad(x.astype(jnp.float32), name).astype(dtype)
  np.testing.assert_array_equal(grad, expected)


def saved_residuals(function, x, capsys):
  """The residuals JAX saves for the backward pass, one line each."""
  capsys.readouterr()
  print_saved_residuals(function, x)
  return capsys.readouterr().out.splitlines()


def test_one_residual_no_larger_than_x(capsys):
  x = jnp.ones((8, 32))
  for name in surrogates.SURROGATES:
    saved = saved_residuals(lambda x, n=name: sugar(x, n).sum(), x, capsys)
    assert saved == ["f32[8,32] from the argument x"]


def test_low_precision_residual(capsys):
  x = jnp.ones((8, 32))
  saved = saved_residuals(
    lambda v: sugar(v, residual_dtype=jnp.bfloat16).sum(), x, capsys
  )
  assert len(saved) == 1 and saved[0].startswith("bf16[8,32]")
  points = jnp.array([-2.0, -0.3, 0.7, 1.9])
  np.testing.assert_allclose(
    sugar_grad(points, residual_dtype=jnp.bfloat16),
    sugar_grad(points.astype(jnp.bfloat16).astype(jnp.float32)),
    rtol=1e-6,
  )


def test_errors():
  with pytest.raises(ValueError, match="valid names: bsilu, nelu"):
    sugar(POINTS, "swish")
  with pytest.raises(ValueError, match="'alpha'.*finite"):
    sugar(POINTS, "nelu", alpha=float("nan"))
  with pytest.raises(ValueError, match="'alpha'.*must lie in"):
    sugar(POINTS, "elu", alpha=-1.0)
  with pytest.raises(TypeError, match="'alpha'.*real number"):
    sugar(POINTS, "bsilu", alpha="1.67")
  with pytest.raises(ValueError, match="no hyperparameter 'beta'"):
    sugar(POINTS, "bsilu", beta=1.0)
  with pytest.raises(ValueError, match="no hyperparameter 'alpha'"):
    sugar(POINTS, "gelu", alpha=1.0)
  with pytest.raises(TypeError, match="int32"):
    sugar(jnp.arange(3))
  with pytest.raises(TypeError, match="bool"):
    sugar(jnp.array([True, False]))


def test_activation_names():
  assert activations.NAMES[0] == "relu"
  assert "sugar_bsilu" in activations.NAMES and "mish" in activations.NAMES
  assert len(activations.NAMES) == 17
  np.testing.assert_array_equal(
    activations.resolve("relu")(POINTS), jax.nn.relu(POINTS)
  )
  np.testing.assert_allclose(
    activations.resolve("bsilu")(POINTS), surrogates.bsilu(POINTS)
  )
  sugar_nelu = activations.resolve("sugar_nelu", alpha=0.01)
  np.testing.assert_array_equal(sugar_nelu(POINTS), jax.nn.relu(POINTS))
  np.testing.assert_allclose(
    jax.vmap(jax.grad(sugar_nelu))(POINTS),
    sugar_grad(POINTS, "nelu", alpha=0.01),
  )
  assert sugar_nelu == activations.resolve("sugar_nelu", alpha=0.01)
  assert hash(sugar_nelu) == hash(activations.resolve("sugar_nelu", alpha=0.01))
  assert activations.resolve("elu", alpha=None) == activations.resolve("elu")
  with pytest.raises(ValueError, match="valid names: relu, bsilu"):
    activations.resolve("sugar_swish")
  with pytest.raises(ValueError, match="relu takes no hyperparameters"):
    activations.resolve("relu", alpha=0.1)
  with pytest.raises(ValueError, match="finite"):
    activations.resolve("sugar_bsilu", alpha=math.inf)


def test_activation_module_is_static_and_does_not_retrace():
  traces = []

  @nnx.jit
  def apply(module, x):
    traces.append(None)
    return module(x)

  for _ in range(2):
    apply(nn.Activation("sugar_bsilu"), POINTS)
  assert len(traces) == 1
  apply(nn.Activation("sugar_nelu"), POINTS)
  assert len(traces) == 2
