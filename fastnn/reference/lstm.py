"""Plain-Python twin of the LSTM layer (the tutorial's lstm chapter), with correct BPTT.

As the tutorial writes it: column vectors, one numpy call per gate and
step, explicit loops over time, the twelve parameters by the tutorial's
names (``Wfh, Wfx, bf, Wih, Wix, bi, Woh, Wox, bo, Wch, Wcx, bc``;
h-weights ``(H, H)``, x-weights ``(H, F)``, biases ``(H, 1)``):

    f = sigmoid(Wfh h + Wfx x + bf)   i = sigmoid(Wih h + Wix x + bi)
    o = sigmoid(Woh h + Wox x + bo)   ct = tanh(Wch h + Wcx x + bc)
    c_t = f c_{t-1} + i ct,           h_t = o tanh(c_t)

Back propagation through time keeps the cell path ``dc_{t-1} += dc_t *
f_t`` and sums every weight gradient over all steps, which the tutorial's
published code does not.
"""

import numpy as np

GATES = ("f", "i", "o", "c")
NAMES = tuple(name for g in GATES for name in (f"W{g}h", f"W{g}x", f"b{g}"))


def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _col(v):
    return np.asarray(v, dtype=float).reshape(-1, 1)


def step_forward(params, x, h_prev, c_prev):
    """One step on columns; returns a dict with f, i, o, ct, c, tanh_c, h."""
    def net(gate):
        return np.dot(params[f"W{gate}h"], h_prev) + np.dot(params[f"W{gate}x"], x) + params[f"b{gate}"]

    s = dict(f=sigmoid(net("f")), i=sigmoid(net("i")), o=sigmoid(net("o")), ct=np.tanh(net("c")))
    s["c"] = s["f"] * c_prev + s["i"] * s["ct"]
    s["tanh_c"] = np.tanh(s["c"])
    s["h"] = s["o"] * s["tanh_c"]
    return s


def sequence_forward(params, xs):
    """Steps of one sequence from zero h and c: xs is a list of T input vectors; returns T step dicts."""
    h = c = np.zeros_like(params["bf"])
    steps = []
    for x in xs:
        step = step_forward(params, _col(x), h, c)
        h, c = step["h"], step["c"]
        steps.append(step)
    return steps


def sequence_backward(params, xs, steps, grads_h):
    """BPTT for one sequence; `grads_h` lists ``dE/dh_t`` per step.

    Returns ``(grads, grad_xs, delta_h, deltas)``: the twelve gradients by
    name (``"Wfh_grad"`` ...), ``dE/dx_t`` per step, the total ``dE/dh_t``
    for t = 0..T (index 0: the initial state) and, per step, the errors on
    the gates' weighted inputs as a dict with keys f, i, o, ct.
    """
    grads = {f"{name}_grad": np.zeros(np.shape(params[name])) for name in NAMES}
    T = len(steps)
    grad_xs, deltas, delta_h = [None] * T, [None] * T, [None] * (T + 1)
    carry_h = carry_c = np.zeros_like(params["bf"])
    for t in range(T - 1, -1, -1):
        s, x = steps[t], _col(xs[t])
        h_prev = steps[t - 1]["h"] if t else np.zeros_like(carry_h)
        c_prev = steps[t - 1]["c"] if t else np.zeros_like(carry_h)
        dh = _col(grads_h[t]) + carry_h
        delta_h[t + 1] = dh
        dc = dh * s["o"] * (1 - s["tanh_c"] ** 2) + carry_c
        d = dict(o=dh * s["tanh_c"] * s["o"] * (1 - s["o"]),
                 f=dc * c_prev * s["f"] * (1 - s["f"]),
                 i=dc * s["ct"] * s["i"] * (1 - s["i"]),
                 c=dc * s["i"] * (1 - s["ct"] ** 2))
        deltas[t] = dict(f=d["f"], i=d["i"], o=d["o"], ct=d["c"])
        carry_c = dc * s["f"]
        carry_h = sum(np.dot(params[f"W{g}h"].T, d[g]) for g in GATES)
        grad_xs[t] = sum(np.dot(params[f"W{g}x"].T, d[g]) for g in GATES)
        for g in GATES:
            grads[f"W{g}h_grad"] += np.dot(d[g], h_prev.T)
            grads[f"W{g}x_grad"] += np.dot(d[g], x.T)
            grads[f"b{g}_grad"] += d[g]
    delta_h[0] = carry_h
    return grads, grad_xs, delta_h, deltas


class LstmLayer:
    """The tutorial's ``LstmLayer`` with every gradient correct.

    ``backward(x, delta_h)`` takes ``dE/dh_T`` of the last step, or a list of
    one such vector per step; `x` is accepted as in the tutorial and unused.
    """

    def __init__(self, input_width, state_width, learning_rate, rng=None):
        rng = np.random.default_rng(rng)
        self.input_width, self.state_width, self.learning_rate = input_width, state_width, learning_rate
        for gate in GATES:
            setattr(self, f"W{gate}h", rng.uniform(-1e-4, 1e-4, (state_width, state_width)))
            setattr(self, f"W{gate}x", rng.uniform(-1e-4, 1e-4, (state_width, input_width)))
            setattr(self, f"b{gate}", np.zeros((state_width, 1)))
        self.reset_state()

    @property
    def params(self):
        return {name: getattr(self, name) for name in NAMES}

    def reset_state(self):
        self.times = 0
        self.inputs, self.steps = [], []
        for name in ("h", "c", "f", "i", "o", "ct"):
            setattr(self, f"{name}_list", [np.zeros((self.state_width, 1))])

    def forward(self, x):
        self.times += 1
        self.inputs.append(_col(x))
        step = step_forward(self.params, self.inputs[-1], self.h_list[-1], self.c_list[-1])
        self.steps.append(step)
        for name in ("h", "c", "f", "i", "o", "ct"):
            getattr(self, f"{name}_list").append(step[name])

    def backward(self, x, delta_h, activator=None):
        grads_h = delta_h if isinstance(delta_h, (list, tuple)) else \
            [np.zeros((self.state_width, 1))] * (self.times - 1) + [delta_h]
        grads, _, self.delta_h_list, deltas = sequence_backward(self.params, self.inputs, self.steps, grads_h)
        for name, value in grads.items():
            setattr(self, name, value)
        zero = [np.zeros((self.state_width, 1))]
        for key in ("f", "i", "o", "ct"):
            setattr(self, f"delta_{key}_list", zero + [d[key] for d in deltas])

    def update(self):
        for name in NAMES:
            getattr(self, name).__isub__(self.learning_rate * getattr(self, f"{name}_grad"))
