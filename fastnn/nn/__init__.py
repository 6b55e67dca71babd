"""fastnn.nn: batch-first layers for real training, on the same kernels as fastnn.tutorial.

Arrays are batch-first (``(N, F)``, ``(N, C, H, W)``, ``(N, T, F)``) and
float32 unless a layer is built with ``dtype=np.float64``.
"""

from .base import Layer
from .conv import Conv2D
from .pooling import AvgPool2D, MaxPool2D
from .shape import Flatten

__all__ = ["Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten"]
