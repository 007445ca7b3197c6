"""Reading runs back: the paper's results table and figures.

:func:`load_run` reads one run directory and :func:`find_runs` every run
below some directories. :func:`write_report` groups finished runs by
model, dataset and activation (with its alpha), the seeds of a group
being its repeats, and writes:

* ``results.md``: per model and dataset, the paper's table. A row per
  surrogate, with its test accuracy as the forward activation ("plain")
  and as SUGAR's backward surrogate, mean ± sample standard deviation over
  seeds, the paper's numbers where it gives them, and the mean dead
  fraction and sparsity; ReLU first.
* ``surrogates.png``: each surrogate and its derivative beside ReLU's
  step derivative.
* per model and dataset, ``curves_*.png`` (test accuracy and loss per
  epoch), ``dead_sparsity_*.png`` (dead fraction and sparsity per epoch),
  ``layers_*.png`` (each layer's dead fraction at the end) and
  ``activation_counts_*.png`` (on what fraction of test inputs each unit
  fires, ReLU against SUGAR B-SiLU). Curves are means over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import pathlib
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from sugar_jax import activations, surrogates

SUGAR_PREFIX = activations.SUGAR_PREFIX

SURROGATE_ORDER = surrogates.PAPER_ORDER

DISPLAY_NAMES = {
  "relu": "ReLU",
  "leaky_relu": "LeakyReLU",
  "elu": "ELU",
  "selu": "SELU",
  "gelu": "GELU",
  "silu": "SiLU",
  "mish": "Mish",
  "bsilu": "B-SiLU",
  "nelu": "NeLU",
}

MODEL_NAMES = {
  "vgg16": "VGG-16",
  "resnet18": "ResNet-18",
  "convnext": "Conv2NeXt",
  "swin": "Swin Transformer",
  "mlp": "MLP",
}

DATASET_NAMES = {
  "cifar10": "CIFAR-10",
  "cifar100": "CIFAR-100",
  "cifar10_jpeg": "CIFAR-10 (JPEG)",
  "digits": "digits (scikit-learn)",
}

PAPER_DATASETS = {"cifar10_jpeg": "cifar10"}
"""Datasets that stand in for one of the paper's, for its numbers."""


@dataclasses.dataclass(frozen=True)
class PaperResult:
  """The paper's headline test accuracies (%) for a model and dataset.

  Attributes:
    baseline: "without SUGAR"; the paper leaves unclear whether this is
      plain ReLU or B-SiLU as the forward activation.
    sugar_bsilu: SUGAR with the B-SiLU surrogate.
    num_epochs: the paper's training length.
  """

  baseline: float
  sugar_bsilu: float
  num_epochs: int


PAPER_RESULTS = {
  ("vgg16", "cifar10"): PaperResult(78.50, 88.35, 50),
  ("vgg16", "cifar100"): PaperResult(48.73, 64.47, 100),
  ("resnet18", "cifar10"): PaperResult(76.76, 86.42, 50),
  ("resnet18", "cifar100"): PaperResult(48.99, 56.51, 100),
}
"""Horuz et al. (2025), by (model, dataset)."""

PAPER_PROTOCOL = {
  "width": 1.0,
  "train_examples": 0,
  "batch_size": 128,
  "optimizer": "sgd",
  "learning_rate": 0.001,
  "augment": False,
}
"""The paper's CNN protocol, besides the number of epochs."""

SETUP_KEYS = (
    "width", "model_options", "train_examples", "test_examples",
    "num_epochs", "batch_size", "optimizer", "learning_rate", "schedule",
    "momentum", "weight_decay", "augment", "negative_only",
)  # fmt: skip
"""Config keys shown under each table; they should be equal in a table."""


