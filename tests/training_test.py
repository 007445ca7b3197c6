"""End-to-end tests of the training run, its outputs, resuming and sharding."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from configs import default
from sugar_jax import experiment, training
from sugar_jax.checkpoint import CheckpointError, Checkpoints

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_TFDS = ROOT.parent / "shared" / "data" / "tfds"
METRIC_KEYS = {
    "step", "epoch", "train_loss", "train_accuracy", "test_loss",
    "test_accuracy", "dead_fraction", "sparsity", "step_time",
}  # fmt: skip


def tiny_config(**overrides):
  config = default.get_config()
  config.activation = "sugar_bsilu"
  config.width = 0.0625  # Hidden layers of 32 units.
  config.num_epochs = 2
  config.batch_size = 32
  config.eval_batch_size = 64
  config.train_examples = 256
  config.log_every_steps = 4
  config.update(overrides)
  return config


def read_metrics(workdir):
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  return [json.loads(line) for line in lines]


def final_parameters(workdir, config):
  """The parameters of the last checkpoint, as a flat list of arrays."""
  trainer = training.Trainer(config, workdir)
  checkpoints = Checkpoints(workdir / "checkpoints")
  state, _ = checkpoints.restore(checkpoints.latest_step(), trainer.state)
  checkpoints.close()
  model, _ = nnx.merge(trainer.graphdef, state)
  return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def assert_outputs(workdir):
  for name in (
      "config.json", "metrics.jsonl", "summary.json",
      "activation_counts.json",
  ):  # fmt: skip
    assert (workdir / name).is_file(), name
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert (workdir / "checkpoints").is_dir()
  for record in read_metrics(workdir):
    assert METRIC_KEYS <= set(record)
    norms = record["gradient_norms"]
    assert norms["total"] > 0 and len(norms) > 2  # Layers and the total.
  summary = json.loads((workdir / "summary.json").read_text())
  assert METRIC_KEYS <= set(summary)
  for key in ("model", "activation", "dataset", "seed", "wall_time"):
    assert key in summary


def test_mock_tfds_run_writes_every_output(tmp_path):
  config = tiny_config(dataset="cifar10", num_epochs=1)
  with tfds.testing.mock_data(num_examples=64):
    config.train_examples = 0
    summary = experiment.train(config, tmp_path)[0]
  assert_outputs(tmp_path)
  assert summary["model"] == "mlp" and summary["dataset"] == "cifar10"
  assert 0 <= summary["dead_fraction"] <= 1


@pytest.mark.skipif(not SHARED_TFDS.is_dir(), reason="no shared CIFAR-10")
def test_cifar10_jpeg_run(tmp_path):
  config = tiny_config(
    dataset="cifar10_jpeg",
    data_dir=str(SHARED_TFDS),
    train_examples=256,
    test_examples=128,
    num_epochs=1,
    augment=True,
  )
  summary = experiment.train(config, tmp_path)[0]
  assert_outputs(tmp_path)
  assert summary["dataset"] == "cifar10_jpeg"
  counts = json.loads((tmp_path / "activation_counts.json").read_text())
  assert counts["examples"] == 128
  layers = list(counts["layers"].values())
  assert [len(counts) for counts in layers] == [32, 32]  # Two hidden layers.
  assert all(0 <= c <= 128 for counts in layers for c in counts)


def test_several_activations_are_compared(tmp_path):
  config = tiny_config(activation="relu,sugar_bsilu", num_epochs=1)
  summaries = experiment.train(config, tmp_path)
  assert [s["activation"] for s in summaries] == ["relu", "sugar_bsilu"]
  assert (tmp_path / "comparison.png").stat().st_size > 0
  table = (tmp_path / "comparison.md").read_text()
  assert "| mlp | relu |" in table and "| mlp | sugar_bsilu |" in table


def test_rerun_of_finished_run_resumes_without_training(tmp_path):
  config = tiny_config(num_epochs=1)
  first = experiment.train(config, tmp_path)[0]
  second = experiment.train(config, tmp_path)[0]
  assert second["test_accuracy"] == first["test_accuracy"]
  assert len(read_metrics(tmp_path)) == 1


def test_killed_run_resumes_to_the_same_result(tmp_path):
  overrides = [
    "--config.activation=sugar_bsilu",
    "--config.width=0.0625",
    "--config.num_epochs=3",
    "--config.batch_size=16",
    "--config.train_examples=512",
    "--config.checkpoint_every_steps=8",
    "--config.log_every_steps=4",
  ]
  reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
  command = [sys.executable, "train.py", "--config=configs/default.py"]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  subprocess.run(
      [*command, f"--workdir={reference}", *overrides],
      cwd=ROOT, env=env, check=True, capture_output=True,
  )  # fmt: skip

  # Kill the second run once it has written a mid-epoch checkpoint.
  process = subprocess.Popen(
      [*command, f"--workdir={interrupted}", *overrides],
      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
  )  # fmt: skip
  deadline = time.time() + 120
  while time.time() < deadline and process.poll() is None:
    names = [p.name for p in (interrupted / "checkpoints").glob("*")]
    steps = [int(name) for name in names if name.isdigit()]
    if any(step > 32 and step % 32 for step in steps):
      break
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not (interrupted / "summary.json").exists(), "finished too soon"

  subprocess.run(
      [*command, f"--workdir={interrupted}", *overrides],
      cwd=ROOT, env=env, check=True, capture_output=True,
  )  # fmt: skip

  def comparable(workdir):
    return [
      {k: v for k, v in r.items() if k != "step_time"}
      for r in read_metrics(workdir)
    ]

  assert comparable(interrupted) == comparable(reference)
  config = tiny_config(
    num_epochs=3, batch_size=16, train_examples=512, checkpoint_every_steps=8
  )
  for got, want in zip(
    final_parameters(interrupted, config),
    final_parameters(reference, config),
    strict=True,
  ):
    np.testing.assert_array_equal(got, want)


def test_eight_devices_match_one(tmp_path):
  assert jax.device_count() == 8
  config = tiny_config(num_epochs=1, batch_size=64)
  results = []
  for count in (1, 8):
    workdir = tmp_path / str(count)
    trainer = training.Trainer(config, workdir, devices=jax.devices()[:count])
    summary = trainer.run()
    model, _ = nnx.merge(trainer.graphdef, trainer.state)
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    results.append((summary, [np.asarray(p) for p in params]))
  (one, one_params), (eight, eight_params) = results
  np.testing.assert_allclose(eight["train_loss"], one["train_loss"], rtol=1e-5)
  np.testing.assert_allclose(eight["test_loss"], one["test_loss"], rtol=1e-5)
  for got, want in zip(eight_params, one_params, strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
  overrides = [
    "--config.activation=sugar_nelu",
    "--config.width=0.0625",
    "--config.num_epochs=1",
    "--config.batch_size=32",
    "--config.train_examples=256",
  ]
  command = [sys.executable, "train.py", "--config=configs/default.py"]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  subprocess.run(
      [*command, f"--workdir={tmp_path / 'one'}", *overrides],
      cwd=ROOT, env=env, check=True, capture_output=True,
  )  # fmt: skip
  port = _free_port()
  processes = [
      subprocess.Popen(
          [
              *command, f"--workdir={tmp_path / 'two'}", *overrides,
              "--distributed", f"--coordinator_address=localhost:{port}",
              "--num_processes=2", f"--process_id={index}",
          ],
          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      )
      for index in range(2)
  ]  # fmt: skip
  for process in processes:
    output = process.communicate(timeout=300)[0].decode()
    assert process.returncode == 0, output[-3000:]
  one = json.loads((tmp_path / "one" / "summary.json").read_text())
  two = json.loads((tmp_path / "two" / "summary.json").read_text())
  for key in ("train_loss", "test_loss", "test_accuracy", "dead_fraction"):
    np.testing.assert_allclose(two[key], one[key], rtol=1e-5, err_msg=key)


@pytest.mark.parametrize(
  "overrides, message",
  [
    ({"model": "vgg19"}, "model 'vgg19' is unknown; valid: vgg16"),
    ({"activation": "sugar_swish"}, "unknown activation 'sugar_swish'"),
    ({"activation": "relu,"}, "empty name"),
    ({"batch_size": 12}, "does not divide over the 8 devices"),
    ({"learning_rate": -1.0}, "learning_rate must be positive"),
    ({"optimizer": "lion"}, "optimizer 'lion' is unknown"),
    ({"alpha": float("nan")}, "'alpha' of surrogate 'bsilu' must be"),
  ],
)
def test_bad_config_is_refused_before_work(tmp_path, overrides, message):
  with pytest.raises(training.ConfigError, match=message):
    experiment.train(tiny_config(**overrides), tmp_path)
  assert not list(tmp_path.iterdir())


def test_bad_model_options_are_a_config_error(tmp_path):
  config = tiny_config(model="vgg16")
  config.model_options = {"no_such_option": 1}
  with pytest.raises(training.ConfigError, match="no_such_option"):
    experiment.train(config, tmp_path)


def test_alpha_applies_only_to_activations_that_have_one(tmp_path):
  config = tiny_config(activation="relu,sugar_nelu", alpha=0.01, num_epochs=1)
  summaries = experiment.train(config, tmp_path)
  assert [s["activation"] for s in summaries] == ["relu", "sugar_nelu"]


def test_run_killed_before_its_first_checkpoint_starts_over(tmp_path):
  config = tiny_config(num_epochs=1)
  first = experiment.train(config, tmp_path)[0]
  shutil.rmtree(tmp_path / "checkpoints")
  (tmp_path / "summary.json").unlink()
  second = experiment.train(config, tmp_path)[0]
  assert second["test_loss"] == first["test_loss"]
  assert len(read_metrics(tmp_path)) == 1


def test_unknown_dataset(tmp_path):
  config = tiny_config(dataset="no_such_dataset", data_dir=str(tmp_path))
  with pytest.raises(experiment.USER_ERRORS, match="no_such_dataset"):
    experiment.train(config, tmp_path / "run")


def test_incompatible_checkpoint_names_the_file(tmp_path):
  experiment.train(tiny_config(num_epochs=1), tmp_path)
  # Same resume keys, but a checkpoint from another model shape.
  config = json.loads((tmp_path / "config.json").read_text())
  config["width"] = 0.125
  (tmp_path / "config.json").write_text(json.dumps(config))
  changed = tiny_config(num_epochs=1, width=0.125)
  with pytest.raises(CheckpointError, match=str(tmp_path / "checkpoints")):
    experiment.train(changed, tmp_path)


def test_changed_config_is_refused(tmp_path):
  experiment.train(tiny_config(num_epochs=1), tmp_path)
  with pytest.raises(training.ConfigError, match="learning_rate"):
    experiment.train(tiny_config(num_epochs=1, learning_rate=0.5), tmp_path)


def test_non_finite_loss_stops_and_keeps_checkpoint(tmp_path):
  config = tiny_config(learning_rate=1e30, num_epochs=3, momentum=0.0)
  with pytest.raises(training.NonFiniteLossError, match="last good"):
    experiment.train(config, tmp_path)
  assert not (tmp_path / "summary.json").exists()


def test_cli_reports_errors_and_exits_non_zero(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  base = [sys.executable, "train.py", f"--workdir={tmp_path}"]
  unknown_key = subprocess.run(
      [*base, "--config.no_such_key=1"], cwd=ROOT, env=env,
      capture_output=True, text=True,
  )  # fmt: skip
  assert unknown_key.returncode != 0
  assert "no_such_key" in unknown_key.stderr
  bad_model = subprocess.run(
      [*base, "--config.model=alexnet"], cwd=ROOT, env=env,
      capture_output=True, text=True,
  )  # fmt: skip
  assert bad_model.returncode == 2
  assert "model 'alexnet' is unknown" in bad_model.stderr
