"""Training and evaluation: the whole loop, readable top to bottom.

One jit-compiled train step runs data-parallel over every device of every
process: a one-axis mesh named ``data`` splits the batch, and parameters and
optimizer state are replicated. Each process reads its own slice of each
global batch. Everything a run produces goes to its work directory:

* ``config.json``: the resolved configuration;
* ``metrics.jsonl``: one JSON line per evaluation;
* ``tensorboard/``: the same metrics as TensorBoard events;
* ``checkpoints/``: Orbax checkpoints, every epoch and at the end;
* ``activation_counts.json``: per unit, on how many test inputs it fired,
  at the last evaluation;
* ``summary.json``: the final metrics, written when the run completes.

Running again in the same directory resumes from the newest checkpoint and
ends with the same parameters and metrics as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from sugar_jax import activations, data, measure, models
from sugar_jax.checkpoint import Checkpoints

OPTIMIZERS = ("sgd", "adam", "adamw")

# Folded into the seed's key to give augmentation a stream of its own.
_AUGMENT_STREAM = 0x5A6A
SCHEDULES = ("constant", "cosine")

# Keys that must match the saved config for a run to resume.
_RESUME_KEYS = (
    "model", "width", "model_options", "activation", "alpha",
    "negative_only", "dataset", "train_examples", "batch_size", "optimizer",
    "learning_rate", "schedule", "momentum", "weight_decay", "augment",
    "seed", "num_epochs", "test_examples", "eval_every_epochs",
)  # fmt: skip


class ConfigError(ValueError):
  """A configuration value that cannot work."""


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN or infinite."""


def validate(
  config: ml_collections.ConfigDict, device_count: int | None = None
) -> None:
  """Checks a single-activation config before any work starts.

  Args:
    config: the config.
    device_count: the devices the batch is split over; all by default.

  Raises:
    ConfigError: naming every key whose value cannot work.
  """
  problems = []

  def check(ok, message):
    if not ok:
      problems.append(message)

  check(
    config.model in models.NAMES,
    f"model {config.model!r} is unknown; valid: {', '.join(models.NAMES)}",
  )
  try:
    _activation(config)
  except (ValueError, TypeError) as error:
    problems.append(str(error))
  check(config.width > 0, f"width must be positive, got {config.width}")
  for key in ("num_epochs", "batch_size", "eval_batch_size"):
    check(config[key] >= 1, f"{key} must be at least 1, got {config[key]}")
  for key in ("train_examples", "test_examples", "checkpoint_every_steps"):
    check(config[key] >= 0, f"{key} must be >= 0, got {config[key]}")
  for key in ("log_every_steps", "eval_every_epochs"):
    check(config[key] >= 1, f"{key} must be at least 1, got {config[key]}")
  check(
    config.learning_rate > 0 and math.isfinite(config.learning_rate),
    f"learning_rate must be positive, got {config.learning_rate}",
  )
  check(
    0 <= config.momentum < 1, f"momentum must be in [0, 1): {config.momentum}"
  )
  check(config.weight_decay >= 0, "weight_decay must be >= 0")
  check(
    config.optimizer in OPTIMIZERS,
    f"optimizer {config.optimizer!r} is unknown; valid: "
    f"{', '.join(OPTIMIZERS)}",
  )
  check(
    config.schedule in SCHEDULES,
    f"schedule {config.schedule!r} is unknown; valid: {', '.join(SCHEDULES)}",
  )
  devices = device_count or jax.device_count()
  check(
    config.batch_size % devices == 0,
    f"batch_size {config.batch_size} does not divide over the {devices} "
    "devices; make it a multiple of the device count",
  )
  check(
    config.eval_batch_size % devices == 0,
    f"eval_batch_size {config.eval_batch_size} does not divide over the "
    f"{devices} devices",
  )
  if problems:
    raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _activation(config):
  options = {}
  if activations.takes_alpha(config.activation):
    # With several activations in one config, alpha applies to those that
    # have one; relu or gelu ignore it.
    options["alpha"] = config.alpha
  if config.activation.startswith(activations.SUGAR_PREFIX):
    options["negative_only"] = config.negative_only
  return activations.resolve(config.activation, **options)


