"""Demo section: the recurrent network chapter (BPTT), its gradient check and its speed."""

import numpy as np

from ._sequence_common import largest_gradient_error, speed_line

TITLE = "Chapter 6: recurrent network, trained by back propagation through time"


def gradient_check():
    """The tutorial's rnn check: error = sum of the last state, identity activation, two steps."""
    from fastnn.tutorial.activators import IdentityActivator
    from fastnn.tutorial.rnn import RecurrentLayer

    layer = RecurrentLayer(3, 2, IdentityActivator(), 1e-3, rng=0)
    xs = [np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [3.0], [4.0]])]

    def error():
        layer.reset_state()
        for x in xs:
            layer.forward(x)
        return float(layer.state_list[-1].sum())

    error()
    layer.backward(np.ones((2, 1)), IdentityActivator())
    return largest_gradient_error(error, [(layer.W, layer.W_grad.copy()), (layer.U, layer.U_grad.copy())])


def run(say):
    say("The tutorial's gradient check (its data set, two steps; largest relative error against central "
        "differences):")
    say(f"  RecurrentLayer, W and U: {gradient_check():.1e}  (the published code never trains U)")
    say("Speed of one training step (20 forward calls, backward, update), 32 inputs -> 64 states, float64:")
    say(speed_line("RecurrentLayer"))