@dataclasses.dataclass
class Run:
  """A run's outputs, as written by :class:`sugar_jax.training.Trainer`."""

  workdir: pathlib.Path
  config: dict[str, Any]
  metrics: list[dict[str, Any]]
  summary: dict[str, Any] | None

  @property
  def alpha(self) -> float | None:
    return self.config.get("alpha")

  @property
  def label(self) -> str:
    if self.alpha is None:
      return self.config["activation"]
    return f"{self.config['activation']} (alpha {self.alpha})"

  def activation_counts(self) -> dict[str, Any] | None:
    """``activation_counts.json``, or None if the run has none."""
    path = self.workdir / "activation_counts.json"
    return json.loads(path.read_text()) if path.exists() else None


def load_run(workdir: str | pathlib.Path) -> Run:
  """Reads ``config.json``, ``metrics.jsonl`` and ``summary.json``."""
  workdir = pathlib.Path(workdir)
  config = json.loads((workdir / "config.json").read_text())
  metrics_path = workdir / "metrics.jsonl"
  metrics = []
  if metrics_path.exists():
    metrics = [json.loads(x) for x in metrics_path.read_text().splitlines()]
  summary_path = workdir / "summary.json"
  summary = None
  if summary_path.exists():
    summary = json.loads(summary_path.read_text())
  return Run(workdir, config, metrics, summary)


def find_runs(roots: Iterable[str | pathlib.Path]) -> list[Run]:
  """Every run below ``roots``: each directory holding a ``config.json``."""
  runs, seen = [], set()
  for root in roots:
    for path in sorted(pathlib.Path(root).rglob("config.json")):
      if "checkpoints" in path.parent.parts:
        continue  # Orbax's own files.
      if path.parent.resolve() not in seen:
        seen.add(path.parent.resolve())
        runs.append(load_run(path.parent))
  return runs


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
  """The mean and the sample standard deviation (ddof 1) of ``values``.

  Both are exact up to the final rounding (Python's ``statistics``
  computes with fractions). The deviation is None for a single value.

  Raises:
    ValueError: ``values`` is empty.
  """
  if not values:
    raise ValueError("mean_std of no values")
  mean = statistics.mean(values)
  return mean, statistics.stdev(values) if len(values) > 1 else None


def format_mean_std(
  values: Sequence[float], scale: float = 100.0, digits: int = 2
) -> str:
  """``"mean ± std"`` of the scaled values (percent by default).

  A single value is shown alone, without ``±``.
  """
  mean, std = mean_std([scale * value for value in values])
  if std is None:
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {std:.{digits}f}"


def activation_label(activation: str, alpha: float | None = None) -> str:
  """A display name: ``"SUGAR B-SiLU"``, ``"NeLU (α = 0.01)"``."""
  surrogate = activation.removeprefix(SUGAR_PREFIX)
  label = DISPLAY_NAMES.get(surrogate, surrogate)
  if activation.startswith(SUGAR_PREFIX):
    label = f"SUGAR {label}"
  return label if alpha is None else f"{label} (α = {alpha})"


@dataclasses.dataclass
class Group:
  """The finished runs (seeds) of one model, dataset and activation."""

  model: str
  dataset: str
  activation: str
  alpha: float | None
  runs: list[Run]

  @property
  def surrogate(self) -> str:
    """The surrogate's name; ``"relu"`` for ReLU."""
    return self.activation.removeprefix(SUGAR_PREFIX)

  @property
  def is_sugar(self) -> bool:
    return self.activation.startswith(SUGAR_PREFIX)

  @property
  def label(self) -> str:
    return activation_label(self.activation, self.alpha)

  def finals(self, key: str) -> list[float]:
    """The final value of a metric, one per seed."""
    return [run.summary[key] for run in self.runs]

  def mean_curves(self, keys: Sequence[str]) -> list[dict[str, float]]:
    """Per epoch evaluated in every seed, the mean of each metric."""
    by_epoch = [{m["epoch"]: m for m in run.metrics} for run in self.runs]
    epochs = sorted(set.intersection(*(set(e) for e in by_epoch)))
    return [
      {
        "epoch": epoch,
        **{key: mean_std([e[epoch][key] for e in by_epoch])[0] for key in keys},
      }
      for epoch in epochs
    ]

  def final_layers(self, key: str) -> dict[str, float]:
    """Per layer, the mean over seeds of a metric at the last evaluation."""
    layers = [run.metrics[-1]["layers"] for run in self.runs]
    return {
      path: mean_std([seed[path][key] for seed in layers])[0]
      for path in layers[0]
    }


