"""Callbacks for ``Sequential.fit``: hooks around epochs and steps, and the progress display.

A callback overrides the hooks it needs.  ``fit`` calls ``on_train_begin``
with the model (kept as ``self.model``), then per epoch ``on_epoch_begin``,
``on_batch_end`` after every step and ``on_epoch_end`` with the epoch's
numbers (the values appended to ``model.history_``), and ``on_train_end``.
Setting ``model.stop_training = True`` ends training after the current epoch.
"""

import math
import sys
import time


class Callback:
    model = None

    def on_train_begin(self, model):
        self.model = model

    def on_epoch_begin(self, epoch, epochs, n_samples):
        """Epoch `epoch` (from 1) of `epochs` is about to run over `n_samples` samples."""

    def on_batch_end(self, step, batch_size, loss):
        """Step `step` (from 1) trained on `batch_size` samples with mean loss `loss`."""

    def on_epoch_end(self, epoch, logs):
        """`logs` maps "loss", "accuracy", "val_loss", "val_accuracy", "seconds" to this epoch's values."""

    def on_train_end(self):
        pass


class EarlyStopping(Callback):
    """Stop when `monitor` (default "val_loss") has not improved for `patience` epochs."""

    def __init__(self, monitor="val_loss", patience=2, mode=None):
        self.monitor = monitor
        self.patience = patience
        self.mode = mode or ("max" if "accuracy" in monitor else "min")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")

    def on_train_begin(self, model):
        super().on_train_begin(model)
        self.best = -math.inf if self.mode == "max" else math.inf
        self.waited = 0

    def on_epoch_end(self, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which this fit does not compute (it has {sorted(logs)})")
        value = logs[self.monitor]
        better = value > self.best if self.mode == "max" else value < self.best
        if better:
            self.best = value
            self.waited = 0
        else:
            self.waited += 1
            if self.waited >= self.patience:
                self.model.stop_training = True


def format_epoch(epoch, epochs, logs):
    """``epoch 2/5: loss 0.4213, accuracy 84.90%, val_loss ..., 3.1 s`` for one epoch's logs."""
    parts = []
    for key, value in logs.items():
        if key == "seconds":
            continue
        parts.append(f"{key} {value * 100:.2f}%" if key.endswith("accuracy") else f"{key} {value:.4f}")
    return f"epoch {epoch}/{epochs}: " + ", ".join(parts) + f", {logs['seconds']:.1f} s"


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss and samples per second (``verbose=1``), and a line per epoch.

    With ``bar=False`` (``verbose=2``) only the epoch lines are printed.
    Lines go to `file` (default standard output), the bar to standard error.
    """

    # The loss shown on the bar is refreshed at most this often (seconds):
    # formatting it every step would cost more than a small training step.
    REFRESH = 0.2

    def __init__(self, bar=True, file=None):
        self.bar = bar
        self.file = file
        self._tqdm = None

    def on_epoch_begin(self, epoch, epochs, n_samples):
        self.epochs = epochs
        self._loss_sum = 0.0
        self._seen = 0
        self._shown = time.perf_counter()
        if self.bar:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=n_samples, desc=f"epoch {epoch}/{epochs}", unit="img", unit_scale=True, leave=False, dynamic_ncols=True)

    def on_batch_end(self, step, batch_size, loss):
        self._loss_sum += loss * batch_size
        self._seen += batch_size
        if self._tqdm is not None:
            self._tqdm.update(batch_size)
            now = time.perf_counter()
            if now - self._shown >= self.REFRESH:
                self._shown = now
                self._tqdm.set_postfix(loss=f"{self._loss_sum / self._seen:.4f}", refresh=False)

    def on_epoch_end(self, epoch, logs):
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        print(format_epoch(epoch, self.epochs, logs), file=self.file or sys.stdout, flush=True)

    def on_train_end(self):
        if self._tqdm is not None:  # training stopped by an error inside the epoch
            self._tqdm.close()
            self._tqdm = None


class CosineDecay(Callback):
    """Schedule the optimizer's learning rate step by step: a linear warm-up, then half a cosine down.

    With `progress` the fraction of the fit's samples seen so far, the rate
    rises from 0 to its starting value over the first `warmup` of the fit,
    then follows ``start * (final + (1 - final) * (1 + cos(pi * p)) / 2)``
    with `p` the progress after the warm-up, rescaled to [0, 1].
    """

    def __init__(self, final=0.0, warmup=0.0):
        self.final = final
        self.warmup = warmup

    def on_train_begin(self, model):
        super().on_train_begin(model)
        self.start = model.optimizer.lr
        self.seen = 0

    def on_epoch_begin(self, epoch, epochs, n_samples):
        self.total = epochs * n_samples

    def on_batch_end(self, step, batch_size, loss):
        self.seen += batch_size
        progress = min(self.seen / self.total, 1.0)
        if progress < self.warmup:
            lr = self.start * progress / self.warmup
        else:
            p = (progress - self.warmup) / (1 - self.warmup)
            lr = self.start * (self.final + (1 - self.final) * (1 + math.cos(math.pi * p)) / 2)
        self.model.optimizer.lr = max(lr, 1e-12)  # an optimizer's rate stays > 0

    def on_train_end(self):
        self.model.optimizer.lr = self.start
