"""Tests of dataset loading, augmentation and deterministic batching."""

import importlib.util
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from sugar_jax import data

# CI clones the repository beside a copy of shared/, as on the dev machines.
TFDS_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared/data/tfds"
needs_cifar = pytest.mark.skipif(
  not (TFDS_DIR / "cifar10_jpeg").is_dir(),
  reason=f"no prepared cifar10_jpeg in {TFDS_DIR}",
)


def test_import_does_not_import_tfds_or_sklearn():
  code = (
    "import sys, sugar_jax.data\n"
    "heavy = {'tensorflow_datasets', 'sklearn'} & set(sys.modules)\n"
    "assert not heavy, heavy\n"
  )
  root = pathlib.Path(__file__).resolve().parents[1]
  subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# Loading.


def test_digits_shapes_dtypes_and_classes():
  dataset = data.load("digits")

  assert dataset.train.images.shape == (1437, 8, 8, 1)
  assert dataset.test.images.shape == (360, 8, 8, 1)
  assert dataset.train.images.dtype == np.uint8
  assert dataset.train.labels.dtype == np.int32
  assert dataset.image_shape == (8, 8, 1)
  assert dataset.num_classes == 10
  assert dataset.train.images.max() == 255
  # Stratified: every class holds 10% of the test split, to one example.
  counts = np.bincount(dataset.test.labels, minlength=10)
  assert counts.min() >= 35 and counts.max() <= 37
  assert dataset.mean.dtype == dataset.std.dtype == np.float32
  assert dataset.mean.shape == dataset.std.shape == (1,)
  pixels = dataset.train.images / 255
  np.testing.assert_allclose(dataset.mean, [pixels.mean()], rtol=1e-5)
  np.testing.assert_allclose(dataset.std, [pixels.std()], rtol=1e-5)


def test_digits_is_the_same_every_call():
  first, second = data.load(), data.load("digits")

  for a, b in [(first.train, second.train), (first.test, second.test)]:
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_examples_keeps_the_first_ones():
  full = data.load("digits")
  small = data.load("digits", train_examples=100, test_examples=7)

  np.testing.assert_array_equal(small.train.images, full.train.images[:100])
  np.testing.assert_array_equal(small.test.labels, full.test.labels[:7])


@pytest.mark.parametrize(
  "kwargs, error",
  [
    ({"train_examples": -1}, ValueError),
    ({"test_examples": -1}, ValueError),
    ({"train_examples": 1438}, data.DatasetError),
    ({"test_examples": 361}, data.DatasetError),
  ],
)
def test_bad_number_of_examples(kwargs, error):
  with pytest.raises(error, match="examples"):
    data.load("digits", **kwargs)


@needs_cifar
def test_cifar10_jpeg_from_prepared_tfds():
  import tensorflow_datasets as tfds

  dataset = data.load(
    "cifar10_jpeg",
    data_dir=str(TFDS_DIR),
    train_examples=256,
    test_examples=64,
  )

  assert dataset.train.images.shape == (256, 32, 32, 3)
  assert dataset.test.images.shape == (64, 32, 32, 3)
  assert dataset.train.images.dtype == np.uint8
  assert dataset.train.labels.dtype == np.int32
  assert dataset.num_classes == 10
  assert set(np.unique(dataset.train.labels)) <= set(range(10))
  assert dataset.mean.shape == (3,)
  assert np.all((dataset.mean > 0.2) & (dataset.mean < 0.8))
  source = tfds.data_source("cifar10_jpeg", split="test", data_dir=TFDS_DIR)
  np.testing.assert_array_equal(dataset.test.images[5], source[5]["image"])
  assert dataset.test.labels[5] == source[5]["label"]


@needs_cifar
def test_cache_is_written_then_read(tmp_path):
  def load():
    return data.load(
      "cifar10_jpeg",
      data_dir=str(TFDS_DIR),
      train_examples=32,
      test_examples=16,
      cache_dir=str(tmp_path),
    )

  first = load()
  files = sorted(tmp_path.glob("*.npz"))
  assert [f.name.split("-")[1] for f in files] == ["test", "train"]
  # Change the cached labels: a second load must return them.
  with np.load(files[1]) as arrays:
    images = arrays["images"]
  np.savez(files[1], images=images, labels=np.full(32, 7, np.int32))
  second = load()

  np.testing.assert_array_equal(second.train.images, first.train.images)
  np.testing.assert_array_equal(second.train.labels, np.full(32, 7))
  np.testing.assert_array_equal(second.test.labels, first.test.labels)


def test_tfds_mock_data(tmp_path):
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=12):
    dataset = data.load("cifar10", data_dir=str(tmp_path), train_examples=8)

  assert dataset.train.images.shape == (8, 32, 32, 3)
  assert dataset.test.images.shape == (12, 32, 32, 3)
  assert dataset.train.images.dtype == np.uint8
  assert dataset.num_classes == 10
  assert set(np.unique(dataset.train.labels)) <= set(range(10))


