"""Sequential: a stack of layers trained with fit / evaluate / predict.

Training runs one mini-batch at a time through every layer's compiled
kernels; the Python loop here only slices batches, calls the layers in order
and hands the gradients to the optimizer.  Batch buffers are allocated on the
first step and reused, and the data set is validated once per call, not per
step.
"""

import contextlib
import functools
import math
import threading
import time

import numpy as np

from .._blas import ONE_THREAD_WORK, can_add_product, one_blas_thread
from .._checks import as_float_array, check_int, check_real, describe_shape, make_rng
from ..kernels.activation import IDENTITY
from ..kernels.batched_dense import BAD_BATCH, dense_chain_sgd_step
from ..kernels.loss import SOFTMAX_CROSS_ENTROPY, SQUARED_ERROR, softmax
from ..kernels.optim import all_finite
from .activations import Activation
from .base import Layer
from .callbacks import Callback, ProgressBar
from .conv import Conv2D
from .dense import SMALL_BATCH, BatchBuffers, Dense, NonFiniteGradient
from .losses import _NO_LABELS, CrossEntropy, MeanSquaredError, get_loss
from .optim import SGD, Optimizer
from .pooling import MaxPool2D
from .shape import Flatten


def _loss_error(loss_sum, where):
    """The message for a loss that became NaN or infinite."""
    return (f"the loss became {loss_sum} {where}; training stopped and the model keeps the weights of the last "
            "good step (try a lower learning rate)")


def _gradient_error(where, fused):
    """The message for a gradient that became NaN or infinite after a finite loss (an overflow, in practice)."""
    if fused:
        # Dense layers above the failure were updated while the error passed through them.
        kept = ("the Dense layers above the failing layer may already hold this step's update (plain SGD "
                f"updates them during back propagation on batches under {SMALL_BATCH} samples)")
    else:
        kept = "the model keeps the weights of the last good step"
    return f"a gradient became NaN or infinite {where}; training stopped and {kept} (try a lower learning rate)"


# The losses that dense_chain_sgd_step computes itself (exact types: a subclass may change _compute).
_CHAIN_LOSSES = {CrossEntropy: SOFTMAX_CROSS_ENTROPY, MeanSquaredError: SQUARED_ERROR}


def _conv_activation_pool(layers, j):
    """Whether layers j, j+1, j+2 are a convolution, an activation and a max pooling."""
    return (isinstance(layers[j], Conv2D) and j + 2 < len(layers) and isinstance(layers[j + 1], Activation)
            and type(layers[j + 2]) is MaxPool2D)


