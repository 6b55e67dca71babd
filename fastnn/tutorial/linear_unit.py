"""The tutorial's linear unit (chapter 2): a perceptron with the identity activation."""

from .perceptron import Perceptron, identity

f = identity


class LinearUnit(Perceptron):
    """``LinearUnit(input_num)``: trained by stochastic gradient descent, one sample at a time."""

    def __init__(self, input_num):
        super().__init__(input_num, f)