def _row_key(group: Group) -> tuple:
  """Sorts ReLU first, then the surrogates in the paper's order."""
  order = ("relu",) + SURROGATE_ORDER
  position = (
    order.index(group.surrogate) if group.surrogate in order else len(order)
  )
  return (
    position,
    group.surrogate,
    group.alpha is not None,
    group.alpha or 0.0,
    group.is_sugar,
  )


def group_runs(runs: Iterable[Run]) -> dict[tuple[str, str], list[Group]]:
  """Groups finished runs by (model, dataset), then by activation.

  Runs without ``summary.json`` (unfinished) are left out. Tables come
  in the order of :data:`MODEL_NAMES`; within one, groups in the paper's
  row order, ReLU first.
  """
  groups: dict[tuple, Group] = {}
  for run in runs:
    if run.summary is None:
      continue
    config = run.config
    key = (config["model"], config["dataset"], config["activation"], run.alpha)
    if key not in groups:
      groups[key] = Group(*key, runs=[])
    groups[key].runs.append(run)

  def table_order(key):
    model = list(MODEL_NAMES).index(key[0]) if key[0] in MODEL_NAMES else 99
    return model, key[0], key[1]

  tables: dict[tuple[str, str], list[Group]] = {}
  for key in sorted(groups, key=table_order):
    tables.setdefault(key[:2], []).append(groups[key])
  for group_list in tables.values():
    group_list.sort(key=_row_key)
    for group in group_list:
      group.runs.sort(key=lambda run: run.config["seed"])
  return tables


def _setup(groups: list[Group]) -> dict[str, Any]:
  """The value of each of :data:`SETUP_KEYS` across a table's runs.

  A key whose runs disagree maps to the list of its distinct values.
  """
  setup = {}
  for key in SETUP_KEYS:
    values = []
    for group in groups:
      for run in group.runs:
        value = run.config.get(key)
        if value not in values:
          values.append(value)
    setup[key] = values[0] if len(values) == 1 else values
  return setup