def test_images_of_different_shapes_are_rejected(tmp_path):
  import tensorflow_datasets as tfds

  # Mocked imagenette has images of random sizes, as the real one.
  with tfds.testing.mock_data(num_examples=4):
    with pytest.raises(data.DatasetError, match="resiz"):
      data.load("imagenette", data_dir=str(tmp_path))


def test_unknown_dataset_names_close_ones(tmp_path):
  with pytest.raises(data.DatasetError, match="unknown.*cifar100"):
    data.load("cifar1000", data_dir=str(tmp_path))


@pytest.mark.skipif(
  importlib.util.find_spec("tensorflow") is not None,
  reason="with TensorFlow, load would try to download",
)
def test_unprepared_dataset_without_tensorflow(tmp_path):
  with pytest.raises(data.DatasetError) as error:
    data.load("mnist", data_dir=str(tmp_path))

  message = str(error.value)
  assert "'mnist' is not prepared in " + str(tmp_path) in message
  assert "sugar-jax[prepare]" in message and "network" in message


def test_failed_download_names_dataset_dir_and_cause(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds

  def no_network(self, **kwargs):
    raise ConnectionError("Name or service not known")

  monkeypatch.setattr(data, "_tensorflow_available", lambda: True)
  monkeypatch.setattr(
    tfds.core.DatasetBuilder, "download_and_prepare", no_network
  )
  with pytest.raises(data.DatasetError) as error:
    data.load("mnist", data_dir=str(tmp_path))

  message = str(error.value)
  assert "'mnist'" in message and str(tmp_path) in message
  assert "Name or service not known" in message
  assert isinstance(error.value.__cause__, ConnectionError)


# Normalisation and augmentation.


def test_normalize():
  images = np.array([[[[0, 255, 51]]]], np.uint8)
  mean = np.array([0.5, 0.5, 0.2], np.float32)
  std = np.array([0.5, 0.25, 0.1], np.float32)

  out = data.normalize(images, mean, std)

  assert out.dtype == np.float32
  np.testing.assert_allclose(out[0, 0, 0], [-1.0, 2.0, 0.0], atol=1e-6)


# Compiled once for all the tests that draw many augmentations.
augment = jax.jit(data.augment, static_argnames="padding")


def random_images(shape, seed=0):
  # Values in [1, 2), so that padding zeros stand out.
  return np.random.default_rng(seed).uniform(1, 2, shape).astype(np.float32)


def test_augment_keeps_shape_and_dtype_and_is_deterministic():
  images = random_images((5, 8, 6, 3))
  rng = jax.random.key(0)

  out = augment(rng, images)

  assert out.shape == images.shape and out.dtype == images.dtype
  np.testing.assert_array_equal(out, data.augment(rng, images))  # Eagerly.
  assert not np.array_equal(out, augment(jax.random.key(1), images))


def all_crops(image, padding):
  """Every shifted and mirrored copy augment may produce, by (dy, dx, flip)."""
  height, width, _ = image.shape
  padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
  crops = {}
  for dy in range(2 * padding + 1):
    for dx in range(2 * padding + 1):
      crop = padded[dy : dy + height, dx : dx + width]
      crops[dy, dx, False] = crop
      crops[dy, dx, True] = crop[:, ::-1]
  return crops


def test_augment_is_a_padded_crop_then_maybe_a_flip():
  image = random_images((7, 9, 2))
  crops = all_crops(image, padding=4)
  seen = set()

  for seed in range(40):
    out = np.asarray(augment(jax.random.key(seed), image[None]))[0]
    matches = [k for k, crop in crops.items() if np.array_equal(out, crop)]
    assert len(matches) == 1, seed
    seen.add(matches[0])

  assert {flip for _, _, flip in seen} == {False, True}
  assert len({(dy, dx) for dy, dx, _ in seen}) > 15


def test_augment_known_flip_and_shift():
  # A 1 x 3 image; with no padding only the flip can change it.
  image = np.array([[[1.0], [2.0], [3.0]]], np.float32)[None]
  outs = [augment(jax.random.key(s), image, padding=0) for s in range(8)]
  flipped = [bool(out[0, 0, 0, 0] == 3.0) for out in outs]
  for out, flip in zip(outs, flipped, strict=True):
    expected = [3.0, 2.0, 1.0] if flip else [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(out[0, 0, :, 0], expected)
  assert any(flipped) and not all(flipped)

  # One bright pixel moves by the crop offset and nowhere else.
  image = np.zeros((1, 9, 9, 1), np.float32)
  image[0, 4, 4, 0] = 1.0
  for seed in range(8):
    out = np.asarray(augment(jax.random.key(seed), image, padding=2))
    assert out.sum() == 1.0
    row, column = np.argwhere(out[0, :, :, 0])[0]
    assert abs(row - 4) <= 2 and abs(column - 4) <= 2


def test_augment_draws_per_example():
  images = np.repeat(random_images((1, 6, 6, 1)), 32, axis=0)

  out = np.asarray(augment(jax.random.key(3), images))

  assert len({out[i].tobytes() for i in range(32)}) > 8


# Batching.


def numbered_split(n, shape=(2, 2, 1)):
  """Example i has label i and every pixel equal to i % 256."""
  images = np.broadcast_to(
    (np.arange(n) % 256).astype(np.uint8)[:, None, None, None], (n, *shape)
  )
  return data.Split(np.array(images), np.arange(n, dtype=np.int32))


def test_epoch_permutation_is_reproducible_and_pinned():
  order = data.epoch_permutation(seed=0, epoch=0, n=10)

  # Pinned: if NumPy ever changes this, resumed runs would change order.
  np.testing.assert_array_equal(order, [4, 9, 8, 7, 5, 3, 0, 1, 2, 6])
  np.testing.assert_array_equal(order, data.epoch_permutation(0, 0, 10))
  assert sorted(data.epoch_permutation(5, 3, 1000)) == list(range(1000))
  assert not np.array_equal(
    data.epoch_permutation(5, 3, 100), data.epoch_permutation(5, 4, 100)
  )
  assert not np.array_equal(
    data.epoch_permutation(5, 3, 100), data.epoch_permutation(6, 3, 100)
  )


def test_steps_per_epoch():
  assert data.steps_per_epoch(100, 32) == 3
  assert data.steps_per_epoch(100, 32, drop_remainder=False) == 4
  assert data.steps_per_epoch(96, 32, drop_remainder=False) == 3


def test_batches_follow_the_epoch_permutation():
  split = numbered_split(50)

  epoch = list(data.batches(split, 8, seed=1, epoch=2))

  assert len(epoch) == 6
  labels = np.concatenate([labels for _, labels in epoch])
  np.testing.assert_array_equal(labels, data.epoch_permutation(1, 2, 50)[:48])
  for images, labels in epoch:
    assert images.shape == (8, 2, 2, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0, 0, 0], labels)


def test_batches_resume_mid_epoch():
  split = numbered_split(50)

  full = list(data.batches(split, 8, seed=1, epoch=2))
  tail = list(data.batches(split, 8, seed=1, epoch=2, start_step=4))

  assert len(tail) == 2
  for (a, x), (b, y) in zip(full[4:], tail, strict=True):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, y)
  assert not list(data.batches(split, 8, seed=1, epoch=2, start_step=6))


