"""Losses: kernels against the reference twin, stability, central differences and bad targets."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastnn.kernels.loss import softmax
from fastnn.nn import CrossEntropy, MeanSquaredError
from fastnn.nn.losses import get_loss
from fastnn.reference import batched as reference

from helpers import assert_close, central_difference


@settings(max_examples=12)
@given(n=st.integers(1, 8), k=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_losses_match_the_twin(n, k, seed):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, k)) * 3).astype(np.float32)
    labels = rng.integers(0, k, n)
    targets = rng.random((n, k)).astype(np.float32)
    for loss, target, twin in ((CrossEntropy(), labels, reference.softmax_cross_entropy),
                               (MeanSquaredError(), targets, reference.squared_error)):
        prepared = loss.prepare_targets(target, n, k, np.float32)
        grad = np.empty_like(logits)
        loss_sum, correct = loss._compute(logits, prepared, 1.0 / n, grad)
        ref_sum, ref_correct, ref_grad = twin(logits, target, 1.0 / n)
        assert_close(loss_sum, ref_sum, rtol=1e-5, atol=1e-5, what=f"{loss.name} sum")
        assert correct == ref_correct
        assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6, what=f"{loss.name} grad")
        assert grad.dtype == np.float32


def test_mse_with_labels_equals_mse_with_one_hot_rows():
    rng = np.random.default_rng(0)
    outputs = rng.random((5, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 1, 2])
    loss = MeanSquaredError()
    by_labels = loss(outputs, labels)
    grad = loss.backward().copy()
    assert by_labels == pytest.approx(loss(outputs, np.eye(4, dtype=np.float32)[labels]), rel=1e-6)
    assert_close(grad, loss.backward(), rtol=1e-6, what="grad")


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-3e4, 3e4, 0.0]], dtype=np.float32)
    loss = CrossEntropy()
    assert loss(logits, np.array([0, 1])) == 0.0
    assert loss(logits, np.array([1, 0])) == pytest.approx((1e4 + 6e4) / 2)
    assert np.isfinite(loss.backward()).all()
    probs = np.empty_like(logits)
    softmax(logits, probs)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1)


@pytest.mark.parametrize("loss, targets", [
    (CrossEntropy(), np.array([2, 0, 1])),
    (MeanSquaredError(), np.random.default_rng(1).random((3, 3))),
])
def test_loss_gradients_match_central_differences(loss, targets):
    outputs = np.random.default_rng(2).normal(size=(3, 3))
    loss(outputs, targets)
    assert_close(loss.backward(), central_difference(lambda: loss(outputs, targets), outputs),
                 rtol=1e-6, atol=1e-9, what=f"{loss.name} gradient")


def test_losses_reject_bad_targets():
    outputs = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"labels outside \[0, 4\).*max 4"):
        CrossEntropy()(outputs, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"labels outside \[0, 4\).*min -1"):
        CrossEntropy()(outputs, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="one label per sample: expected 3, got 2"):
        CrossEntropy()(outputs, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer class labels"):
        CrossEntropy()(outputs, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"y must have shape \(3, 4\), got \(3, 2\)"):
        MeanSquaredError()(outputs, np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="before the loss was computed"):
        CrossEntropy().backward()
    with pytest.raises(ValueError, match="loss must be one of"):
        get_loss("hinge")
