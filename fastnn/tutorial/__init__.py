"""fastnn.tutorial: the tutorial's own modules, computed by fastnn's kernels.

A tutorial script switches by changing its imports, e.g.
``from fastnn.tutorial.bp import Network``.  Modules: activators, perceptron,
linear_unit, bp, fc, cnn, rnn, lstm, recursive.
"""