def _optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
  total_steps = config.num_epochs * steps_per_epoch
  if config.schedule == "cosine":
    learning_rate = optax.cosine_decay_schedule(
      config.learning_rate, total_steps
    )
  else:
    learning_rate = config.learning_rate
  if config.optimizer == "adamw":
    return optax.adamw(
      learning_rate, weight_decay=config.weight_decay, mask=_decayed
    )
  # Weight decay added to the gradient, as in PyTorch's SGD and Adam.
  decay = optax.add_decayed_weights(config.weight_decay, mask=_decayed)
  if config.optimizer == "sgd":
    return optax.chain(
      decay, optax.sgd(learning_rate, momentum=config.momentum or None)
    )
  return optax.chain(decay, optax.adam(learning_rate))


def _decayed(params):
  """Weight decay applies to kernels, not to biases, norms or scales."""
  return jax.tree.map(lambda x: x.ndim >= 2, params)


def _non_finite(what: str, checkpoints: Checkpoints) -> NonFiniteLossError:
  return NonFiniteLossError(
    f"{what}; the last good checkpoint is kept in {checkpoints.directory}. "
    "Try a smaller learning_rate."
  )


@jax.jit
def _all_finite(state) -> jax.Array:
  """Whether every floating-point value of a state is finite."""
  leaves = [
    jnp.all(jnp.isfinite(x))
    for x in jax.tree.leaves(state)
    if jnp.issubdtype(x.dtype, jnp.floating)
  ]
  return jnp.all(jnp.stack(leaves))


@dataclasses.dataclass
class _EpochTotals:
  """Running sums of the current epoch's training metrics."""

  loss: float = 0.0
  correct: int = 0
  examples: int = 0
  steps: int = 0
  seconds: float = 0.0

  def add(self, loss_sum, correct, examples):
    self.loss += float(loss_sum)
    self.correct += int(correct)
    self.examples += int(examples)


def _cross_entropy(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(
    logits.astype(jnp.float32), labels
  )


def train_step(graphdef, state, images, labels, key, mean, std, augment):
  """One optimisation step on a (sharded) global batch.

  Args:
    graphdef: the graph of ``(model, optimizer)`` from ``nnx.split``.
    state: their state.
    images: uint8 images, (batch, height, width, channels).
    labels: int labels, (batch,).
    key: the step's random key, for augmentation.
    mean: per-channel mean of the training images, in [0, 1].
    std: per-channel standard deviation.
    augment: whether to crop and flip at random (static).

  Returns:
    The new state, the summed loss and the number of correct predictions.
  """
  model, optimizer = nnx.merge(graphdef, state)
  model.train()
  images = data.normalize(images, mean, std)
  if augment:
    images = data.augment(key, images)

  def loss_fn(model):
    logits = model(images)
    losses = _cross_entropy(logits, labels)
    return losses.mean(), (losses.sum(), logits)

  grads, (loss_sum, logits) = nnx.grad(loss_fn, has_aux=True)(model)
  optimizer.update(model, grads)
  correct = jnp.sum(jnp.argmax(logits, -1) == labels)
  return nnx.state((model, optimizer)), loss_sum, correct


def _eval_step(graphdef, state, images, labels, mask, mean, std):
  """Loss, accuracy and unit statistics of one padded evaluation batch."""
  model, _ = nnx.merge(graphdef, state)
  model.eval()
  logits, statistics = measure.forward_with_statistics(
    model, data.normalize(images, mean, std), mask
  )
  losses = _cross_entropy(logits, labels)
  correct = jnp.argmax(logits, -1) == labels
  return (
    jnp.sum(losses * mask),
    jnp.sum(correct * mask),
    jnp.sum(mask),
    statistics,
  )


def _gradient_norms(graphdef, state, images, labels, mask, mean, std):
  """Per-layer norms of the test loss's gradient on one padded batch.

  The model runs in evaluation mode, so batch statistics stay as they are.
  """
  model, _ = nnx.merge(graphdef, state)
  model.eval()
  images = data.normalize(images, mean, std)

  def loss_fn(model):
    losses = _cross_entropy(model(images), labels)
    return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1)

  return measure.gradient_norms(nnx.grad(loss_fn)(model))