def results_table(model: str, dataset: str, groups: list[Group]) -> str:
  """The paper's table for one model and dataset, in Markdown."""
  rows: dict[tuple, dict[str, Group]] = {}
  for group in groups:
    row = rows.setdefault((group.surrogate, group.alpha), {})
    row["sugar" if group.is_sugar else "plain"] = group
  paper = PAPER_RESULTS.get((model, PAPER_DATASETS.get(dataset, dataset)))

  lines = [
    "| activation | plain acc. (%) | n | SUGAR acc. (%) | n "
    "| paper plain | paper SUGAR | dead plain | dead SUGAR "
    "| sparsity plain | sparsity SUGAR |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for (surrogate, alpha), row in rows.items():
    plain, sugar = row.get("plain"), row.get("sugar")
    paper_plain = paper_sugar = ""
    if paper is not None and alpha is None:
      if surrogate == "relu":
        paper_plain = f"{paper.baseline:.2f}[^baseline]"
      if surrogate == "bsilu":
        paper_sugar = f"{paper.sugar_bsilu:.2f}"
    cells = [
      activation_label(surrogate, alpha),
      _cell(plain, "test_accuracy", format_mean_std),
      str(len(plain.runs)) if plain else "",
      _cell(sugar, "test_accuracy", format_mean_std),
      str(len(sugar.runs)) if sugar else "",
      paper_plain,
      paper_sugar,
    ]
    for key in ("dead_fraction", "sparsity"):
      for group in (plain, sugar):
        cells.append(_cell(group, key, _mean_text))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _cell(group, key, form):
  return form(group.finals(key)) if group is not None else "—"


def _mean_text(values):
  return f"{mean_std(values)[0]:.3f}"


def _differences(model, dataset, setup):
  """How a table's setup departs from the paper's, in words."""
  paper_dataset = PAPER_DATASETS.get(dataset, dataset)
  paper = PAPER_RESULTS.get((model, paper_dataset))
  if paper is None:
    return []
  expected = {**PAPER_PROTOCOL, "num_epochs": paper.num_epochs}
  found = [
    f"{key} {setup[key]} (paper: {value})"
    for key, value in expected.items()
    if setup[key] != value
  ]
  if dataset != paper_dataset:
    found.append(f"dataset {dataset} (paper: {paper_dataset})")
  if setup.get("test_examples"):
    found.append(
      f"test_examples {setup['test_examples']} (paper: the whole test set)"
    )
  if setup.get("momentum"):
    found.append(
      f"momentum {setup['momentum']} (paper: not stated; the paper configs "
      "here use none)"
    )
  return found


def results_markdown(
  tables: dict[tuple[str, str], list[Group]],
  unfinished: Sequence[pathlib.Path] = (),
  failed: Sequence[pathlib.Path] = (),
) -> str:
  """The whole ``results.md``: a table per model and dataset, and notes."""
  parts = [
    "# Results",
    "",
    "Final test accuracy, mean ± sample standard deviation over the n "
    "seeds (no ± for a single seed). *plain*: the surrogate itself as the "
    "forward activation; *SUGAR*: ReLU forward, the surrogate's "
    "derivative backward. *dead*: the fraction of units that fired on no "
    "test input; *sparsity*: the fraction of activation values that are "
    "zero; both at the end of training, means over seeds.",
  ]
  for (model, dataset), groups in tables.items():
    setup = _setup(groups)
    mixed = [key for key, value in setup.items() if isinstance(value, list)]
    if mixed:
      logging.warning(
        "%s on %s: the runs differ in %s; their seeds are pooled anyway",
        model, dataset, ", ".join(mixed),
      )  # fmt: skip
    parts += [
      "",
      f"## {MODEL_NAMES.get(model, model)}, "
      f"{DATASET_NAMES.get(dataset, dataset)}",
      "",
      results_table(model, dataset, groups),
      "",
      "Setup: "
      + ", ".join(f"{key} {json.dumps(value)}" for key, value in setup.items())
      + ".",
    ]
    if mixed:
      parts += ["", f"**Mixed setups** in {', '.join(mixed)}."]
    differences = _differences(model, dataset, setup)
    if differences:
      parts += [
        "",
        "Differs from the paper's protocol in "
        + "; ".join(differences)
        + ". Read the paper's numbers as the direction to expect, not as "
        "targets.",
      ]
  if unfinished:
    parts += ["", f"Not counted, unfinished: {len(unfinished)} runs."]
    parts += [f"- `{path}`" for path in unfinished]
  if failed:
    parts += ["", f"Not counted, failed: {len(failed)} runs."]
    parts += [f"- `{path}`" for path in failed]
  if any("[^baseline]" in part for part in parts):
    parts += [
      "",
      "[^baseline]: The paper's accuracy *without SUGAR*. The paper does "
      "not make clear whether this baseline is plain ReLU or B-SiLU as the "
      "forward activation; it is shown in the ReLU row.",
    ]
  return "\n".join(parts) + "\n"


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  from matplotlib import pyplot

  return pyplot


CURVES = (
  ("test_accuracy", "test accuracy"),
  ("train_loss", "train loss"),
  ("dead_fraction", "dead fraction"),
  ("sparsity", "sparsity"),
)


def _plot_panels(lines, panels, path, title=None):
  """One panel per metric; ``lines`` are (label, style, records)."""
  plt = _pyplot()
  figure, axes = plt.subplots(
    1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False
  )
  for axis, (key, name) in zip(axes[0], panels, strict=True):
    for label, style, records in lines:
      epochs = [record["epoch"] for record in records]
      axis.plot(
        epochs, [r[key] for r in records], label=label, marker=".", **style
      )
    axis.set_title(name)
    axis.set_xlabel("epoch")
    axis.grid(alpha=0.3)
  axes[0][-1].legend(
    fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5)
  )
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(figure)


