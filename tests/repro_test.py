"""Tests of the paper configs, the sweep and the report."""

import importlib
import json
import math
import pathlib
import shlex
import subprocess
import sys

import pytest
from flax import nnx

from configs import _paper, default
from sugar_jax import activations, models, report, sweep, training

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER_CONFIGS = (
    "paper_vgg16_cifar10", "paper_vgg16_cifar100", "paper_resnet18_cifar10",
    "paper_resnet18_cifar100", "paper_convnext", "paper_swin", "repro_cpu",
)  # fmt: skip
FIGURES = ("curves", "dead_sparsity", "layers", "activation_counts")


def tiny_config():
  config = default.get_config()
  config.update(
    width=0.0625,  # Hidden layers of 32 units.
    train_examples=128,
    num_epochs=1,
    batch_size=32,
    eval_batch_size=64,
  )
  return config


TINY_GRID = {
  "model": ["mlp"],
  "activation": ["relu", "sugar_bsilu"],
  "alpha": [None],
  "seed": [0],
}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
  """Two real runs on digits, trained once for the tests that read them."""
  workdir = tmp_path_factory.mktemp("sweep")
  result = sweep.run(tiny_config(), sweep.expand(TINY_GRID), workdir)
  return workdir, result


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_config_validates_and_builds(name):
  module = importlib.import_module(f"configs.{name}")
  config = module.get_config()
  assert set(config.keys()) == set(default.get_config().keys())
  training.validate(config)
  grid = module.get_grid()
  assert set(sweep.AXES) <= set(grid)
  for point in sweep.expand(grid):
    training.validate(sweep.point_config(config, point))

  classes = 100 if config.dataset.endswith("100") else 10
  for model in grid["model"]:
    abstract = nnx.eval_shape(
      lambda model=model: models.create(
        model,
        num_classes=classes,
        activation=config.activation,
        width=config.width,
        rngs=nnx.Rngs(0),
        **config.model_options.to_dict(),
      )
    )
    assert models.parameter_count(abstract) > 0


def test_cnn_grids_are_the_papers():
  assert set(_paper.ACTIVATIONS) == set(activations.NAMES)
  assert len(_paper.ACTIVATIONS) == 17
  for name in PAPER_CONFIGS[:4]:
    module = importlib.import_module(f"configs.{name}")
    config, grid = module.get_config(), module.get_grid()
    assert grid["seed"] == [0, 1, 2, 3, 4]
    assert len(sweep.expand(grid)) == 85
    assert config.activation == "relu" and not config.augment
    assert (config.learning_rate, config.batch_size) == (0.001, 128)
    assert config.num_epochs == (100 if name.endswith("100") else 50)


def test_modern_configs_take_the_dataset_as_argument():
  module = importlib.import_module("configs.paper_swin")
  assert module.get_config().dataset == "cifar100"
  assert module.get_config("cifar10").dataset == "cifar10"


def test_grid_expands_seed_major_and_alpha_only_where_it_applies():
  grid = {
    "model": ["convnext"],
    "activation": ["gelu", "sugar_nelu"],
    "alpha": [0.1, 0.01],
    "seed": [0, 1],
  }
  directories = [str(sweep.run_directory(p)) for p in sweep.expand(grid)]
  assert directories == [
    "convnext/gelu/seed0",
    "convnext/sugar_nelu_alpha0.1/seed0",
    "convnext/sugar_nelu_alpha0.01/seed0",
    "convnext/gelu/seed1",
    "convnext/sugar_nelu_alpha0.1/seed1",
    "convnext/sugar_nelu_alpha0.01/seed1",
  ]
  extra = sweep.expand(TINY_GRID | {"width": [0.25]})
  assert str(sweep.run_directory(extra[0])) == "mlp/relu/width0.25/seed0"