class Trainer:
  """A training run of one model with one activation.

  Args:
    config: a single-activation config.
    workdir: the run's directory.
    devices: the devices to split each batch over; by default all devices
      of all processes.
  """

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    devices: list[jax.Device] | None = None,
  ):
    devices = jax.devices() if devices is None else list(devices)
    validate(config, len(devices))
    self.config = config
    self.workdir = pathlib.Path(workdir)
    self.is_writer = jax.process_index() == 0
    self.dataset = data.load(
      config.dataset,
      data_dir=config.data_dir,
      train_examples=config.train_examples,
      test_examples=config.test_examples,
      cache_dir=config.cache_dir,
    )
    self.steps_per_epoch = data.steps_per_epoch(
      len(self.dataset.train.labels), config.batch_size
    )
    if self.steps_per_epoch == 0:
      raise ConfigError(
        f"batch_size {config.batch_size} is larger than the "
        f"{len(self.dataset.train.labels)} training examples"
      )
    self.total_steps = config.num_epochs * self.steps_per_epoch

    self.mesh = jax.sharding.Mesh(np.array(devices), ("data",))
    self.replicated = jax.NamedSharding(self.mesh, jax.P())
    self.batch_sharding = jax.NamedSharding(self.mesh, jax.P("data"))

    try:
      model = models.create(
        config.model,
        num_classes=self.dataset.num_classes,
        activation=_activation(config),
        width=config.width,
        image_shape=self.dataset.image_shape,
        rngs=nnx.Rngs(config.seed),
        **config.model_options.to_dict(),
      )
    except (TypeError, ValueError) as error:
      raise ConfigError(
        f"cannot build model {config.model!r} with model_options "
        f"{config.model_options.to_dict()} for images of shape "
        f"{self.dataset.image_shape}: {error}"
      ) from error
    optimizer = nnx.Optimizer(
      model, _optimizer(config, self.steps_per_epoch), wrt=nnx.Param
    )
    self.graphdef, state = nnx.split((model, optimizer))
    self.state = jax.device_put(state, self.replicated)
    self.num_parameters = models.parameter_count(model)
    self.mean = jnp.asarray(self.dataset.mean)
    self.std = jnp.asarray(self.dataset.std)
    self._train_step = jax.jit(
      functools.partial(train_step, self.graphdef),
      static_argnames="augment",
      donate_argnums=0,
    )
    self._eval_step = jax.jit(functools.partial(_eval_step, self.graphdef))
    self._gradient_norms = jax.jit(
      functools.partial(_gradient_norms, self.graphdef)
    )

  def _global(self, local: np.ndarray) -> jax.Array:
    return jax.make_array_from_process_local_data(self.batch_sharding, local)

  def _train_batches(self, epoch: int, start: int) -> Iterator[tuple]:
    return data.batches(
      self.dataset.train,
      self.config.batch_size,
      seed=self.config.seed,
      epoch=epoch,
      start_step=start,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
    )

  def evaluate(self) -> tuple[dict[str, Any], measure.Statistics]:
    """Test loss, accuracy and unit statistics over the whole test split,
    and per-layer gradient norms on its first batch."""
    gradient_norms, outputs = None, []
    for images, labels, mask in data.eval_batches(
      self.dataset.test,
      self.config.eval_batch_size,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
    ):
      batch = (
        self.state,
        self._global(images),
        self._global(labels),
        self._global(mask),
        self.mean,
        self.std,
      )
      if gradient_norms is None:
        gradient_norms = self._gradient_norms(*batch)
      outputs.append(self._eval_step(*batch))

    # One transfer at the end, so the device never waits for the host.
    loss_sum, correct, total, statistics = 0.0, 0, 0, None
    for (
      batch_loss,
      batch_correct,
      batch_total,
      batch_statistics,
    ) in jax.device_get(outputs):
      loss_sum += float(batch_loss)
      correct += int(batch_correct)
      total += int(batch_total)
      statistics = measure.accumulate(statistics, batch_statistics)
    metrics = {
      "test_loss": loss_sum / total,
      "test_accuracy": correct / total,
      "gradient_norms": {k: float(v) for k, v in gradient_norms.items()},
    }
    return metrics, statistics

  def run(self) -> dict[str, Any]:
    """Trains to the end (resuming if possible) and returns the summary."""
    started = time.time()
    self.workdir.mkdir(parents=True, exist_ok=True)
    self._check_or_write_config()
    checkpoints = Checkpoints(self.workdir / "checkpoints")
    try:
      return self._train(checkpoints, started)
    finally:
      # Also on errors, so that pending saves finish and files are closed.
      checkpoints.close()

  def _train(self, checkpoints: Checkpoints, started: float) -> dict:
    config = self.config
    step, totals, previous = self._resume(checkpoints)
    writer = _Writer(self.workdir, self.is_writer, step)
    logging.info(
        "Training %s (%s parameters, width %s) with %s on %s: %d epochs of "
        "%d steps, batch %d over %d devices in %d processes",
        config.model, f"{self.num_parameters:,}", config.width,
        config.activation, config.dataset, config.num_epochs,
        self.steps_per_epoch, config.batch_size, self.mesh.size,
        jax.process_count(),
    )  # fmt: skip

    # Augmentation draws from its own stream: nnx.Rngs(seed), which
    # initialised the parameters, folds in small counters of the same key.
    key = jax.random.fold_in(jax.random.key(config.seed), _AUGMENT_STREAM)
    progress = _Progress(self.total_steps, step)
    record = None
    while step < self.total_steps:
      epoch, start = divmod(step, self.steps_per_epoch)
      pending = []
      clock = None  # Step times leave out each epoch's first step.
      for images, labels in self._train_batches(epoch, start):
        self.state, loss_sum, correct = self._train_step(
          self.state,
          self._global(images),
          self._global(labels),
          jax.random.fold_in(key, step),
          self.mean,
          self.std,
          augment=config.augment,
        )
        pending.append((loss_sum, correct, len(labels) * jax.process_count()))
        step += 1
        at_epoch_end = step % self.steps_per_epoch == 0
        save_now = (
          config.checkpoint_every_steps
          and step % config.checkpoint_every_steps == 0
          and not at_epoch_end
        )
        synchronise = (
          step % config.log_every_steps == 0 or at_epoch_end or save_now
        )
        if synchronise:
          # Fetching the losses waits for the device; do it rarely, but
          # always before a checkpoint, so that it holds every step.
          self._collect(pending, totals, step, checkpoints)
          pending = []
        if clock is None:
          jax.block_until_ready(loss_sum)
          clock = (time.perf_counter(), step)
        elif synchronise:
          now = time.perf_counter()
          totals.seconds += now - clock[0]
          totals.steps += step - clock[1]
          clock = (now, step)
        if step % config.log_every_steps == 0:
          progress.report(step, totals.loss / max(totals.examples, 1))
        if save_now:
          self._save(checkpoints, step, totals, previous)

      epoch += 1
      if epoch % config.eval_every_epochs == 0 or step == self.total_steps:
        record, statistics = self._evaluation_record(step, epoch, totals)
        if not math.isfinite(record["test_loss"]):
          raise _non_finite(
            f"the test loss became {record['test_loss']} at step {step}",
            checkpoints,
          )
        alive = measure.alive_units(statistics)
        if previous is not None:
          record["resurrected_units"] = measure.resurrected(previous, alive)
        previous = alive
        writer.write(record, statistics)
      self._save(checkpoints, step, _EpochTotals(), previous)
      totals = _EpochTotals()

    checkpoints.wait()
    summary = self._summary(record, time.time() - started)
    writer.close(summary)
    return summary

  def _collect(self, pending, totals, step, checkpoints):
    """Adds the queued step metrics to ``totals``; stops on a non-finite
    loss."""
    for loss_sum, correct, examples in pending:
      totals.add(loss_sum, correct, examples)
    if not math.isfinite(totals.loss):
      raise _non_finite(
        f"the training loss became {totals.loss} by step {step}", checkpoints
      )

  def _save(self, checkpoints, step, totals, alive):
    """Checkpoints the state, unless a parameter is no longer finite."""
    if not bool(_all_finite(self.state)):
      raise _non_finite(
        f"a parameter became NaN or infinite by step {step}", checkpoints
      )
    checkpoints.save(step, self.state, _progress_record(step, totals, alive))

  def _evaluation_record(self, step, epoch, totals):
    test_metrics, statistics = self.evaluate()
    record = {
      "step": step,
      "epoch": epoch,
      "train_loss": totals.loss / max(totals.examples, 1),
      "train_accuracy": totals.correct / max(totals.examples, 1),
      **test_metrics,
      **measure.summary(statistics),
      "step_time": totals.seconds / max(totals.steps, 1),
    }
    logging.info(
        "epoch %d step %d: train loss %.4f acc %.4f | test loss %.4f acc "
        "%.4f | dead %.3f sparsity %.3f",
        epoch, step, record["train_loss"], record["train_accuracy"],
        record["test_loss"], record["test_accuracy"],
        record["dead_fraction"], record["sparsity"],
    )  # fmt: skip
    return record, statistics

  def _summary(self, record, seconds):
    if record is None:  # Resumed a finished run: read its last record.
      lines = (self.workdir / "metrics.jsonl").read_text().splitlines()
      record = json.loads(lines[-1])
    keys = (
        "step", "epoch", "train_loss", "train_accuracy", "test_loss",
        "test_accuracy", "dead_fraction", "sparsity", "step_time",
    )  # fmt: skip
    return {
      **{key: record[key] for key in keys},
      "model": self.config.model,
      "activation": self.config.activation,
      "dataset": self.config.dataset,
      "seed": self.config.seed,
      "parameters": self.num_parameters,
      "wall_time": seconds,
    }

  def _check_or_write_config(self):
    path = self.workdir / "config.json"
    resolved = json.loads(self.config.to_json())
    if path.exists():
      saved = json.loads(path.read_text())
      different = [
        key for key in _RESUME_KEYS if saved.get(key) != resolved.get(key)
      ]
      if different:
        raise ConfigError(
          f"{path} was written by a run with other values of "
          f"{', '.join(different)}; resuming would mix two runs. Use "
          "another --workdir, or the same config."
        )
    if self.is_writer:
      _write_atomically(path, json.dumps(resolved, indent=2) + "\n")

  def _resume(self, checkpoints):
    step = checkpoints.latest_step()
    if step is None:
      # Killed before its first checkpoint: nothing to keep, start over.
      return 0, _EpochTotals(), None
    self.state, record = checkpoints.restore(step, self.state)
    totals = _EpochTotals(**record["totals"])
    previous = record.get("alive")
    if previous is not None:
      previous = {k: np.asarray(v, bool) for k, v in previous.items()}
    logging.info("Resuming at step %d of %d", step, self.total_steps)
    return step, totals, previous


