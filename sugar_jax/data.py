"""Image-classification data: loading, normalisation, augmentation, batches.

A dataset is decoded once into uint8 arrays kept in host memory. Training
batches are drawn from them as a pure function of (seed, epoch, step), so a
run resumed from a checkpoint sees the batches it would have seen, and each
process reads only its own slice of every global batch. Normalisation and
augmentation are pure JAX functions, meant to run on device inside the
jitted training step.

The default dataset, ``digits``, is scikit-learn's copy of the UCI
handwritten digits: it needs neither the network nor TFDS files. Any other
name is a TFDS image-classification dataset, read without TensorFlow from a
``data_dir`` where it has been prepared.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import importlib.util
import logging
import math
import os
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

DEFAULT_DATASET = "digits"
DIGITS_TEST_EXAMPLES = 360

# Examples per read from a TFDS source: large enough to amortise the call,
# small enough that a shape mismatch is reported early.
_READ_CHUNK = 1024


class DatasetError(ValueError):
  """A dataset cannot be found, prepared or used for image classification."""


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
  """The decoded examples of one split.

  Attributes:
    images: uint8 array, N x H x W x C.
    labels: int32 array, N.
  """

  images: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.labels)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A classification dataset held in memory.

  Attributes:
    name: the name it was loaded by.
    train: the training examples.
    test: the evaluation examples (TFDS's 'validation' split where the
      dataset has no 'test' split).
    num_classes: the number of classes; labels lie in [0, num_classes).
    mean: float32 per-channel mean of the train images, in [0, 1] scale.
    std: float32 per-channel standard deviation, in the same scale.
  """

  name: str
  train: Split
  test: Split
  num_classes: int
  mean: np.ndarray
  std: np.ndarray

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """(height, width, channels) of every image."""
    return tuple(self.train.images.shape[1:])


def load(
  name: str = DEFAULT_DATASET,
  data_dir: str | None = None,
  train_examples: int = 0,
  cache_dir: str | None = None,
  test_examples: int = 0,
) -> Dataset:
  """Loads a dataset into memory.

  Args:
    name: ``"digits"`` (built in), or the name of a TFDS image-classification
      dataset with an ``image`` and a ClassLabel ``label`` feature.
    data_dir: where TFDS datasets are prepared; None for TFDS's default.
    train_examples: if positive, keep only the first this many training
      examples, in the dataset's stored order.
    cache_dir: if given, decoded TFDS splits are saved there as .npz files,
      which later loads read instead of decoding again.
    test_examples: like ``train_examples``, for the test split.

  Returns:
    The dataset, with normalisation statistics of its (kept) train images.

  Raises:
    DatasetError: the dataset is unknown, not prepared and cannot be, not an
      image-classification dataset, or fewer examples are stored than asked.
    ValueError: a negative number of examples.
  """
  for what, count in [("train", train_examples), ("test", test_examples)]:
    if count < 0:
      raise ValueError(f"{what}_examples must be >= 0, got {count}")

  start = time.perf_counter()
  if name == "digits":
    train, test, num_classes = _load_digits(train_examples, test_examples)
  else:
    train, test, num_classes = _load_tfds(
      name, data_dir, train_examples, test_examples, cache_dir
    )
  mean, std = _channel_stats(train.images)
  dataset = Dataset(name, train, test, num_classes, mean, std)
  logging.info(
    "Loaded %s in %.1f s: %d train and %d test images of shape %s, %d classes.",
    name,
    time.perf_counter() - start,
    len(train),
    len(test),
    dataset.image_shape,
    num_classes,
  )
  return dataset


def _load_digits(
  train_examples: int, test_examples: int
) -> tuple[Split, Split, int]:
  """scikit-learn's 8x8 digits, split 1437 / 360, stratified and fixed."""
  from sklearn import datasets, model_selection

  digits = datasets.load_digits()
  # Each pixel counts the set bits in a 4x4 block of the original scan, 0..16.
  images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
  labels = digits.target.astype(np.int32)
  train_index, test_index = model_selection.train_test_split(
    np.arange(len(labels)),
    test_size=DIGITS_TEST_EXAMPLES,
    stratify=labels,
    random_state=0,
  )

  def split(index: np.ndarray, limit: int, what: str) -> Split:
    # Sorted, so that "the first N examples" follow the original order.
    index = np.sort(index)[: _kept(limit, len(index), "digits", what)]
    return Split(images[index], labels[index])

  return (
    split(train_index, train_examples, "train"),
    split(test_index, test_examples, "test"),
    10,
  )