def test_grid_axes_parse_to_the_keys_types():
  config = default.get_config()
  assert sweep.parse_axis("seed=0,1", config) == ("seed", [0, 1])
  assert sweep.parse_axis("alpha=None,0.5", config) == ("alpha", [None, 0.5])
  assert sweep.parse_axis("augment=true", config) == ("augment", [True])
  for bad in ("seed", "seed=a", "no_such_key=1", "model_options=x"):
    with pytest.raises(training.ConfigError):
      sweep.parse_axis(bad, config)


def test_sweep_trains_each_run_in_its_directory(swept):
  workdir, result = swept
  expected = [workdir / "mlp/relu/seed0", workdir / "mlp/sugar_bsilu/seed0"]
  assert result.trained == expected and not result.failed
  for directory in expected:
    assert (directory / "summary.json").is_file()
    config = json.loads((directory / "config.json").read_text())
    assert config["activation"] == directory.parent.name


def test_sweep_skips_finished_runs(swept):
  workdir, _ = swept
  summary = workdir / "mlp/relu/seed0/summary.json"
  before = summary.stat().st_mtime_ns
  result = sweep.run(tiny_config(), sweep.expand(TINY_GRID), workdir)
  assert len(result.skipped) == 2 and not result.trained
  assert summary.stat().st_mtime_ns == before


def test_report_writes_the_table_and_every_figure(swept, tmp_path):
  workdir, _ = swept
  written = report.write_report([workdir], tmp_path)
  names = {path.name for path in written}
  assert names == {"results.md", "surrogates.png"} | {
    f"{figure}_mlp_digits.png" for figure in FIGURES
  }
  for path in written:
    assert path.stat().st_size > 0
  table = (tmp_path / "results.md").read_text()
  assert "## MLP, digits" in table
  assert "| ReLU |" in table and "| B-SiLU | — |  |" in table


class _FakeTrainer:
  """Fails for ReLU, otherwise finishes at once."""

  def __init__(self, config, workdir):
    self.config, self.workdir = config, pathlib.Path(workdir)

  def run(self):
    if self.config.activation == "relu":
      raise training.NonFiniteLossError("the training loss became nan")
    self.workdir.mkdir(parents=True, exist_ok=True)
    (self.workdir / "summary.json").write_text("{}")


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
  monkeypatch.setattr(sweep.training, "Trainer", _FakeTrainer)
  points = sweep.expand(TINY_GRID)
  relu, bsilu = tmp_path / "mlp/relu/seed0", tmp_path / "mlp/sugar_bsilu/seed0"

  result = sweep.run(tiny_config(), points, tmp_path)
  assert result.failed == [relu] and result.trained == [bsilu]
  record = json.loads((relu / sweep.FAILED).read_text())
  assert record["error"] == "NonFiniteLossError"
  assert "nan" in record["message"]

  again = sweep.run(tiny_config(), points, tmp_path)
  assert again.failed == [relu] and again.skipped == [bsilu]
  assert not again.trained

  monkeypatch.setattr(_FakeTrainer, "run", lambda self: None)
  retried = sweep.run(tiny_config(), points, tmp_path, retry_failed=True)
  assert retried.trained == [relu] and not retried.failed
  assert not (relu / sweep.FAILED).exists()


def test_print_commands_lists_one_train_command_per_run(tmp_path):
  output = subprocess.run(
    [
      sys.executable, "sweep.py", "--config=configs/paper_convnext.py",
      f"--workdir={tmp_path}", "--grid=seed=0,1", "--print_commands",
      "--config.data_dir=my data",
    ],
    cwd=ROOT, capture_output=True, text=True, check=True,
  ).stdout  # fmt: skip
  commands = [shlex.split(line) for line in output.splitlines()]
  assert len(commands) == 6  # GELU, NeLU at two alphas; two seeds.
  assert commands[1][:6] == [
    "python", "train.py", "--config", "configs/paper_convnext.py",
    "--workdir", f"{tmp_path}/convnext/sugar_nelu_alpha0.1/seed0",
  ]  # fmt: skip
  assert commands[1][6:] == [
    "--config.data_dir=my data",
    "--config.model=convnext",
    "--config.activation=sugar_nelu",
    "--config.alpha=0.1",
    "--config.seed=0",
  ]
  assert "--config.alpha" not in " ".join(commands[0])  # GELU has none.
  assert not list(tmp_path.iterdir())  # Nothing trained.


