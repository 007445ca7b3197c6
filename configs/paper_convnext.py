r"""Conv2NeXt: GELU against SUGAR NeLU (alpha 0.1 and 0.01).

Reproduces the paper's Conv2NeXt experiment (Horuz et al., 2025, arXiv
2505.22074): a ConvNeXt, natively GELU, retrained with SUGAR (ReLU
forward, NeLU's derivative backward), which the paper finds matches or
slightly beats GELU. The grid (get_grid): GELU, and SUGAR NeLU with alpha
0.1 (the paper's value for Conv2NeXt) and 0.01 (its value for Swin), five
seeds each: 15 runs.

  python sweep.py --config configs/paper_convnext.py \
    --workdir runs/paper_convnext
  python report.py --runs runs/paper_convnext --out docs/paper_convnext

The argument after a colon picks the dataset, any prepared TFDS image
classification dataset (default cifar100):

  python sweep.py --config configs/paper_convnext.py:cifar10 \
    --workdir runs/paper_convnext_cifar10

The paper does not fully specify its recipe for this model: it trains on
CIFAR and Tiny-ImageNet with AdamW-style settings. Ours, chosen and not
taken from the paper:

* the model: ConvNeXt-T's depths (3, 3, 9, 3) and dims (96, 192, 384,
  768) with a 2x2 patchify stem for 32x32 images (sugar_jax.models
  .convnext), no stochastic depth. Tiny-ImageNet's 64x64 images also fit.
* dataset CIFAR-100: the harder of the CIFAR sets, where activation
  choices show most. Tiny-ImageNet is not a TFDS dataset; prepare it as
  one to run it here.
* AdamW, learning rate 5e-4 with cosine decay to zero, weight decay 0.05,
  batch 128, 100 epochs. The ConvNeXt recipe's AdamW and weight decay,
  at a smaller batch; the trainer has no warm-up, so the peak learning
  rate is below the usual 1e-3 to start safely without one.
* augmentation on (random crop with 4-pixel padding, horizontal flip):
  without it, a network this size overfits CIFAR within a few epochs.
  Mixup, CutMix, RandAugment and label smoothing of the ConvNeXt recipe
  are not available.
* initialisation: the model's truncated normal (std 0.02), as ConvNeXt.
"""

from configs import _paper


def get_config(dataset: str = "cifar100"):
  """Our Conv2NeXt recipe on `dataset`; see the module docstring."""
  return _paper.modern_config("convnext", dataset)


def get_grid() -> dict[str, list]:
  """GELU and SUGAR NeLU at alpha 0.1 and 0.01, seeds 0 to 4."""
  return _paper.modern_grid("convnext")