def _kept(limit: int, available: int, name: str, what: str) -> int:
  """How many examples to keep when asked for `limit` (0: all)."""
  if available == 0:
    raise DatasetError(f"the {what} split of {name!r} is empty")
  if limit > available:
    raise DatasetError(
      f"{what}_examples={limit}, but {name!r} has only {available} "
      f"{what} examples"
    )
  return limit or available


def _load_tfds(
  name: str,
  data_dir: str | None,
  train_examples: int,
  test_examples: int,
  cache_dir: str | None,
) -> tuple[Split, Split, int]:
  """Reads and decodes the train and test splits of a TFDS dataset."""
  # Imported here: TFDS takes a while to import and digits does not need it.
  import tensorflow_datasets as tfds

  where = data_dir or "TFDS's default data_dir"
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.DatasetNotFoundError:
    # TFDS's own message lists every dataset it knows; name a few instead.
    raise DatasetError(_unknown_message(tfds, name, data_dir)) from None

  mocked = _tfds_is_mocked(builder)
  if not builder.is_prepared() and not mocked:
    _prepare(builder, name, where)

  features = builder.info.features
  label = features["label"] if "label" in features else None
  if "image" not in features or not hasattr(label, "num_classes"):
    raise DatasetError(
      f"{name!r} is not an image-classification dataset: it needs an "
      f"'image' and a ClassLabel 'label' feature, and has {list(features)}"
    )

  splits = {}
  for what, limit in [("train", train_examples), ("test", test_examples)]:
    split_name = _split_name(builder.info.splits, what, name)
    source = builder.as_data_source(split=split_name)
    count = _kept(limit, len(source), name, what)
    path = None
    if cache_dir:
      path = _cache_path(cache_dir, builder, split_name, count, len(source))
    decode = functools.partial(_decode, source, count, name, mocked)
    splits[what] = _cached(path, decode)
  return splits["train"], splits["test"], label.num_classes


def _unknown_message(tfds: Any, name: str, data_dir: str | None) -> str:
  message = (
    f"unknown dataset {name!r}: it is neither 'digits', a TFDS dataset, "
    f"nor prepared in {data_dir or 'the default TFDS data_dir'}."
  )
  try:
    # Community datasets would need the network and TensorFlow.
    known = tfds.list_builders(with_community_datasets=False)
  except Exception:  # Suggestions are a courtesy; the error stands anyway.
    known = []
  if data_dir and os.path.isdir(data_dir):
    known += os.listdir(data_dir)
  close = difflib.get_close_matches(name, sorted(set(known)), n=5)
  if close:
    message += f" Did you mean {', '.join(close)}?"
  return message


def _tfds_is_mocked(builder: Any) -> bool:
  """Whether `tfds.testing.mock_data` is serving random examples."""
  # It swaps download_and_prepare for a no-op from its own module, and
  # serves any dataset without files, though is_prepared() stays False.
  prepare = type(builder).download_and_prepare
  return prepare.__module__.startswith("tensorflow_datasets.testing")


def _tensorflow_available() -> bool:
  return importlib.util.find_spec("tensorflow") is not None


def _prepare(builder: Any, name: str, where: str) -> None:
  """Downloads and prepares a dataset in the random-access format."""
  if not _tensorflow_available():
    raise DatasetError(
      f"dataset {name!r} is not prepared in {where}. Preparing it needs "
      "TensorFlow (pip install 'sugar-jax[prepare]') and network access; "
      "or prepare it elsewhere and copy it into the data_dir."
    )
  logging.info("Dataset %s is not in %s; downloading it.", name, where)
  try:
    builder.download_and_prepare(file_format="array_record")
  except Exception as error:  # Network, disk and TFDS errors alike.
    raise DatasetError(
      f"could not prepare dataset {name!r} in {where}: {error}"
    ) from error


def _split_name(splits: Any, what: str, name: str) -> str:
  """The TFDS split to read for `what` ("train" or "test")."""
  # No split is recorded under tfds.testing.mock_data: trust the usual name.
  if what in splits or not splits:
    return what
  if what == "test" and "validation" in splits:
    return "validation"
  raise DatasetError(f"{name!r} has no {what} split, only {list(splits)}")