def test_sweep_command_exits_non_zero_when_a_run_fails(tmp_path):
  process = subprocess.run(
    [
      sys.executable, "sweep.py", "--config=configs/default.py",
      f"--workdir={tmp_path}", "--grid=activation=relu",
      "--config.learning_rate=1e30", "--config.width=0.0625",
      "--config.train_examples=64", "--config.batch_size=32",
      "--config.num_epochs=1",
    ],
    cwd=ROOT, capture_output=True, text=True,
  )  # fmt: skip
  assert process.returncode == 1, process.stderr[-2000:]
  record = json.loads((tmp_path / "mlp/relu/seed0/failed.json").read_text())
  assert record["error"] == "NonFiniteLossError"
  assert "1 failed" in process.stdout


def test_mean_std_is_exact():
  assert report.mean_std([0.25, 0.5]) == (0.375, math.sqrt(2) / 8)
  assert report.mean_std([0.75, 0.5, 0.25]) == (0.5, 0.25)
  assert report.mean_std([0.3]) == (0.3, None)
  with pytest.raises(ValueError):
    report.mean_std([])
  assert report.format_mean_std([0.75, 0.5, 0.25]) == "50.00 ± 25.00"
  assert report.format_mean_std([0.8125]) == "81.25"


def write_run(directory, activation, seed, accuracy, dead, **config):
  """A finished run's files, written by hand."""
  directory.mkdir(parents=True)
  settings = default.get_config()
  settings.update(activation=activation, seed=seed, **config)
  (directory / "config.json").write_text(settings.to_json())
  record = {
    "step": 10, "epoch": 1, "train_loss": 1.0, "train_accuracy": accuracy,
    "test_loss": 1.0, "test_accuracy": accuracy, "dead_fraction": dead,
    "sparsity": 0.5, "step_time": 0.1,
    "layers": {"layers/0": {"dead_fraction": dead, "sparsity": 0.5}},
  }  # fmt: skip
  (directory / "metrics.jsonl").write_text(json.dumps(record) + "\n")
  summary = {key: value for key, value in record.items() if key != "layers"}
  (directory / "summary.json").write_text(json.dumps(summary))


def test_results_table_is_exact_for_known_runs(tmp_path):
  paper = {"model": "vgg16", "dataset": "cifar10"}
  for seed, (accuracy, dead) in enumerate(
    [(0.75, 0.1), (0.5, 0.2), (0.25, 0.3)]
  ):
    write_run(tmp_path / f"relu{seed}", "relu", seed, accuracy, dead, **paper)
  write_run(tmp_path / "sugar", "sugar_bsilu", 0, 0.8125, 0.0, **paper)
  write_run(tmp_path / "plain", "bsilu", 0, 0.5, 0.5, **paper)
  (tmp_path / "unfinished").mkdir()
  (tmp_path / "unfinished/config.json").write_text(
    default.get_config().to_json()
  )

  text = report.results_markdown(
    report.group_runs(report.find_runs([tmp_path])),
    unfinished=[tmp_path / "unfinished"],
  )
  rows = [line for line in text.splitlines() if line.startswith("| ")]
  assert rows[1:] == [
    "| ReLU | 50.00 ± 25.00 | 3 | — |  | 78.50[^baseline] |  | 0.200 | — "
    "| 0.500 | — |",
    "| B-SiLU | 50.00 | 1 | 81.25 | 1 |  | 88.35 | 0.500 | 0.000 | 0.500 "
    "| 0.500 |",
  ]
  assert "## VGG-16, CIFAR-10" in text
  assert "[^baseline]: " in text and "plain ReLU or B-SiLU" in text
  assert "unfinished: 1 runs" in text
