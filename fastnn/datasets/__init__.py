"""fastnn.datasets: image data sets read from local files, and a small sample that ships with fastnn.

Nothing is downloaded: ``load_fashion_mnist`` and ``load_mnist`` read the
IDX files where a person or a package put them, ``load_cifar10`` reads
CIFAR-10's python batches, and ``load_sample`` returns 2,000 training and
500 test images of Fashion-MNIST bundled inside the package.
"""

from .idx import read_idx
from .loaders import find_fashion_mnist, load_cifar10, load_fashion_mnist, load_mnist, load_sample

__all__ = ["read_idx", "find_fashion_mnist", "load_fashion_mnist", "load_mnist", "load_cifar10", "load_sample"]
