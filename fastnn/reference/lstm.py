"""Plain-Python twin of the LSTM layer (the tutorial's lstm chapter), with correct BPTT.

Explicit loops over scalars, numpy arrays only as storage, the tutorial's
twelve parameters by their names (``Wfh, Wfx, bf, Wih, Wix, bi, Woh, Wox,
bo, Wch, Wcx, bc``; h-weights ``(H, H)``, x-weights ``(H, F)``, biases ``(H,
1)``):

    f = sigmoid(Wfh h + Wfx x + bf)   i = sigmoid(Wih h + Wix x + bi)
    o = sigmoid(Woh h + Wox x + bo)   ct = tanh(Wch h + Wcx x + bc)
    c_t = f c_{t-1} + i ct,           h_t = o tanh(c_t)

Backward through time keeps the cell path ``dc_{t-1} += dc_t * f_t`` and sums
every weight gradient over all steps, which the tutorial's published code
does not.
"""

import math

import numpy as np

GATES = ("f", "i", "o", "c")
NAMES = tuple(name for g in GATES for name in (f"W{g}h", f"W{g}x", f"b{g}"))


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _net(params, gate, x, h):
    Wh, Wx, b = (np.asarray(params[n]).tolist() for n in (f"W{gate}h", f"W{gate}x", f"b{gate}"))
    return [sum(Wh[r][k] * h[k] for k in range(len(h))) + sum(Wx[r][k] * x[k] for k in range(len(x))) + b[r][0]
            for r in range(len(b))]


def step_forward(params, x, h_prev, c_prev):
    """One step on flat lists; returns a dict with f, i, o, ct, c, tanh_c, h (flat lists)."""
    f = [_sigmoid(z) for z in _net(params, "f", x, h_prev)]
    i = [_sigmoid(z) for z in _net(params, "i", x, h_prev)]
    o = [_sigmoid(z) for z in _net(params, "o", x, h_prev)]
    ct = [math.tanh(z) for z in _net(params, "c", x, h_prev)]
    c = [f[j] * c_prev[j] + i[j] * ct[j] for j in range(len(f))]
    tanh_c = [math.tanh(v) for v in c]
    return dict(f=f, i=i, o=o, ct=ct, c=c, tanh_c=tanh_c, h=[o[j] * tanh_c[j] for j in range(len(f))])


def sequence_forward(params, xs):
    """Steps of one sequence from zero h and c: xs is a list of T input vectors; returns T step dicts."""
    hidden = len(params["bf"])
    h, c = [0.0] * hidden, [0.0] * hidden
    steps = []
    for x in xs:
        step = step_forward(params, list(np.ravel(x)), h, c)
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
    hidden, features, T = len(params["bf"]), len(np.ravel(xs[0])), len(steps)
    P = {n: np.asarray(params[n]).tolist() for n in NAMES}
    grads = {f"{n}_grad": [[0.0] * (hidden if n.endswith("h") else 1 if n[0] == "b" else features)
                           for _ in range(hidden)] for n in NAMES}
    grad_xs, deltas = [None] * T, [None] * T
    delta_h = [None] * (T + 1)
    carry_h, carry_c = [0.0] * hidden, [0.0] * hidden
    for t in range(T - 1, -1, -1):
        s = steps[t]
        x = list(np.ravel(xs[t]))
        h_prev = steps[t - 1]["h"] if t else [0.0] * hidden
        c_prev = steps[t - 1]["c"] if t else [0.0] * hidden
        g = list(np.ravel(grads_h[t]))
        dh = [g[j] + carry_h[j] for j in range(hidden)]
        delta_h[t + 1] = dh
        dc = [dh[j] * s["o"][j] * (1 - s["tanh_c"][j] ** 2) + carry_c[j] for j in range(hidden)]
        d = dict(
            o=[dh[j] * s["tanh_c"][j] * s["o"][j] * (1 - s["o"][j]) for j in range(hidden)],
            f=[dc[j] * c_prev[j] * s["f"][j] * (1 - s["f"][j]) for j in range(hidden)],
            i=[dc[j] * s["ct"][j] * s["i"][j] * (1 - s["i"][j]) for j in range(hidden)],
            c=[dc[j] * s["i"][j] * (1 - s["ct"][j] ** 2) for j in range(hidden)],
        )
        deltas[t] = dict(f=d["f"], i=d["i"], o=d["o"], ct=d["c"])
        carry_c = [dc[j] * s["f"][j] for j in range(hidden)]
        carry_h = [sum(P[f"W{gate}h"][r][k] * d[gate][r] for gate in GATES for r in range(hidden))
                   for k in range(hidden)]
        grad_xs[t] = [sum(P[f"W{gate}x"][r][k] * d[gate][r] for gate in GATES for r in range(hidden))
                      for k in range(features)]
        for gate in GATES:
            for r in range(hidden):
                grads[f"b{gate}_grad"][r][0] += d[gate][r]
                for k in range(hidden):
                    grads[f"W{gate}h_grad"][r][k] += d[gate][r] * h_prev[k]
                for k in range(features):
                    grads[f"W{gate}x_grad"][r][k] += d[gate][r] * x[k]
    delta_h[0] = carry_h
    return {k: np.array(v) for k, v in grads.items()}, grad_xs, delta_h, deltas


class LstmLayer:
    """The tutorial's ``LstmLayer`` with every gradient correct, written with explicit loops.

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
        self.inputs = []
        self.steps = []
        for name in ("h", "c", "f", "i", "o", "ct"):
            setattr(self, f"{name}_list", [np.zeros((self.state_width, 1))])

    def forward(self, x):
        self.times += 1
        self.inputs.append(np.array(x, dtype=float).reshape(-1, 1))
        step = step_forward(self.params, list(self.inputs[-1].ravel()),
                            list(self.h_list[-1].ravel()), list(self.c_list[-1].ravel()))
        self.steps.append(step)
        for name in ("h", "c", "f", "i", "o", "ct"):
            getattr(self, f"{name}_list").append(np.array(step[name]).reshape(-1, 1))

    def backward(self, x, delta_h, activator=None):
        if isinstance(delta_h, (list, tuple)):
            grads_h = delta_h
        else:
            grads_h = [np.zeros(self.state_width)] * (self.times - 1) + [delta_h]
        grads, _, dh, deltas = sequence_backward(self.params, self.inputs, self.steps, grads_h)
        for name, value in grads.items():
            setattr(self, name, value)
        self.delta_h_list = [np.array(v).reshape(-1, 1) for v in dh]
        for key in ("f", "i", "o", "ct"):
            setattr(self, f"delta_{key}_list",
                    [np.zeros((self.state_width, 1))] + [np.array(d[key]).reshape(-1, 1) for d in deltas])

    def update(self):
        for name in NAMES:
            getattr(self, name).__isub__(self.learning_rate * getattr(self, f"{name}_grad"))