def test_process_slices_make_up_the_global_batch():
  split = numbered_split(50)

  global_ = list(data.batches(split, 12, seed=0, epoch=1))
  parts = [
    list(data.batches(split, 12, 0, 1, process_index=i, process_count=2))
    for i in range(2)
  ]

  for step, (_, labels) in enumerate(global_):
    assert [len(parts[i][step][1]) for i in range(2)] == [6, 6]
    np.testing.assert_array_equal(
      np.concatenate([parts[0][step][1], parts[1][step][1]]), labels
    )


def test_batches_keep_the_remainder_on_request():
  split = numbered_split(50)

  epoch = list(data.batches(split, 8, 0, 0, drop_remainder=False))

  assert [len(labels) for _, labels in epoch] == [8] * 6 + [2]
  labels = np.concatenate([labels for _, labels in epoch])
  assert sorted(labels) == list(range(50))


@pytest.mark.parametrize(
  "kwargs",
  [
    {"batch_size": 10, "process_count": 3},
    {"batch_size": 0},
    {"batch_size": 8, "process_index": 2, "process_count": 2},
    {"batch_size": 8, "process_count": 2, "drop_remainder": False},
    {"batch_size": 8, "start_step": 7},
  ],
)
def test_batches_reject_arguments_at_the_call(kwargs):
  with pytest.raises(ValueError):
    data.batches(numbered_split(50), seed=0, epoch=0, **kwargs)


@pytest.mark.parametrize("process_count", [1, 2, 4])
def test_eval_batches_count_every_example_once(process_count):
  split = numbered_split(23)
  seen = []

  for index in range(process_count):
    batches = list(data.eval_batches(split, 8, index, process_count))
    assert len(batches) == 3
    for images, labels, mask in batches:
      assert images.shape == (8 // process_count, 2, 2, 1)
      assert labels.shape == mask.shape == (8 // process_count,)
      np.testing.assert_array_equal(images[mask][:, 0, 0, 0], labels[mask])
      assert not images[~mask].any()
      seen.extend(labels[mask])

  assert sorted(seen) == list(range(23))
