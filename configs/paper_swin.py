r"""Swin Transformer: GELU against SUGAR NeLU (alpha 0.1 and 0.01).

Reproduces the paper's Swin Transformer experiment (Horuz et al., 2025,
arXiv 2505.22074): a Swin, natively GELU in its MLPs, retrained with
SUGAR (ReLU forward, NeLU's derivative backward), which the paper finds
matches or slightly beats GELU. The grid (get_grid): GELU, and SUGAR NeLU
with alpha 0.01 (the paper's value for Swin) and 0.1 (its value for
Conv2NeXt), five seeds each: 15 runs.

  python sweep.py --config configs/paper_swin.py --workdir runs/paper_swin
  python report.py --runs runs/paper_swin --out docs/paper_swin

The argument after a colon picks the dataset, any prepared TFDS image
classification dataset (default cifar100):

  python sweep.py --config configs/paper_swin.py:cifar10 \
    --workdir runs/paper_swin_cifar10

The paper does not fully specify its recipe for this model: it trains on
CIFAR and Tiny-ImageNet with AdamW-style settings. Ours, chosen and not
taken from the paper:

* the model: Swin-T's embedding (96), depths (2, 2, 6, 2) and heads (3,
  6, 12, 24), with 2x2 patches and 4x4 windows for 32x32 images
  (sugar_jax.models.swin); no dropout or stochastic depth. Only the MLPs'
  activation changes; the attention softmax stays. Tiny-ImageNet's 64x64
  images also fit.
* dataset CIFAR-100: the harder of the CIFAR sets, where activation
  choices show most. Tiny-ImageNet is not a TFDS dataset; prepare it as
  one to run it here.
* AdamW, learning rate 5e-4 with cosine decay to zero, weight decay 0.05,
  batch 128, 100 epochs. Swin's AdamW and weight decay at a smaller
  batch; the trainer has no warm-up, so the peak learning rate is below
  the usual 1e-3 to start safely without one.
* augmentation on (random crop with 4-pixel padding, horizontal flip):
  transformers have little inductive bias and overfit CIFAR quickly
  without it. Mixup, CutMix, RandAugment and label smoothing of the Swin
  recipe are not available.
* initialisation: the model's truncated normal (std 0.02), as Swin.
"""

from configs import _paper


def get_config(dataset: str = "cifar100"):
  """Our Swin recipe on `dataset`; see the module docstring."""
  return _paper.modern_config("swin", dataset)


def get_grid() -> dict[str, list]:
  """GELU and SUGAR NeLU at alpha 0.1 and 0.01, seeds 0 to 4."""
  return _paper.modern_grid("swin")
