"""fastnn.nn: batch-first layers for real training, on the same kernels as fastnn.tutorial.

Arrays are batch-first (``(N, F)``, ``(N, C, H, W)``, ``(N, T, F)``) and
float32 unless a layer is built with ``dtype=np.float64``.
"""

from .base import Layer
from .recurrent import LSTM, RNN, BiRNN
from .tree import TreeBatch, TreeRNN

__all__ = ["Layer", "RNN", "BiRNN", "LSTM", "TreeRNN", "TreeBatch"]
