"""fastnn.nn: batch-first layers for real training, on the same kernels as fastnn.tutorial.

Arrays are batch-first (``(N, F)``, ``(N, C, H, W)``, ``(N, T, F)``) and
float32 unless a layer is built with ``dtype=np.float64``.
"""

from .activations import Identity, ReLU, Sigmoid, Tanh
from .base import Layer
from .callbacks import Callback, EarlyStopping, ProgressBar
from .conv import Conv2D
from .dense import Dense
from .io import load
from .losses import CrossEntropy, MeanSquaredError
from .model import Sequential
from .optim import SGD, Adam
from .pooling import AvgPool2D, MaxPool2D
from .preprocess import Standardize
from .recurrent import LSTM, RNN, BiRNN
from .shape import Flatten
from .tree import TreeBatch, TreeRNN

__all__ = [
    "Layer", "Dense", "ReLU", "Sigmoid", "Tanh", "Identity", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Standardize",
    "Sequential", "CrossEntropy", "MeanSquaredError", "SGD", "Adam", "Callback", "EarlyStopping", "ProgressBar",
    "RNN", "BiRNN", "LSTM", "TreeRNN", "TreeBatch", "load",
]