def _decode(source: Any, count: int, name: str, mocked: bool) -> Split:
  """Reads the first `count` examples of a TFDS source into arrays."""
  logging.info("Decoding %d examples of %s.", count, name)
  images = labels = None
  for start in range(0, count, _READ_CHUNK):
    keys = list(range(start, min(start + _READ_CHUNK, count)))
    if mocked:  # There, __getitems__ is not bound to its source (TypeError).
      examples = [source[key] for key in keys]
    else:
      examples = source.__getitems__(keys)
    for key, example in zip(keys, examples, strict=True):
      image = np.asarray(example["image"])
      if images is None:
        if image.dtype != np.uint8 or image.ndim != 3:
          raise DatasetError(
            f"{name!r} has {image.dtype} images of shape {image.shape}; "
            "only uint8 images of shape H x W x C are supported"
          )
        images = np.empty((count, *image.shape), np.uint8)
        labels = np.empty(count, np.int32)
      elif image.shape != images.shape[1:]:
        raise DatasetError(
          f"{name!r} has images of different shapes ({images.shape[1:]} "
          f"and {image.shape} at example {key}); resizing them to one "
          "shape is not supported"
        )
      images[key] = image
      labels[key] = example["label"]
  return Split(images, labels)


def _cache_path(
  cache_dir: str, builder: Any, split: str, count: int, total: int
) -> pathlib.Path:
  """A cache file name that changes with anything that changes the data."""
  data_dir = os.path.abspath(os.fspath(builder.data_dir))
  identity = f"{builder.info.full_name}|{data_dir}|{split}|{count}|{total}"
  digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
  return pathlib.Path(cache_dir) / f"{builder.name}-{split}-{digest}.npz"