def plot_curves(runs: list[Run], path: str | pathlib.Path) -> None:
  """Saves a figure of each run's curves over epochs, one panel a metric."""
  _plot_panels([(run.label, {}, run.metrics) for run in runs], CURVES, path)


def _styles(groups: list[Group]) -> list[dict[str, Any]]:
  """A colour per surrogate (and alpha), solid for SUGAR, dashed plain."""
  plt = _pyplot()
  colours = plt.get_cmap("tab10")
  rows = []
  for group in groups:
    if group.surrogate != "relu" and (group.surrogate, group.alpha) not in rows:
      rows.append((group.surrogate, group.alpha))
  styles = []
  for group in groups:
    if group.surrogate == "relu":
      styles.append({"color": "black", "linestyle": "-"})
      continue
    colour = colours(rows.index((group.surrogate, group.alpha)) % 10)
    styles.append(
      {"color": colour, "linestyle": "-" if group.is_sugar else "--"}
    )
  return styles


def _title(model, dataset):
  return (
    f"{MODEL_NAMES.get(model, model)}, {DATASET_NAMES.get(dataset, dataset)}"
  )


def plot_group_curves(
  groups: list[Group],
  panels: Sequence[tuple[str, str]],
  path: str | pathlib.Path,
) -> None:
  """Each group's metrics over epochs, means over seeds, a panel each."""
  keys = [key for key, _ in panels]
  lines = [
    (group.label, style, group.mean_curves(keys))
    for group, style in zip(groups, _styles(groups), strict=True)
  ]
  _plot_panels(lines, panels, path, _title(groups[0].model, groups[0].dataset))


def plot_layers(groups: list[Group], path: str | pathlib.Path) -> None:
  """Each layer's dead fraction at the end of training, per activation."""
  plt = _pyplot()
  layers = list(groups[0].final_layers("dead_fraction"))
  figure, axis = plt.subplots(figsize=(max(6, 0.45 * len(layers) + 3), 4))
  for group, style in zip(groups, _styles(groups), strict=True):
    dead = group.final_layers("dead_fraction")
    axis.plot(
      range(len(layers)),
      [dead.get(layer, math.nan) for layer in layers],
      marker="o",
      markersize=3,
      label=group.label,
      **style,
    )
  axis.set_xticks(range(len(layers)), layers, rotation=90, fontsize="x-small")
  axis.set_ylabel("dead fraction at the end")
  axis.set_title(_title(groups[0].model, groups[0].dataset))
  axis.grid(alpha=0.3)
  axis.legend(fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
  figure.tight_layout()
  figure.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(figure)


COUNT_ACTIVATIONS = ("relu", "sugar_bsilu")
"""The activations compared in the activation-count figure, as the paper."""


def plot_activation_counts(
  groups: list[Group], path: str | pathlib.Path
) -> bool:
  """Histograms of on what fraction of test inputs each unit fires.

  All layers pooled, from the lowest seed of ReLU and of SUGAR B-SiLU (at
  default alpha), as the paper's VGG-16 analysis; without either, of the
  first two activations.

  Returns:
    Whether a figure was written (False when no run has counts).
  """
  chosen = [
    g for g in groups if g.activation in COUNT_ACTIVATIONS and g.alpha is None
  ] or groups[:2]
  histograms = []
  for group in chosen:
    for run in group.runs:
      counts = run.activation_counts()
      if counts is not None:
        histograms.append((group, run, counts))
        break
  if not histograms:
    return False

  plt = _pyplot()
  import numpy as np

  figure, axis = plt.subplots(figsize=(6, 4))
  bins = np.linspace(0, 1, 21)
  for group, run, counts in histograms:
    fires = np.concatenate([np.asarray(c) for c in counts["layers"].values()])
    fractions = fires / counts["examples"]
    dead = np.mean(fires == 0)
    axis.hist(
      fractions,
      bins=bins,
      histtype="step",
      linewidth=1.5,
      label=f"{group.label}, seed {run.config['seed']} "
      f"({100 * dead:.1f}% dead)",
    )
  axis.set_xlabel("fraction of test inputs on which a unit fires")
  axis.set_ylabel("units (all layers)")
  axis.set_title(_title(groups[0].model, groups[0].dataset))
  axis.legend(fontsize="small")
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)
  return True


