"""Orbax checkpoints of a training run, with errors that name the file.

A checkpoint holds the NNX state of the model and optimizer (parameters,
batch statistics, optimizer moments, RNG counters) and a small JSON record
of where the run stands (step, epoch, the running sums of the current
epoch's metrics). The data order and the random keys of every step derive
from the seed and the step, so these are all a run needs to continue
exactly where it stopped.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx


class CheckpointError(RuntimeError):
  """A checkpoint that exists but cannot be used."""


def _is_key(x: Any) -> bool:
  return isinstance(x, jax.Array) and jax.dtypes.issubdtype(
    x.dtype, jax.dtypes.prng_key
  )


def _to_savable(state: nnx.State) -> dict:
  # Orbax stores plain arrays: typed PRNG keys go in as their raw data.
  pure = nnx.to_pure_dict(state)
  return jax.tree.map(
    lambda x: jax.random.key_data(x) if _is_key(x) else x, pure
  )


class Checkpoints:
  """The checkpoints of one run, in ``directory``.

  Args:
    directory: where checkpoints go (created if missing).
    max_to_keep: how many of the latest checkpoints to keep.
  """

  def __init__(self, directory: str | pathlib.Path, max_to_keep: int = 2):
    self.directory = pathlib.Path(directory).absolute()
    options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=True
    )
    self._manager = ocp.CheckpointManager(
      self.directory, options=options, item_names=("state", "progress")
    )

  def latest_step(self) -> int | None:
    """The step of the newest complete checkpoint, or None."""
    return self._manager.latest_step()

  def save(self, step: int, state: nnx.State, progress: dict) -> None:
    """Saves ``state`` and the JSON-serialisable ``progress`` at ``step``."""
    self._manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(_to_savable(state)),
        progress=ocp.args.JsonSave(progress),
      ),
      force=True,
    )

  def wait(self) -> None:
    """Blocks until every save has reached the disk."""
    self._manager.wait_until_finished()

  def restore(self, step: int, state: nnx.State) -> tuple[nnx.State, dict]:
    """Restores the checkpoint at ``step`` into the structure of ``state``.

    Args:
      step: a step returned by :meth:`latest_step`.
      state: the state of a freshly built model and optimizer; its shapes,
        dtypes and shardings are the target of the restore.

    Returns:
      The restored state and the progress record.

    Raises:
      CheckpointError: the checkpoint is unreadable or does not fit
        ``state`` (another model, width or optimizer); the message names
        the checkpoint's directory.
    """
    path = self.directory / str(step)
    target = _to_savable(state)
    abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      target,
    )
    try:
      restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract),
          progress=ocp.args.JsonRestore(),
        ),
      )
      arrays = restored["state"]
      _check_same_structure(target, arrays)
    except Exception as error:  # Orbax raises many kinds; all mean the same.
      raise CheckpointError(
        f"cannot restore the checkpoint in {path}: {error}. It may be "
        "corrupt or come from a different model or optimizer; move it "
        "away to start again, or use another --workdir."
      ) from error

    def rewrap(saved, fresh):
      if _is_key(fresh):
        return jax.random.wrap_key_data(saved, impl=jax.random.key_impl(fresh))
      return saved

    pure = jax.tree.map(rewrap, arrays, nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, pure)
    logging.info("Restored the checkpoint of step %d from %s", step, path)
    return state, restored["progress"]

  def close(self) -> None:
    """Waits for pending saves and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()


def _check_same_structure(expected: Any, restored: Any) -> None:
  expected_leaves = jax.tree_util.tree_leaves_with_path(expected)
  restored_leaves = jax.tree_util.tree_leaves_with_path(restored)
  if [p for p, _ in expected_leaves] != [p for p, _ in restored_leaves]:
    raise ValueError("the checkpoint holds other variables than the model")
  for (path, want), (_, got) in zip(
    expected_leaves, restored_leaves, strict=True
  ):
    if want.shape != got.shape or want.dtype != got.dtype:
      raise ValueError(
        f"{jax.tree_util.keystr(path)} is {got.dtype}{list(got.shape)} in "
        f"the checkpoint but {want.dtype}{list(want.shape)} in the model"
      )
