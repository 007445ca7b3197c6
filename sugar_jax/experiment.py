"""One command, one or several runs: the entry point behind train.py.

A config whose ``activation`` lists several names separated by commas
trains one run per activation, each in its own subdirectory, then writes a
comparison table (``comparison.md``) and figure (``comparison.png``).
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import jax
import ml_collections

from sugar_jax import data, report, training
from sugar_jax.checkpoint import CheckpointError

USER_ERRORS = (
  training.ConfigError,
  training.NonFiniteLossError,
  CheckpointError,
  data.DatasetError,
)
"""Errors caused by the configuration, data or work directory."""


def split_activations(config: ml_collections.ConfigDict) -> list[str]:
  """The activations a config asks for, in order."""
  names = [name.strip() for name in config.activation.split(",")]
  if not all(names):
    raise training.ConfigError(
      f"activation {config.activation!r} has an empty name"
    )
  return names


def train(
  config: ml_collections.ConfigDict, workdir: pathlib.Path
) -> list[dict[str, Any]]:
  """Trains every run the config asks for and returns their summaries.

  Args:
    config: a config as in ``configs/default.py``.
    workdir: the output directory. With one activation the run writes here;
      with several, each writes to ``workdir / activation``.

  Returns:
    The summary of each run.
  """
  names = split_activations(config)
  configs = []
  for name in names:
    single = ml_collections.ConfigDict(config.to_dict())
    single.activation = name
    training.validate(single)  # Fail on any run's mistake before training.
    configs.append(single)
  if len(names) == 1:
    return [training.Trainer(configs[0], workdir).run()]

  summaries = []
  for single in configs:
    logging.info("=== Run %d of %d: %s", len(summaries) + 1, len(names),
                 single.activation)  # fmt: skip
    summaries.append(
      training.Trainer(single, workdir / single.activation).run()
    )
  if jax.process_index() == 0:
    runs = [report.load_run(workdir / name) for name in names]
    (workdir / "comparison.md").write_text(format_table(summaries) + "\n")
    report.plot_curves(runs, workdir / "comparison.png")
    logging.info("Wrote %s and %s", workdir / "comparison.md",
                 workdir / "comparison.png")  # fmt: skip
  return summaries


def format_table(summaries: list[dict[str, Any]]) -> str:
  """A Markdown table of final accuracy, dead fraction and sparsity."""
  lines = [
    "| model | activation | test accuracy | test loss | dead fraction "
    "| sparsity | time |",
    "|---|---|---|---|---|---|---|",
  ]
  for s in summaries:
    lines.append(
      f"| {s['model']} | {s['activation']} | {s['test_accuracy']:.4f} "
      f"| {s['test_loss']:.4f} | {s['dead_fraction']:.4f} "
      f"| {s['sparsity']:.4f} | {s['wall_time']:.0f} s |"
    )
  return "\n".join(lines)