def plot_surrogates(path: str | pathlib.Path) -> None:
  """Each surrogate (default hyperparameters) and its derivative."""
  import numpy as np

  from sugar_jax import surrogates

  plt = _pyplot()
  x = np.linspace(-4, 4, 401)
  relu_derivative = (x > 0).astype(float)
  figure, axes = plt.subplots(2, 4, figsize=(14, 6.5), sharex=True)
  for axis, name in zip(axes.flat, SURROGATE_ORDER, strict=True):
    surrogate = surrogates.SURROGATES[name]
    axis.plot(x, np.maximum(x, 0), color="0.7", label="ReLU")
    axis.plot(x, relu_derivative, color="0.4", linestyle=":", label="ReLU′")
    axis.plot(x, np.asarray(surrogate.function(x)), label=DISPLAY_NAMES[name])
    axis.plot(
      x,
      np.asarray(surrogate.derivative_at(x)),
      linestyle="--",
      label=f"{DISPLAY_NAMES[name]}′ (SUGAR's backward)",
    )
    axis.set_title(DISPLAY_NAMES[name])
    axis.set_ylim(-2, 4)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="x-small", loc="upper left")
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def write_report(
  roots: Iterable[str | pathlib.Path], out: str | pathlib.Path
) -> list[pathlib.Path]:
  """Writes ``results.md`` and every figure for the runs below ``roots``.

  Args:
    roots: directories searched recursively for runs.
    out: the output directory, created if needed.

  Returns:
    The files written.

  Raises:
    ValueError: no finished run below ``roots``.
  """
  roots = list(roots)
  out = pathlib.Path(out)
  runs = find_runs(roots)
  tables = group_runs(runs)
  if not tables:
    raise ValueError(
      f"no finished run (a directory with config.json and summary.json) "
      f"below {', '.join(map(str, roots))}"
    )
  unfinished = [run.workdir for run in runs if run.summary is None]
  failed = sorted(
    {
      path.parent
      for root in roots
      for path in pathlib.Path(root).rglob("failed.json")
    }
  )
  unfinished = [path for path in unfinished if path not in failed]

  out.mkdir(parents=True, exist_ok=True)
  written = [out / "results.md", out / "surrogates.png"]
  written[0].write_text(results_markdown(tables, unfinished, failed))
  plot_surrogates(written[1])
  for (model, dataset), groups in tables.items():
    name = f"{model}_{dataset}"
    figures = {
      f"curves_{name}.png": (
        ("test_accuracy", "test accuracy"),
        ("test_loss", "test loss"),
      ),
      f"dead_sparsity_{name}.png": (
        ("dead_fraction", "dead fraction"),
        ("sparsity", "sparsity"),
      ),
    }
    for filename, panels in figures.items():
      plot_group_curves(groups, panels, out / filename)
      written.append(out / filename)
    plot_layers(groups, out / f"layers_{name}.png")
    written.append(out / f"layers_{name}.png")
    counts = out / f"activation_counts_{name}.png"
    if plot_activation_counts(groups, counts):
      written.append(counts)
    else:
      logging.warning("No activation_counts.json for %s on %s", model, dataset)
  logging.info(
    "Wrote %d files to %s from %d finished runs", len(written), out,
    sum(len(g.runs) for gs in tables.values() for g in gs),
  )  # fmt: skip
  return written
