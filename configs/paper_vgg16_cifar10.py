r"""VGG-16 on CIFAR-10: ReLU, the surrogates, and SUGAR.

Reproduces the VGG-16 / CIFAR-10 comparison of Horuz et al.
(2025), "The Resurrection of the ReLU" (arXiv 2505.22074): ReLU, each of
the eight surrogates as the forward activation, and SUGAR (ReLU forward,
the surrogate's derivative backward) with each, 17 activations, five seeds
each (the grid of get_grid). The paper reports 78.50 % without SUGAR
and 88.35 % with SUGAR B-SiLU.

One run:

  python train.py --config configs/paper_vgg16_cifar10.py \
    --workdir runs/paper_vgg16_cifar10/one --config.activation=sugar_bsilu

The whole grid (85 runs, one directory each), then the paper's table:

  python sweep.py --config configs/paper_vgg16_cifar10.py \
    --workdir runs/paper_vgg16_cifar10
  python report.py --runs runs/paper_vgg16_cifar10 \
    --out docs/paper_vgg16_cifar10

Data: TFDS "cifar10", read from data_dir (TFDS's default directory when
unset; preparing it needs the network). Offline, the prepared JPEG copy of
CIFAR-10 is a stand-in for CIFAR-10: --config.dataset=cifar10_jpeg
--config.data_dir=../shared/data/tfds.

The protocol the paper states: SGD, learning rate 0.001, batch 128, no
augmentation, 50 epochs.

The choices the paper leaves open (momentum 0, our initialisation, the
default surrogate hyperparameters, the last epoch's accuracy) are guesses,
explained in configs/_paper.py.

And for VGG-16 alone:

* batch norm after every convolution (model_options.batch_norm). Without
  it, thirteen convolutions at PyTorch's default initialisation pass
  almost no signal, and plain SGD at 0.001 would barely move it in the
  paper's budget; the paper's VGG-16 does train, and the CIFAR VGG-16 most code
  bases use (e.g. kuangliu/pytorch-cifar) has batch norm. Try the other
  reading with --config.model_options.batch_norm=False.
"""

from configs import _paper


def get_config():
  """The paper's protocol for VGG-16 on CIFAR-10."""
  return _paper.cnn_config("vgg16", "cifar10", num_epochs=50)


def get_grid() -> dict[str, list]:
  """The sweep: 17 activations times seeds 0 to 4."""
  return _paper.cnn_grid("vgg16")
