"""Demo section: the LSTM chapter, its gradient check and its speed."""

import numpy as np

from ._sequence_common import largest_gradient_error, speed_line

TITLE = "Chapter 7: LSTM"


def gradient_check():
    """The tutorial's lstm check (error = sum of the last h), over all twelve parameters."""
    from fastnn.tutorial.activators import IdentityActivator
    from fastnn.tutorial.lstm import LstmLayer

    layer = LstmLayer(3, 2, 1e-3, rng=0)
    xs = [np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [3.0], [4.0]])]

    def error():
        layer.reset_state()
        for x in xs:
            layer.forward(x)
        return float(layer.h_list[-1].sum())

    error()
    layer.backward(xs[-1], np.ones((2, 1)), IdentityActivator())
    names = [f"W{g}{k}" for g in "fioc" for k in "hx"] + [f"b{g}" for g in "fioc"]
    return largest_gradient_error(error, [(getattr(layer, n), getattr(layer, f"{n}_grad").copy()) for n in names])


def run(say):
    say("The tutorial's gradient check (its data set, two steps; largest relative error against central "
        "differences):")
    say(f"  LstmLayer, all twelve parameters: {gradient_check():.1e}  "
        "(the published update mixes up gradient names and biases)")
    say("Speed of one training step (20 forward calls, backward, update), 32 inputs -> 64 states, float64:")
    say(speed_line("LstmLayer"))
