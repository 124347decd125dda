"""bpcourse: backpropagation, taught and graded.

A small reverse-mode autodiff engine on numpy, built from node-local rules:

* ``Value``: scalar graphs (``bpcourse.scalar``);
* ``Tensor``: graphs over numpy arrays (``bpcourse.tensor``);
* ``gradcheck``: central differences with justified tolerances and kink awareness;
* ``forward``: forward mode (dual numbers, jvp) to compare with reverse mode;
* ``nn``: affine layers, activations, losses, MLPs, residual blocks, SGD;
* ``checkpoint``: backprop through a chain storing only every k-th activation;
* ``plot``: pictures of computation graphs; ``diagnostics``: gradient norms per layer.
"""

from bpcourse.forward import Dual, jvp, vjp
from bpcourse.gradcheck import check_directional, check_gradient, numerical_gradient
from bpcourse.graph import is_topological_order, topological_order
from bpcourse.scalar import Value
from bpcourse.tensor import Tensor, affine, mse, softmax, softmax_cross_entropy

__all__ = [
    "Dual",
    "Tensor",
    "Value",
    "affine",
    "check_directional",
    "check_gradient",
    "is_topological_order",
    "jvp",
    "mse",
    "numerical_gradient",
    "softmax",
    "softmax_cross_entropy",
    "topological_order",
    "vjp",
]

__version__ = "0.1.0"
