"""Reading finished runs back and drawing their curves."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any


@dataclasses.dataclass
class Run:
  """A run's outputs, as written by :class:`sugar_jax.training.Trainer`."""

  workdir: pathlib.Path
  config: dict[str, Any]
  metrics: list[dict[str, Any]]
  summary: dict[str, Any] | None

  @property
  def label(self) -> str:
    return self.config["activation"]


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


CURVES = (
  ("test_accuracy", "test accuracy"),
  ("train_loss", "train loss"),
  ("dead_fraction", "dead fraction"),
  ("sparsity", "sparsity"),
)


def plot_curves(runs: list[Run], path: str | pathlib.Path) -> None:
  """Saves a figure of each run's curves over epochs, one panel a metric."""
  import matplotlib

  matplotlib.use("Agg")
  from matplotlib import pyplot as plt

  figure, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.2))
  for axis, (key, title) in zip(axes, CURVES, strict=True):
    for run in runs:
      epochs = [m["epoch"] for m in run.metrics]
      axis.plot(epochs, [m[key] for m in run.metrics], label=run.label)
    axis.set_title(title)
    axis.set_xlabel("epoch")
    axis.grid(alpha=0.3)
  axes[0].legend()
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)