def _one_call_at_a_time(method):
    """Run `method` holding the model's lock (see the Sequential docstring)."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


class Sequential:
    """Layers applied in order, with a loss and an optimizer.

    ``Sequential(layers, loss="cross_entropy" | "mse" | Loss, optimizer=SGD(),
    input_shape=None)``.  `input_shape` is the shape of one sample (batch
    axis excluded); it is taken from a first ``Dense`` layer, else from the
    first data the model sees.  With cross-entropy the last layer outputs
    logits and targets are integer class labels; with "mse" targets are real
    rows ``(N, K)`` or class labels read as one-hot rows.

    After ``fit``, ``history_`` maps "loss", "accuracy", "val_loss",
    "val_accuracy" and "seconds" to per-epoch lists (accuracy only where
    targets are classes, validation only with validation data).

    Threads: layers reuse their buffers from call to call, so ``fit``,
    ``train_on_batch``, ``evaluate``, the ``predict`` methods, ``save`` and
    ``load_weights`` hold a lock of the model: several threads may call them
    on one model, and the calls run one at a time, each with its correct
    result.  (Calling a layer's ``forward`` directly from several threads is
    not safe; use a model.)
    """

    def __init__(self, layers, loss="cross_entropy", optimizer=None, input_shape=None):
        self.layers = list(layers)
        self.loss = loss
        self.optimizer = SGD() if optimizer is None else optimizer
        if input_shape is not None:
            if not isinstance(input_shape, (tuple, list)):
                raise TypeError(f"input_shape must be a tuple of sizes (the shape of one sample), got {input_shape!r}")
            input_shape = tuple(check_int(d, "input_shape", minimum=1) for d in input_shape)
        self._adopt_layers(input_shape)
        self.history_ = {}
        self.stop_training = False
        self._planned = None
        self._unfused_optimizer = None  # the optimizer _unfused_slots were taken from
        self._bound_slots = None  # its slot list then
        self._buffers = BatchBuffers()
        self._lock = threading.RLock()

    def __setattr__(self, name, value):
        # loss and optimizer are checked whenever they are set, not only by the constructor
        if name == "loss":
            value = get_loss(value)
        elif name == "optimizer" and not isinstance(value, Optimizer):
            raise TypeError(f"optimizer must be a fastnn.nn optimizer (SGD, Adam), got {type(value).__name__}")
        super().__setattr__(name, value)

    def __getstate__(self):
        # The lock cannot be pickled and the plan holds closures: both are rebuilt.
        state = dict(self.__dict__, _planned=None)
        for key in ("_lock", "_forward_steps", "_backward_steps", "_backward_steps_sgd", "_backward_steps_deferred",
                    "_chain", "_head_forward", "_head_backward"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.RLock())

    # ---------------------------------------------------------------- shapes

    def _adopt_layers(self, input_shape=None):
        """Check ``self.layers`` and take the dtype, the input shape and the output shapes from them.

        At construction, and again when ``model.layers`` has changed since the
        model last ran (_compile).  The input shape is `input_shape`, else the
        input size of a first Dense layer, else unknown until data arrives.
        """
        layers = self.layers
        if not layers:
            raise ValueError("layers must hold at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a fastnn.nn Layer, got {type(layer).__name__}")
        dtypes = {layer.dtype for layer in layers if layer.params}
        if len(dtypes) > 1:
            raise ValueError(f"all layers with weights must share one dtype, got {sorted(d.name for d in dtypes)}")
        self._adopted = list(layers)
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        self.input_shape = None
        self.output_shapes = None
        if input_shape is not None:
            self._set_input_shape(input_shape)
        elif isinstance(layers[0], Dense):
            self._set_input_shape((layers[0].in_features,))

    def _follow_layers(self):
        """If ``model.layers`` changed: shapes, dtype and buffers follow the new layers (_adopt_layers), and the
        shape of the samples seen so far stays the input shape if the new layers take it."""
        if self._adopted == self.layers:  # layers compare by identity
            return
        known = self.input_shape
        self._adopt_layers()
        if self.input_shape is None and known is not None:
            with contextlib.suppress(ValueError):
                self._set_input_shape(known)
        self._buffers = BatchBuffers()

    def _set_input_shape(self, shape):
        shapes = []
        current = shape
        for i, layer in enumerate(self.layers):
            try:
                current = tuple(layer.output_shape(current))
            except ValueError as error:
                raise ValueError(
                    f"samples of shape {describe_shape(shape)} do not fit this model: layer {i} "
                    f"({type(layer).__name__}) receives {describe_shape(current)}: {error}"
                ) from None
            shapes.append(current)
        if len(current) != 1:
            raise ValueError(f"the last layer must output vectors (N, K) for the loss, it outputs samples of shape {describe_shape(current)}")
        self.input_shape = shape
        self.output_shapes = shapes

    @property
    def n_outputs(self):
        return self.output_shapes[-1][0] if self.output_shapes else None

    def _prepare_x(self, x, name="x"):
        """The data set as a C-contiguous array of the model's dtype, checked against input_shape."""
        if (type(x) is np.ndarray and x.dtype == self.dtype and x.shape[1:] == self.input_shape and x.shape[0]
                and x.flags.c_contiguous):
            # Already what the kernels take (the usual case inside a training loop): only check the values.
            if not all_finite(x):
                raise ValueError(f"{name} contains NaN or infinity")
            return x
        array = as_float_array(x, name, self.dtype)
        if array.ndim < 2:
            raise ValueError(f"{name} must be a batch of samples (N, ...), got shape {array.shape}")
        if array.shape[0] == 0:
            raise ValueError(f"{name} is empty: it holds no samples (shape {array.shape})")
        if 0 in array.shape[1:]:
            raise ValueError(f"{name} holds samples of no values (shape {array.shape})")
        if self.input_shape is None:
            self._set_input_shape(array.shape[1:])
        elif array.shape[1:] != self.input_shape:
            raise ValueError(
                f"{name} must have shape (N, {', '.join(map(str, self.input_shape))}) for this model, got {array.shape}"
            )
        return array

    def _prepare_y(self, y, n_samples, name="y"):
        return self.loss.prepare_targets(y, n_samples, self.n_outputs, self.dtype, name)

    # ------------------------------------------------------------ execution

    def _compile(self):
        """Build the per-step call lists once per layer list, and point the optimizer at the parameters.

        A Dense layer followed by an activation layer runs as one fused step.
        Dense layers use BLAS unless another layer may run Numba threads
        (see fastnn.kernels.batched_dense), and the first step skips the
        gradient for the data.
        """
        layers = self.layers
        if self._adopted != layers:  # layers compare by identity
            self._follow_layers()
        replanned = self._planned != layers
        if replanned:
            self._plan()
        optimizer = self.optimizer
        # The optimizer replaces its slot list whenever it binds other arrays (another model, reset), and
        # layers never rebind their parameters: an unchanged slot list needs no new binding.
        if replanned or optimizer is not self._unfused_optimizer or optimizer._slots is not self._bound_slots:
            optimizer._bind(self.layers)
            fused = {id(p) for layer in self.layers if isinstance(layer, Dense) for p in layer.params.values()}
            self._unfused_slots = [slot for slot in optimizer._slots if id(slot[0]) not in fused]
            self._unfused_optimizer = optimizer
            self._bound_slots = optimizer._slots

    def _plan(self):
        layers = self.layers
        blas = all(getattr(layer, "mixes_with_blas", False) for layer in layers)
        forward, backward, backward_sgd, backward_deferred = [], [], [], []
        chain = []  # (Dense layer, activation code) of the Dense layers since the last layer of another kind
        head = 0  # steps before the chain
        trusted = True  # do the layers before the chain take the trusted path?
        chain_input_grad = False  # does a layer with parameters come before the chain?
        trained_below = False  # does a layer with parameters come before this one?
        # Convolution, activation, max pooling, convolution: the upper convolution's gradient kernel applies the
        # activation's derivative (max pooling moves values without changing them, and f' is read from them).
        folded = {j for j in range(len(layers) - 4) if _conv_activation_pool(layers, j)
                  and isinstance(layers[j + 3], Conv2D) and isinstance(layers[j + 4], Activation)}
        conv_steps = {}  # layer index of a convolution with its activation -> its step
        i = 0
        while i < len(layers):
            layer = layers[i]
            if isinstance(layer, Conv2D) and i + 1 < len(layers) and isinstance(layers[i + 1], Activation):
                # The activation runs inside the convolution's kernel; its derivative before the gradient kernel.
                code = layers[i + 1].code
                below = layers[i - 2].code if i - 3 in folded else IDENTITY
                conv_steps[i] = len(forward)
                if _conv_activation_pool(layers, i):
                    # and a max pooling after it: one call for the three on a batch of one
                    pool = layers[i + 2]
                    forward.append(lambda x, layer=layer, code=code, pool=pool: layer._forward_pool(x, code, pool))
                    step = functools.partial(layer._backward_pool, pool=pool, need_input_grad=trained_below,
                                             code=IDENTITY if i in folded else code, activation_below=below)
                    i += 2
                else:
                    forward.append(lambda x, layer=layer, code=code: layer._forward(x, code))
                    step = functools.partial(layer._backward, need_input_grad=trained_below,
                                             code=IDENTITY if i in folded else code, activation_below=below)
                    i += 1
                chain = []
                backward.append(step)
                backward_sgd.append(step)
                backward_deferred.append(step)
            elif isinstance(layer, Dense):
                layer.use_blas = blas
                code = IDENTITY
                if i + 1 < len(layers) and isinstance(layers[i + 1], Activation):
                    code = layers[i + 1].code
                    i += 1
                if not chain:
                    head, chain_start, chain_input_grad = len(forward), i, trained_below
                chain.append((layer, code))
                forward.append(lambda x, layer=layer, code=code: layer._forward(x, code))
                backward.append(lambda g, layer=layer, code=code, need=trained_below: layer._backward(g, code, need))
                backward_sgd.append(lambda g, layer=layer, code=code, need=trained_below:
                                    layer._backward_sgd(g, code, need, self.optimizer.lr))
                backward_deferred.append(lambda g, layer=layer, code=code, need=trained_below:
                                         layer._backward_deferred(g, code, need))
            else:
                chain = []
                trusted = trusted and layer.trusted_path
                forward.append(layer._forward if layer.trusted_path else layer.forward)
                # Layers without parameters below every trained layer need no backward pass at all.
                step = ((layer._backward if layer.trusted_path else layer.backward) if trained_below or layer.params
                        else None)
                if step is not None and not trained_below and getattr(layer, "optional_input_grad", False):
                    # the first trained layer: nothing below uses its input gradient
                    step = functools.partial(layer._backward, need_input_grad=False)
                backward.append(step)
                backward_sgd.append(step)
                backward_deferred.append(step)
            trained_below = trained_below or bool(layer.params)
            i += 1
        self._forward_steps = forward
        self._backward_steps = [step for step in backward[::-1] if step is not None]
        self._backward_steps_sgd = [step for step in backward_sgd[::-1] if step is not None]
        self._backward_steps_deferred = [step for step in backward_deferred[::-1] if step is not None]
        # Plain SGD on BLAS batches may add the weight gradient straight into the weights (_train_deferred).
        self._dense = [layer for layer in layers if isinstance(layer, Dense)]
        self._deferred = blas and bool(self._dense) and can_add_product(self.dtype)
        self._bound_limit = float(np.finfo(self.dtype).max) / 4  # room for rounding and for the update itself
        # Multiply-adds per sample of the largest BLAS product (see _blas_threads).
        self._blas_work = max([layer.in_features * layer.out_features for layer in layers if isinstance(layer, Dense)],
                              default=0) if blas else 0
        self._chain = None
        if chain and trusted:
            # The layers below the chain, stepped one by one around the chain's kernel call.
            self._head_forward = forward[:head]
            head_backward = backward_sgd[:head]
            j = chain_start - 4
            below = IDENTITY
            if chain_input_grad and j >= 0 and _conv_activation_pool(layers, j) and isinstance(layers[j + 3], Flatten):
                # convolution, activation, max pooling, flatten, the chain: the chain's kernel applies the
                # activation's derivative (as the convolution above does in `folded`)
                below = layers[j + 1].code
                head_backward[conv_steps[j]] = functools.partial(head_backward[conv_steps[j]], code=IDENTITY)
            self._head_backward = [step for step in head_backward[::-1] if step is not None]
            # Parameters are bound once: layers never rebind them (fastnn.nn.base).
            dense = [layer for layer, _ in chain]
            self._chain = (dense, tuple(layer.params["weight"] for layer in dense),
                           tuple(layer.params["bias"] for layer in dense), tuple(code for _, code in chain),
                           np.empty((0, 0), self.dtype), chain_input_grad, below)
        self._planned = list(layers)

    def _blas_threads(self, n):
        """The context a step on `n` samples runs in: one BLAS thread for small products.

        A second thread gains little on them and, when another process holds
        a core, makes every call wait for it (fastnn._blas).  The choice
        depends on the sizes only, so results do not depend on the load.
        """
        work = n * self._blas_work
        return one_blas_thread if 0 < work <= ONE_THREAD_WORK else contextlib.nullcontext()

    def _forward_batch(self, x):
        out = x
        for step in self._forward_steps:
            out = step(out)
        return out

    def _train_batch(self, x, y, where):
        """One optimizer step on a trusted batch: returns (loss_sum, correct); raises RuntimeError on divergence.

        With plain SGD (no momentum, no weight decay) a batch under
        SMALL_BATCH samples updates the Dense layers inside back propagation
        (kernels.batched_dense.dense_backward_sgd), so their ``grads`` are
        not stored for that step; with a built-in loss, the Dense layers and
        activations that end the model then take their whole step in one
        kernel call (``_train_chain``).  On larger batches of a model
        whose Dense layers use BLAS, plain SGD adds the weight gradients
        straight into the weights (``_train_deferred``).  Small BLAS products
        run on one BLAS thread (``_blas_threads``).
        """
        n = x.shape[0]
        if n < SMALL_BATCH and self._chain is not None and self.optimizer.is_plain:
            loss_code = _CHAIN_LOSSES.get(type(self.loss))
            if loss_code is not None:
                return self._train_chain(x, y, loss_code, where)
        with self._blas_threads(n):
            if n >= SMALL_BATCH and self._deferred and self.optimizer.is_plain:
                return self._train_deferred(x, y, where)
            return self._train_layers(x, y, where)

    def _forward_loss(self, x, y, where):
        """Forward pass and loss of a batch: ``(grad, loss_sum, correct)``; RuntimeError if the loss is not finite."""
        n = x.shape[0]
        out = self._forward_batch(x)
        grad = self._buffers.get(n, "grad", out.shape, out.dtype)
        loss_sum, correct = self.loss._compute(out, y, 1.0 / n, grad)
        if not math.isfinite(loss_sum):
            raise RuntimeError(_loss_error(loss_sum, where))
        return grad, loss_sum, correct

    def _train_layers(self, x, y, where):
        """_train_batch through the layers' own kernels."""
        n = x.shape[0]
        grad, loss_sum, correct = self._forward_loss(x, y, where)
        fused = n < SMALL_BATCH and self.optimizer.is_plain
        try:
            for step in self._backward_steps_sgd if fused else self._backward_steps:
                grad = step(grad)
        except NonFiniteGradient:
            raise RuntimeError(_gradient_error(where, fused)) from None
        if not self.optimizer._update(self._unfused_slots if fused else None):
            raise RuntimeError(_gradient_error(where, fused))
        return float(loss_sum), correct

    def _train_deferred(self, x, y, where):
        """_train_layers for plain SGD on a model whose Dense layers use BLAS.

        Back propagation leaves the Dense weights alone
        (``Dense._backward_deferred``); when every layer's bound proves its
        gradients finite, each adds ``-lr * delta^T x`` to its weights in one
        BLAS call, so the weight gradient is neither stored nor read back
        nor checked.  Otherwise the gradients are stored and the optimizer
        checks them all before changing anything, as in _train_layers: in
        both cases a non-finite gradient leaves every weight as it was.
        """
        grad, loss_sum, correct = self._forward_loss(x, y, where)
        for step in self._backward_steps_deferred:
            grad = step(grad)
        optimizer = self.optimizer
        limit = self._bound_limit
        if all(layer._bound < limit for layer in self._dense):
            if not optimizer._update(self._unfused_slots):
                raise RuntimeError(_gradient_error(where, False))
            for layer in self._dense:
                layer._apply_sgd(optimizer.lr)
        else:
            for layer in self._dense:
                layer._store_weight_grad()
            if not optimizer._update():
                raise RuntimeError(_gradient_error(where, False))
        return float(loss_sum), correct

    def _train_chain(self, x, y, loss_code, where, check_batch=False):
        """_train_batch of a model that ends in Dense layers and their activations: those in one kernel call.

        The kernel (kernels.batched_dense.dense_chain_sgd_step) runs the same
        kernels as the layer-by-layer step, in the same order.  Layers below
        the chain (convolutions, pooling, ...) step one by one around it,
        and the optimizer then updates their parameters.  With `check_batch`
        (a model that is all chain) the kernel checks the values of x and y
        first; the error for a bad one then comes from the usual checks.
        """
        _, weights, biases, codes, no_targets, input_grad, below = self._chain
        n = x.shape[0]
        for step in self._head_forward:
            x = step(x)
        outputs, deltas, grad_inputs, grad = self._buffers.get_made(n, "chain", lambda: self._chain_buffers(n))
        if y.ndim == 1:
            labels, targets = y, no_targets
        else:
            labels, targets = _NO_LABELS, y
        loss_sum, correct, status = dense_chain_sgd_step(x, weights, biases, codes, outputs, deltas, grad_inputs,
                                                         grad, loss_code, labels, targets, self.optimizer.lr,
                                                         input_grad, below, check_batch)
        if status == BAD_BATCH:
            self._prepare_x(x)
            self._prepare_y(y, n)  # one of them raises
        if status < 0:
            raise RuntimeError(_loss_error(loss_sum, where))
        if status > 0:
            raise RuntimeError(_gradient_error(where, True))
        if self._head_backward:
            grad = grad_inputs[0]
            for step in self._head_backward:
                grad = step(grad)
            if not self.optimizer._update(self._unfused_slots):
                raise RuntimeError(_gradient_error(where, True))
        return float(loss_sum), correct

    def _chain_buffers(self, n):
        """Outputs, error terms and input gradients of the chain's layers, and the loss gradient, for n samples."""
        dense, input_grad = self._chain[0], self._chain[5]
        outputs = tuple(np.empty((n, layer.out_features), self.dtype) for layer in dense)
        deltas = tuple(np.empty_like(out) for out in outputs)
        # Without an input gradient for the first layer, its slot holds a placeholder of the right type.
        first = np.empty((n, dense[0].in_features), self.dtype) if input_grad else deltas[0]
        grad_inputs = (first,) + tuple(np.empty((n, layer.in_features), self.dtype) for layer in dense[1:])
        return outputs, deltas, grad_inputs, np.empty_like(outputs[-1])

    # ------------------------------------------------------------- training

    @_one_call_at_a_time
    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0, shuffle=True,
            seed=None, verbose=1, callbacks=None):
        """Train on `x` (N, *input_shape) and targets `y`; returns the model, with ``history_`` filled.

        `validation_data` is a pair ``(x_val, y_val)``; or `validation_split`
        in [0, 1) holds out that fraction of the samples, taken from the end
        before shuffling.  `seed` fixes the shuffling.  `verbose`: 0 silent,
        1 a progress bar per epoch and a line per epoch, 2 the lines only.
        `callbacks`: a list of ``Callback``.
        """
        epochs = check_int(epochs, "epochs", minimum=1)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        validation_split = check_real(validation_split, "validation_split", minimum=0.0)
        if validation_split >= 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        verbose = check_int(verbose, "verbose", minimum=0)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        if isinstance(callbacks, Callback):
            raise TypeError(f"callbacks must be a list of Callback, got one {type(callbacks).__name__}: pass it in a list")
        callbacks = list(callbacks or [])
        for i, callback in enumerate(callbacks):
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks[{i}] must be a fastnn.nn Callback, got {type(callback).__name__}")
        self._compile()  # first: the layers may have changed, and with them the shapes that x must have
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        validation = None
        if validation_data is not None:
            if validation_split:
                raise ValueError("give validation_data or validation_split, not both")
            try:
                x_val, y_val = validation_data
            except (TypeError, ValueError):
                raise TypeError("validation_data must be a pair (x_val, y_val)") from None
            x_val = self._prepare_x(x_val, "validation_data[0]")
            validation = (x_val, self._prepare_y(y_val, x_val.shape[0], "validation_data[1]"))
        elif validation_split:
            n_val = int(round(x.shape[0] * validation_split))
            if n_val < 1 or n_val >= x.shape[0]:
                raise ValueError(
                    f"validation_split={validation_split} leaves {n_val} of {x.shape[0]} samples for validation; "
                    "both parts need at least one"
                )
            x, validation = x[:-n_val], (x[-n_val:], y[-n_val:])
            y = y[:-n_val]
        rng = make_rng(seed, "seed")
        has_accuracy = self.loss.has_accuracy(y, self.n_outputs)
        if verbose:
            callbacks.append(ProgressBar(bar=verbose == 1))
        n = x.shape[0]
        x_batch = np.empty((min(batch_size, n), *x.shape[1:]), x.dtype)
        y_batch = np.empty((min(batch_size, n), *y.shape[1:]), y.dtype)
        history = {"loss": [], **({"accuracy": []} if has_accuracy else {})}
        if validation is not None:
            history.update({"val_loss": [], **({"val_accuracy": []} if has_accuracy else {})})
        history["seconds"] = []
        self.history_ = history
        self.stop_training = False
        for callback in callbacks:
            callback.on_train_begin(self)
        try:
            for epoch in range(1, epochs + 1):
                started = time.perf_counter()
                order = rng.permutation(n) if shuffle else None
                for callback in callbacks:
                    callback.on_epoch_begin(epoch, epochs, n)
                loss_total = 0.0
                correct_total = 0
                for step, start in enumerate(range(0, n, batch_size), 1):
                    stop = min(start + batch_size, n)
                    if order is None:
                        xb, yb = x[start:stop], y[start:stop]
                    else:
                        xb, yb = x_batch[: stop - start], y_batch[: stop - start]
                        np.take(x, order[start:stop], axis=0, out=xb)
                        np.take(y, order[start:stop], axis=0, out=yb)
                    loss_sum, correct = self._train_batch(xb, yb, f"at epoch {epoch}, step {step}")
                    loss_total += loss_sum
                    correct_total += correct
                    for callback in callbacks:
                        callback.on_batch_end(step, stop - start, loss_sum / (stop - start))
                logs = {"loss": loss_total / n}
                if has_accuracy:
                    logs["accuracy"] = correct_total / n
                if validation is not None:
                    val_loss, val_correct = self._evaluate(*validation, 256)
                    logs["val_loss"] = val_loss
                    if has_accuracy:
                        logs["val_accuracy"] = val_correct
                logs["seconds"] = time.perf_counter() - started
                for key, value in logs.items():
                    history[key].append(value)
                for callback in callbacks:
                    callback.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        finally:
            for callback in callbacks:
                callback.on_train_end()
        return self

    def train_on_batch(self, x, y):
        """One optimizer step on the batch (x, y); returns its mean loss."""
        # The lock is taken here rather than by _one_call_at_a_time, and a batch of a few samples that the
        # chain's kernel takes as it is goes straight to it: a step of the 784-300-10 MLP on one sample takes
        # about 20 us, and the wrapper, the separate value checks and _train_batch's choices 1.5 us of them.
        with self._lock:
            self._compile()
            loss_code = self._chain_takes(x, y)
            if loss_code is not None:
                loss_sum, _ = self._train_chain(x, y, loss_code, "in train_on_batch", check_batch=True)
            else:
                x = self._prepare_x(x)
                y = self._prepare_y(y, x.shape[0])
                loss_sum, _ = self._train_batch(x, y, "in train_on_batch")
            return loss_sum / x.shape[0]

    def _chain_takes(self, x, y):
        """The loss code for ``_train_chain(x, y, ..., check_batch=True)``, or None.

        That is when _train_batch would take the chain for this batch and x
        and y have the types and shapes the kernel takes (only their values
        are left to check): arrays of the model's dtype and input shape
        with fewer than SMALL_BATCH samples, int64 class labels, plain SGD,
        a built-in loss and a model whose layers are all in the chain.
        """
        if not (type(x) is np.ndarray and type(y) is np.ndarray and self._chain is not None
                and not self._head_forward and x.ndim > 1 and 0 < x.shape[0] < SMALL_BATCH):
            return None
        loss_code = _CHAIN_LOSSES.get(type(self.loss))
        if (loss_code is not None and self.optimizer.is_plain and x.dtype == self.dtype
                and x.shape[1:] == self.input_shape and x.flags.c_contiguous and y.dtype == np.int64
                and y.shape == x.shape[:1] and y.flags.c_contiguous
                and (loss_code == SOFTMAX_CROSS_ENTROPY or self.n_outputs > 1)):  # else "mse" reads them as targets
            return loss_code
        return None

    # ------------------------------------------------------------ inference

    def _batches(self, x, batch_size):
        for start in range(0, x.shape[0], batch_size):
            stop = min(start + batch_size, x.shape[0])
            with self._blas_threads(stop - start):
                out = self._forward_batch(x[start:stop])
            yield start, stop, out

    def _evaluate(self, x, y, batch_size):
        loss_total = 0.0
        correct_total = 0
        for start, stop, out in self._batches(x, batch_size):
            grad = self._buffers.get(stop - start, "grad", out.shape, out.dtype)
            loss_sum, correct = self.loss._compute(out, y[start:stop], 1.0, grad)
            loss_total += float(loss_sum)
            correct_total += correct
        return loss_total / x.shape[0], correct_total / x.shape[0]

    @_one_call_at_a_time
    def evaluate(self, x, y, batch_size=256):
        """``{"loss": mean loss, "accuracy": fraction right}`` on (x, y) (accuracy only for class targets)."""
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        self._compile()
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        loss, accuracy = self._evaluate(x, y, batch_size)
        result = {"loss": loss}
        if self.loss.has_accuracy(y, self.n_outputs):
            result["accuracy"] = accuracy
        return result

    @_one_call_at_a_time
    def _outputs(self, x, batch_size, transform=None):
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        self._compile()
        x = self._prepare_x(x)
        result = np.empty((x.shape[0], self.n_outputs), self.dtype)
        for start, stop, out in self._batches(x, batch_size):
            if transform is None:
                result[start:stop] = out
            else:
                transform(out, result[start:stop])
        return result

    @property
    def is_classifier(self):
        """Cross-entropy models, and models with more than one output, predict classes."""
        return self.loss.name == "cross_entropy" or (self.n_outputs or 0) > 1

    def predict_proba(self, x, batch_size=256):
        """Class probabilities (N, K): the softmax of the logits for cross-entropy, the outputs themselves for mse."""
        return self._outputs(x, batch_size, softmax if self.loss.name == "cross_entropy" else None)

    def predict(self, x, batch_size=256):
        """Class labels (N,) int64 for a classifier (arg-max of the outputs), else the outputs (N, K)."""
        outputs = self._outputs(x, batch_size)
        return outputs.argmax(axis=1) if self.is_classifier else outputs

    def predict_logits(self, x, batch_size=256):
        """The last layer's outputs (N, K), as they are."""
        return self._outputs(x, batch_size)

    # ---------------------------------------------------------- description

    @property
    def num_params(self):
        return sum(layer.num_params for layer in self.layers)

    @_one_call_at_a_time
    def summary(self, print_fn=print):
        """Print the layers, their output shapes and parameter counts (through `print_fn`, one line per call)."""
        self._follow_layers()
        shapes = self.output_shapes or [None] * len(self.layers)
        rows = [(f"{i} {type(layer).__name__}", "?" if shape is None else describe_shape(shape), f"{layer.num_params:,}")
                for i, (layer, shape) in enumerate(zip(self.layers, shapes))]
        header = ("layer", "output shape", "parameters")
        widths = [max(len(r[c]) for r in rows + [header]) for c in range(3)]
        rule = "-" * (sum(widths) + 4)
        input_text = "?" if self.input_shape is None else describe_shape(self.input_shape)
        print_fn(f"Sequential: input {input_text}, loss {self.loss.name}, optimizer {self.optimizer!r}, {self.dtype.name}")
        print_fn(rule)
        for row in [header] + rows:
            print_fn(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
        print_fn(rule)
        print_fn(f"total parameters: {self.num_params:,}")

    @_one_call_at_a_time
    def save(self, path):
        """Write weights and architecture to `path` (.npz); see fastnn.nn.load."""
        from .io import save

        self._follow_layers()
        save(self, path)

    @_one_call_at_a_time
    def load_weights(self, path):
        """Read the weights of a checkpoint of the same architecture into this model (in place)."""
        from .io import load_weights

        self._follow_layers()
        load_weights(self, path)
        return self

    def __repr__(self):
        inner = ",\n    ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n    {inner},\n], loss={self.loss.name!r}, optimizer={self.optimizer!r})"
