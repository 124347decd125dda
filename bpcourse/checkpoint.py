"""Backprop through a chain of layers with checkpointing (recomputation).

The backward pass needs the forward intermediates, so a chain of L layers
normally keeps all L + 1 boundary activations (plus each layer's own cache).
Checkpointing keeps only every k-th boundary activation during the forward
pass; on the way back, each segment of k layers is run forward again from its
checkpoint, this time recording a graph, and backpropagated at once. Memory
for activations drops from about L to about L/k + k (minimised near k = √L);
the price is roughly one extra forward pass. Gradients are exactly the same.

A layer is any callable mapping a Tensor to a Tensor (it may use trainable
parameter Tensors; their gradients accumulate as usual).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bpcourse.tensor import Tensor, no_grad

Layer = Callable[[Tensor], Tensor]


def run_chain(layers: Sequence[Layer], x: Tensor) -> Tensor:
    """Apply the layers in order."""
    for layer in layers:
        x = layer(x)
    return x


def full_backward(layers: Sequence[Layer], x: np.ndarray, upstream: np.ndarray) -> tuple[np.ndarray, int]:
    """Backprop storing every activation: ``(dL/dx, number of stored activations)``.

    ``upstream`` is dL/d(output of the last layer). All L + 1 boundary
    activations (input included) stay in memory until the backward pass.
    """
    inp = Tensor(x, requires_grad=True)
    out = run_chain(layers, inp)
    out.backward(upstream)
    return inp.grad, len(layers) + 1


def checkpointed_backward(
    layers: Sequence[Layer], x: np.ndarray, upstream: np.ndarray, every: int
) -> tuple[np.ndarray, int]:
    """Backprop keeping only every ``every``-th activation: ``(dL/dx, stored_count)``.

    ``stored_count`` is how many boundary activations the forward pass kept
    (the inputs of layers 0, k, 2k, ...). During the backward pass one segment
    of at most ``every`` layers is rebuilt at a time.
    """
    if every < 1:
        raise ValueError("every must be a positive whole number of layers")
    checkpoints: dict[int, np.ndarray] = {}
    a = Tensor(x, requires_grad=False)
    with no_grad():
        for i, layer in enumerate(layers):
            if i % every == 0:
                checkpoints[i] = a.data
            a = layer(a)
    grad = np.asarray(upstream, dtype=a.dtype)
    for start in sorted(checkpoints, reverse=True):
        segment_input = Tensor(checkpoints[start], requires_grad=True)
        out = run_chain(layers[start : start + every], segment_input)
        out.backward(grad)
        grad = segment_input.grad
    return grad, len(checkpoints)