def _cached(path: pathlib.Path | None, decode: Callable[[], Split]) -> Split:
  """`decode()`, or its earlier result saved at `path`."""
  if path is not None and path.exists():
    with np.load(path) as arrays:
      logging.info("Read decoded examples from %s.", path)
      return Split(arrays["images"], arrays["labels"])
  split = decode()
  if path is not None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write, then rename: a concurrent reader never sees half a file.
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as file:
      np.savez(file, images=split.images, labels=split.labels)
    os.replace(partial, path)
    logging.info("Saved decoded examples to %s.", path)
  return split


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and standard deviation, in [0, 1] scale."""
  pixels = images.reshape(-1, images.shape[-1])
  total = np.zeros(pixels.shape[1])
  squares = np.zeros(pixels.shape[1])
  # In blocks, so that no float64 copy of the whole dataset is made.
  for start in range(0, len(pixels), 1 << 20):
    block = pixels[start : start + (1 << 20)].astype(np.float64)
    total += block.sum(axis=0)
    squares += np.square(block).sum(axis=0)
  mean = total / len(pixels)
  std = np.sqrt(np.maximum(squares / len(pixels) - mean**2, 0.0))
  # A constant channel would otherwise make normalize divide by zero.
  std = np.maximum(std, 1.0)
  return (mean / 255).astype(np.float32), (std / 255).astype(np.float32)


def normalize(images: Array, mean: Array, std: Array) -> Array:
  r"""Maps uint8 pixels to float32, standardised per channel.

  .. math:: x' = (x / 255 - \mu_c) / \sigma_c

  Args:
    images: uint8 array, ... x C.
    mean: per-channel mean :math:`\mu`, in [0, 1] scale, shape (C,).
    std: per-channel standard deviation :math:`\sigma`, same scale.

  Returns:
    A float32 array of the shape of ``images``.
  """
  images = jnp.asarray(images, jnp.float32) / 255.0
  mean = jnp.asarray(mean, jnp.float32)
  return (images - mean) / jnp.asarray(std, jnp.float32)


def augment(rng: Array, images: Array, padding: int = 4) -> Array:
  """Random crop after zero padding, and random horizontal flip.

  Each image is padded with ``padding`` zeros on every side, cropped back to
  its size at an offset drawn uniformly per image (so its content moves by
  up to ``padding`` pixels each way), then mirrored left to right with
  probability 1/2, also per image. Applied after :func:`normalize`, the
  zeros are the dataset's mean colour.

  Args:
    rng: a JAX PRNG key; the same key gives the same result.
    images: float array, B x H x W x C.
    padding: the largest shift, in pixels (static).

  Returns:
    An array of the shape and dtype of ``images``.
  """
  batch, height, width, channels = images.shape
  crop_rng, flip_rng = jax.random.split(rng)
  offsets = jax.random.randint(crop_rng, (batch, 2), 0, 2 * padding + 1)
  flips = jax.random.bernoulli(flip_rng, 0.5, (batch,))
  padded = jnp.pad(
    images, ((0, 0), (padding, padding), (padding, padding), (0, 0))
  )

  def crop_and_flip(image, offset, flip):
    start = (offset[0], offset[1], 0)
    crop = jax.lax.dynamic_slice(image, start, (height, width, channels))
    return jnp.where(flip, crop[:, ::-1], crop)

  return jax.vmap(crop_and_flip)(padded, offsets, flips)


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """The order in which an epoch visits `n` examples.

  A function of (seed, epoch) alone, in NumPy, so that the data order does
  not depend on JAX's PRNG or on how many steps came before.
  """
  if seed < 0 or epoch < 0:
    raise ValueError(f"seed and epoch must be >= 0, got {seed}, {epoch}")
  sequence = np.random.SeedSequence(seed, spawn_key=(epoch,))
  return np.random.default_rng(sequence).permutation(n)


def steps_per_epoch(
  n: int, batch_size: int, drop_remainder: bool = True
) -> int:
  """The number of batches in an epoch of `n` examples."""
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  return n // batch_size if drop_remainder else math.ceil(n / batch_size)


def _local_batch_size(
  batch_size: int, process_index: int, process_count: int
) -> int:
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  if not 0 <= process_index < process_count:
    raise ValueError(
      f"process_index {process_index} is not in [0, {process_count})"
    )
  if batch_size % process_count:
    raise ValueError(
      f"the global batch size {batch_size} does not divide evenly among "
      f"{process_count} processes"
    )
  return batch_size // process_count


def batches(
  split: Split,
  batch_size: int,
  seed: int,
  epoch: int,
  start_step: int = 0,
  process_index: int = 0,
  process_count: int = 1,
  drop_remainder: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """One epoch of shuffled training batches, from `start_step` on.

  Global batch ``s`` holds examples ``epoch_permutation(seed, epoch, n)``
  ``[s * batch_size : (s + 1) * batch_size]``; process ``i`` of ``k`` gets
  its ``i``-th contiguous ``batch_size // k`` of them.

  Args:
    split: the examples.
    batch_size: the global batch size, over all processes.
    seed: the data-order seed.
    epoch: the epoch, which selects the permutation.
    start_step: the first step to yield, to resume mid-epoch.
    process_index: this process's index, as ``jax.process_index()``.
    process_count: the number of processes, as ``jax.process_count()``.
    drop_remainder: skip the last, incomplete batch. Keeping it needs a
      single process, since it cannot be split evenly.

  Returns:
    An iterator of (uint8 images, int32 labels) for this process.

  Raises:
    ValueError: at the call, for arguments that do not fit together.
  """
  local_size = _local_batch_size(batch_size, process_index, process_count)
  if not drop_remainder and process_count > 1:
    raise ValueError("drop_remainder=False needs a single process")
  steps = steps_per_epoch(len(split), batch_size, drop_remainder)
  if not 0 <= start_step <= steps:
    raise ValueError(f"start_step {start_step} is not in [0, {steps}]")

  order = epoch_permutation(seed, epoch, len(split))
  first = process_index * local_size

  def local_batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    global_batch = order[step * batch_size : (step + 1) * batch_size]
    index = global_batch[first : first + local_size]
    return split.images[index], split.labels[index]

  return (local_batch(step) for step in range(start_step, steps))


def eval_batches(
  split: Split,
  batch_size: int,
  process_index: int = 0,
  process_count: int = 1,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """Every example once, in order, in batches of one fixed shape.

  The last batch is padded with zero images; its mask is False there, so
  that metrics weighted by the mask count each example exactly once.
  Processes split each global batch as in :func:`batches`.

  Args:
    split: the examples.
    batch_size: the global batch size, over all processes.
    process_index: this process's index, as ``jax.process_index()``.
    process_count: the number of processes, as ``jax.process_count()``.

  Returns:
    An iterator of (uint8 images, int32 labels, bool mask) for this process.
  """
  local_size = _local_batch_size(batch_size, process_index, process_count)
  steps = steps_per_epoch(len(split), batch_size, drop_remainder=False)

  def padded_batch(step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    start = step * batch_size + process_index * local_size
    stop = min(start + local_size, len(split))
    count = max(stop - start, 0)
    images = np.zeros((local_size, *split.images.shape[1:]), np.uint8)
    labels = np.zeros(local_size, np.int32)
    images[:count] = split.images[start:stop]
    labels[:count] = split.labels[start:stop]
    return images, labels, np.arange(local_size) < count

  return (padded_batch(step) for step in range(steps))
