"""Small neural-network pieces on the tensor engine.

Shapes follow the course: a layer maps x (n, B) to z = W x + b (m, B) with
W (m, n) and b (m, 1); a single example is the column B = 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from bpcourse.tensor import Tensor, affine, mse, softmax_cross_entropy, zero_grad

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "SGD",
    "Affine",
    "ResidualBlock",
    "init_weight",
    "mse",
    "softmax_cross_entropy",
]

Activation = Callable[[Tensor], Tensor]

ACTIVATIONS: dict[str, Activation] = {
    "relu": Tensor.relu,
    "tanh": Tensor.tanh,
    "sigmoid": Tensor.sigmoid,
    "identity": lambda z: z,
}

INIT_SCHEMES = ("xavier", "he", "normal")


def init_weight(
    fan_out: int,
    fan_in: int,
    scheme: str = "he",
    rng: np.random.Generator | None = None,
    scale: float = 1.0,
    dtype: type = np.float64,
) -> np.ndarray:
    """A (fan_out, fan_in) weight matrix drawn from a zero-mean normal.

    * ``"xavier"`` (Glorot): variance 2 / (fan_in + fan_out), keeps the variance
      of activations and of gradients roughly constant through tanh/sigmoid
      layers (in their linear region).
    * ``"he"``: variance 2 / fan_in, compensates ReLU zeroing half its inputs.
    * ``"normal"``: standard deviation ``scale`` for every layer, whatever its
      width (the naive choice whose gradients vanish or explode with depth).
    """
    rng = np.random.default_rng() if rng is None else rng
    if scheme == "xavier":
        std = np.sqrt(2.0 / (fan_in + fan_out))
    elif scheme == "he":
        std = np.sqrt(2.0 / fan_in)
    elif scheme == "normal":
        std = scale
    else:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {INIT_SCHEMES}")
    return (rng.standard_normal((fan_out, fan_in)) * std).astype(dtype)


class Affine:
    """z = W x + b with W (m, n) and b (m, 1), both trainable Tensors."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        init: str = "he",
        rng: np.random.Generator | None = None,
        scale: float = 1.0,
        dtype: type = np.float64,
    ) -> None:
        self.W = Tensor(init_weight(n_out, n_in, init, rng, scale, dtype), label="W")
        self.b = Tensor(np.zeros((n_out, 1), dtype=dtype), label="b")

    def __call__(self, x: Tensor) -> Tensor:
        return affine(self.W, x, self.b)

    def parameters(self) -> list[Tensor]:
        return [self.W, self.b]


class ResidualBlock:
    """h = x + F(x) with F(x) = φ(W x + b), W square (n, n).

    On the way back the identity path hands the upstream gradient u to x
    unchanged and F's path adds J_Fᵀ u: dL/dx = u + J_Fᵀ u.
    """

    def __init__(
        self,
        width: int,
        activation: str = "tanh",
        init: str = "xavier",
        rng: np.random.Generator | None = None,
        scale: float = 1.0,
        dtype: type = np.float64,
    ) -> None:
        self.layer = Affine(width, width, init, rng, scale, dtype)
        self.activation = ACTIVATIONS[activation]
        self.preactivation: Tensor | None = None

    def __call__(self, x: Tensor) -> Tensor:
        self.preactivation = self.layer(x)
        return x + self.activation(self.preactivation)

    def parameters(self) -> list[Tensor]:
        return self.layer.parameters()


class MLP:
    """A multilayer perceptron: affine layers with an activation between them.

    ``sizes = [n_0, n_1, ..., n_L]`` gives L affine layers; hidden layers use
    ``activation`` and the output layer is linear (its loss applies softmax or
    compares directly). With ``residual=True`` every hidden layer whose input
    and output widths agree becomes a residual block a = a_prev + φ(z).

    After a forward pass ``preactivations`` holds the Tensors z¹ … zᴸ, so that
    after ``loss.backward()`` their ``.grad`` are the layer sensitivities δˡ.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        init: str = "he",
        rng: np.random.Generator | None = None,
        scale: float = 1.0,
        residual: bool = False,
        dtype: type = np.float64,
    ) -> None:
        if len(sizes) < 2:
            raise ValueError("an MLP needs at least an input and an output size")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {list(ACTIVATIONS)}")
        rng = np.random.default_rng() if rng is None else rng
        self.sizes = list(sizes)
        self.activation = ACTIVATIONS[activation]
        self.layers = [
            Affine(n_in, n_out, init, rng, scale, dtype)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        self.residual = [
            residual and i < len(self.layers) - 1 and sizes[i] == sizes[i + 1]
            for i in range(len(self.layers))
        ]
        self.preactivations: list[Tensor] = []

    def __call__(self, x: Tensor | np.ndarray) -> Tensor:
        # copy=False: the batch is only read, and a copy would cost a pass over it every step
        a = x if isinstance(x, Tensor) else Tensor(x, requires_grad=False, label="x", copy=False)
        self.preactivations = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            z = layer(a)
            z.label = f"z{i + 1}"
            self.preactivations.append(z)
            if i == last:
                return z
            h = self.activation(z)
            a = a + h if self.residual[i] else h
        raise AssertionError("unreachable: an MLP has at least one layer")

    def parameters(self) -> list[Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]

    def zero_grad(self) -> None:
        zero_grad(self.parameters())


class SGD:
    """Plain stochastic gradient descent: p ← p - lr · dL/dp, in place.

    ``step`` refuses to run while a parameter has no gradient (``backward()``
    not called yet, or a loss that does not depend on it): skipping it would
    leave it untrained without a word.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 0.1) -> None:
        self.params = list(params)
        self.lr = lr

    def step(self) -> None:
        missing = [f"{i} ({p!r})" for i, p in enumerate(self.params) if p.grad is None]
        if missing:  # checked first, so that no parameter moves when one cannot
            which, them = f"parameter {missing[0]} has", "it"
            if len(missing) > 1:
                which, them = f"parameters {', '.join(missing)} have", "them"
            raise RuntimeError(
                f"SGD.step: {which} no gradient: call backward() on a loss computed from {them} "
                "(outside no_grad()) before step()"
            )
        for p in self.params:
            p.data -= self.lr * p.grad

    def zero_grad(self) -> None:
        zero_grad(self.params)