def _progress_record(step, totals, alive=None):
  record = {"step": step, "totals": dataclasses.asdict(totals)}
  if alive is not None:
    record["alive"] = {k: v.tolist() for k, v in alive.items()}
  return record


class _Progress:
  """Logs steps per second, ETA and the running loss."""

  def __init__(self, total_steps: int, step: int):
    self.total_steps = total_steps
    self.last_step = step
    self.last_time = time.perf_counter()

  def report(self, step: int, loss: float) -> None:
    now = time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    eta = (self.total_steps - step) / max(rate, 1e-9)
    logging.info(
        "step %d/%d (%.0f%%): %.1f steps/s, ETA %s, loss %.4f",
        step, self.total_steps, 100 * step / self.total_steps, rate,
        _duration(eta), loss,
    )  # fmt: skip
    self.last_step, self.last_time = step, now


def _duration(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class _Writer:
  """Writes metrics.jsonl, TensorBoard events and the final summary."""

  def __init__(self, workdir: pathlib.Path, enabled: bool, resumed_step: int):
    self.workdir = workdir
    self.enabled = enabled
    if not enabled:
      return
    self.metrics_path = workdir / "metrics.jsonl"
    if self.metrics_path.exists():
      # Lines past the checkpoint come from work that is being redone.
      lines = self.metrics_path.read_text().splitlines()
      kept = [x for x in lines if json.loads(x)["step"] <= resumed_step]
      _write_atomically(self.metrics_path, "".join(x + "\n" for x in kept))
    from tensorboardX import SummaryWriter

    self.tensorboard = SummaryWriter(str(workdir / "tensorboard"))

  def write(self, record: dict, statistics: measure.Statistics) -> None:
    if not self.enabled:
      return
    with self.metrics_path.open("a") as f:
      f.write(json.dumps(record) + "\n")
    for key, value in record.items():
      if isinstance(value, (int, float)) and key not in ("step", "epoch"):
        self.tensorboard.add_scalar(key, value, record["step"])
    for layer, norm in record["gradient_norms"].items():
      self.tensorboard.add_scalar(
        f"gradient_norm/{layer}", norm, record["step"]
      )
    self.tensorboard.flush()
    counts = measure.activation_counts(statistics)
    path = self.workdir / "activation_counts.json"
    _write_atomically(
      path,
      json.dumps(
        {
          "step": record["step"],
          "examples": measure.examples(statistics),
          "layers": {k: v.tolist() for k, v in counts.items()},
        }
      ),
    )

  def close(self, summary: dict) -> None:
    if not self.enabled:
      return
    self.tensorboard.close()
    path = self.workdir / "summary.json"
    _write_atomically(path, json.dumps(summary, indent=2) + "\n")
    logging.info("Outputs are in %s", self.workdir)


def _write_atomically(path: pathlib.Path, text: str) -> None:
  """Writes a file whole or not at all, even if the run is killed."""
  partial = path.with_name(path.name + ".partial")
  partial.write_text(text)
  os.replace(partial, path)
