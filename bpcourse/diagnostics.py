"""Diagnostics for deep networks: how big are the gradients, layer by layer?

Backprop multiplies one Jacobian per layer: δˡ⁻¹ = ((Wˡ)ᵀ δˡ) ⊙ φ′(zˡ⁻¹). When
those factors shrink vectors, ‖δˡ‖ decays towards the first layers (vanishing
gradients); when they stretch them, it grows (exploding gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcourse.nn import MLP
from bpcourse.tensor import Tensor, mse, softmax_cross_entropy


@dataclass
class LayerGradients:
    """Per-layer gradient sizes, first layer first."""

    delta_norms: list[float]  # ‖dL/dzˡ‖ (Frobenius over the batch)
    weight_grad_norms: list[float]  # ‖dL/dWˡ‖
    loss: float


def layer_gradients(model: MLP, X: np.ndarray, Y: np.ndarray, loss: str = "mse") -> LayerGradients:
    """Run one forward and backward pass and measure each layer's gradients.

    ``X`` is (n, B), ``Y`` is (n_out, B); ``loss`` is ``"mse"`` or ``"softmax_ce"``.
    The model's parameter gradients are zeroed first, so the figures are for
    this batch alone.
    """
    model.zero_grad()
    out = model(Tensor(X, requires_grad=False))
    if loss == "mse":
        value = mse(out, Y)
    elif loss == "softmax_ce":
        value = softmax_cross_entropy(out, Y)
    else:
        raise ValueError(f"unknown loss {loss!r}; choose 'mse' or 'softmax_ce'")
    value.backward()
    return LayerGradients(
        delta_norms=[float(np.linalg.norm(z.grad)) for z in model.preactivations],
        weight_grad_norms=[float(np.linalg.norm(layer.W.grad)) for layer in model.layers],
        loss=value.item(),
    )


def layer_grad_norms(model: MLP, X: np.ndarray, Y: np.ndarray, loss: str = "mse") -> list[float]:
    """‖δˡ‖ = ‖dL/dzˡ‖ for each layer of ``model``, first layer first."""
    return layer_gradients(model, X, Y, loss).delta_norms
