"""Exercises of notebook 01_scalar_graphs: node-local rules on scalars, the worked example."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bpcourse.exercises.core import (
    ENGINE,
    MINIGRAPH,
    NOT_YOURS,
    REFERENCES,
    Exercise,
    Inputs,
    Misconception,
    slope,
)
from bpcourse.exercises.inputs import scalar_away_from_zero
from bpcourse.scalar import Value
from bpcourse.testfunctions import SMOOTH_FUNCTIONS, SmoothFunction

NOTEBOOK = "01_scalar_graphs"


def distinct_pair(rng: np.random.Generator, gap: float = 0.5) -> tuple[float, float]:
    """Two floats at least ``gap`` apart and away from 0, so swapping them shows."""
    while True:
        x, y = scalar_away_from_zero(rng), scalar_away_from_zero(rng)
        if abs(x - y) > gap and abs(abs(x) - abs(y)) > 0.2:
            return x, y


# -- add and mul: two-input nodes ----------------------------------------------------------------
def _binary_inputs(rng: np.random.Generator) -> Inputs:
    x, y = distinct_pair(rng)
    return {"upstream": scalar_away_from_zero(rng, 0.5, 3.0), "x": x, "y": y}


def _engine_binary(method: str) -> Callable[..., tuple[float, float]]:
    def reference(upstream: float, x: float, y: float) -> tuple[float, float]:
        a, b = Value(x), Value(y)
        getattr(a, method)(b).backward(upstream)
        return a.grad, b.grad

    return reference


def _numeric_binary(f: Callable[[float, float], float]) -> Callable[..., tuple[float, float]]:
    def numeric(upstream: float, x: float, y: float) -> tuple[float, float]:
        return upstream * slope(lambda v: f(v, y), x), upstream * slope(lambda v: f(x, v), y)

    return numeric


FORGOT_UPSTREAM = (
    "this is the local derivative alone: multiply it by the upstream gradient dL/dz "
    "(chain rule: upstream times local)"
)

ADD_BACKWARD = Exercise(
    name="add_backward",
    notebook=NOTEBOOK,
    signature="add_backward(upstream, x, y) -> (dx, dy)",
    summary="z = x + y: pass dL/dz back to x and y",
    outputs=("dx", "dy"),
    points=1,
    make_inputs=_binary_inputs,
    reference=_engine_binary("__add__"),
    numeric=_numeric_binary(lambda x, y: x + y),
    misconceptions=(
        Misconception("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, x, y: (1.0, 1.0)),
        Misconception(
            "used_inputs",
            "an add node's local derivatives are both 1, whatever x and y are: "
            "it hands the upstream gradient to each input unchanged",
            lambda upstream, x, y: (upstream * x, upstream * y),
        ),
        Misconception(
            "split_upstream",
            "the upstream gradient is not split between the inputs: each input gets all of it",
            lambda upstream, x, y: (upstream / 2, upstream / 2),
        ),
    ),
    revisit="the rules table: Add",
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)

MUL_BACKWARD = Exercise(
    name="mul_backward",
    notebook=NOTEBOOK,
    signature="mul_backward(upstream, x, y) -> (dx, dy)",
    summary="z = x * y: each input's gradient is upstream times the other input",
    outputs=("dx", "dy"),
    points=1,
    make_inputs=_binary_inputs,
    reference=_engine_binary("__mul__"),
    numeric=_numeric_binary(lambda x, y: x * y),
    misconceptions=(
        Misconception(
            "swapped_partials",
            "dz/dx is the OTHER input, y (and dz/dy is x): the inputs are swapped",
            lambda upstream, x, y: (upstream * x, upstream * y),
        ),
        Misconception("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, x, y: (y, x)),
        Misconception(
            "add_rule",
            "that is the rule of an add node; a multiply scales the upstream gradient by the other input",
            lambda upstream, x, y: (upstream, upstream),
        ),
    ),
    revisit="the rules table: Multiply",
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- one-input nodes ---------------------------------------------------------------------------------
def _pow_inputs(rng: np.random.Generator) -> Inputs:
    return {
        "upstream": scalar_away_from_zero(rng, 0.5, 3.0),
        "x": float(rng.uniform(0.6, 2.0)),
        "n": float(rng.choice([2.0, 3.0, -1.0, 0.5, 2.5])),
    }


def _pow_reference(upstream: float, x: float, n: float) -> tuple[float]:
    v = Value(x)
    (v**n).backward(upstream)
    return (v.grad,)


POW_BACKWARD = Exercise(
    name="pow_backward",
    notebook=NOTEBOOK,
    signature="pow_backward(upstream, x, n) -> dx",
    summary="z = x**n with a constant n: dL/dx = upstream * n * x**(n-1)",
    outputs=("dx",),
    points=1,
    make_inputs=_pow_inputs,
    reference=_pow_reference,
    numeric=lambda upstream, x, n: (upstream * slope(lambda v: v**n, x),),
    misconceptions=(
        Misconception("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, x, n: (n * x ** (n - 1),)),
        Misconception(
            "kept_exponent",
            "the power rule lowers the exponent by one: the local derivative of xⁿ is n·xⁿ⁻¹, not n·xⁿ",
            lambda upstream, x, n: (upstream * n * x**n,),
        ),
        Misconception(
            "dropped_factor_n",
            "the factor n in front is missing: the local derivative of xⁿ is n·xⁿ⁻¹, "
            "n times the lowered power",
            lambda upstream, x, n: (upstream * x ** (n - 1),),
        ),
    ),
    revisit="the node-local rule: upstream times the local derivative",
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


def _unary_inputs(forward: Callable[[float], float]) -> Callable[[np.random.Generator], Inputs]:
    def make(rng: np.random.Generator) -> Inputs:
        x = scalar_away_from_zero(rng, 0.3, 1.5)
        return {"upstream": scalar_away_from_zero(rng, 0.5, 3.0), "out": forward(x)}

    return make


def _unary_reference(method: str, inverse: Callable[[float], float]) -> Callable[..., tuple[float]]:
    def reference(upstream: float, out: float) -> tuple[float]:
        v = Value(inverse(out))
        getattr(v, method)().backward(upstream)
        return (v.grad,)

    return reference


EXP_BACKWARD = Exercise(
    name="exp_backward",
    notebook=NOTEBOOK,
    signature="exp_backward(upstream, out) -> dx",
    summary="out = exp(x): the local derivative is out itself, cached from the forward pass",
    outputs=("dx",),
    points=1,
    make_inputs=_unary_inputs(math.exp),
    reference=_unary_reference("exp", math.log),
    numeric=lambda upstream, out: (upstream * slope(math.exp, math.log(out)),),
    misconceptions=(
        Misconception("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, out: (out,)),
        Misconception(
            "exp_of_output",
            "exp was applied to the cached OUTPUT: d exp(x)/dx = exp(x), which is the cached out itself",
            lambda upstream, out: (upstream * math.exp(out),),
        ),
    ),
    revisit="caching: a local derivative written with the forward output",
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)

TANH_BACKWARD = Exercise(
    name="tanh_backward",
    notebook=NOTEBOOK,
    signature="tanh_backward(upstream, out) -> dx",
    summary="out = tanh(x): dL/dx = upstream * (1 - out**2)",
    outputs=("dx",),
    points=1,
    make_inputs=_unary_inputs(math.tanh),
    reference=_unary_reference("tanh", math.atanh),
    numeric=lambda upstream, out: (upstream * slope(math.tanh, math.atanh(out)),),
    misconceptions=(
        Misconception("forgot_upstream", FORGOT_UPSTREAM, lambda upstream, out: (1.0 - out * out,)),
        Misconception(
            "tanh_of_output",
            "tanh was applied again to the cached output: 1 − tanh²(z) needs z, the input; "
            "written with the cached output a = tanh(z) it is simply 1 − a²",
            lambda upstream, out: (upstream * (1.0 - math.tanh(out) ** 2),),
        ),
        Misconception(
            "not_squared",
            "the derivative of tanh is 1 − tanh², so written with the cached output it is 1 − out², "
            "with out squared",
            lambda upstream, out: (upstream * (1.0 - out),),
        ),
    ),
    revisit="the rules table: Tanh",
    refuses=NOT_YOURS,
    instead="write the rule yourself",
)


# -- the worked example --------------------------------------------------------------------------------
def _worked_inputs(rng: np.random.Generator) -> Inputs:
    while True:
        x, y = distinct_pair(rng)
        # Keep v = y (x + 1) and 1 + x away from 0 so no term vanishes by accident.
        if abs(x + 1.0) > 0.3 and abs(y * (x + 1.0)) > 0.3:
            return {"x": x, "y": y}


def _worked_reference(x: float, y: float) -> tuple[float, float]:
    a, b = Value(x), Value(y)
    u = a * b
    v = u + b
    (v**2).backward()
    return a.grad, b.grad


def _worked_loss(x: float, y: float) -> float:
    return (x * y + y) ** 2


WORKED_EXAMPLE_GRADS = Exercise(
    name="worked_example_grads",
    notebook=NOTEBOOK,
    signature="worked_example_grads(x, y) -> (dL_dx, dL_dy)",
    summary="u = x*y, v = u + y, L = v**2: a forward pass that caches, then a backward pass",
    outputs=("dL_dx", "dL_dy"),
    points=2,
    make_inputs=_worked_inputs,
    reference=_worked_reference,
    numeric=lambda x, y: (slope(lambda v: _worked_loss(v, y), x), slope(lambda v: _worked_loss(x, v), y)),
    misconceptions=(
        Misconception(
            "merge_only_via_u",
            "y is used twice (in u = x*y and in v = u + y): its gradient is the SUM of both "
            "contributions; only the one through u is here",
            lambda x, y: (None, 2 * (x * y + y) * x),
        ),
        Misconception(
            "merge_only_via_v",
            "y is used twice (in u = x*y and in v = u + y): its gradient is the SUM of both "
            "contributions; only the direct one through v is here",
            lambda x, y: (None, 2 * (x * y + y)),
        ),
        Misconception(
            "forgot_dL_dv",
            "the backward pass must start from dL/dv = 2v and carry it through every node",
            lambda x, y: (y, 1.0 + x),
        ),
    ),
    revisit="sum at merges: the worked example",
    refuses=NOT_YOURS,
    instead="write the forward and backward passes yourself",
)


# -- central differences ---------------------------------------------------------------------------------
def _difference_inputs(rng: np.random.Generator) -> Inputs:
    # A large step makes the one-sided and fixed-step mistakes show clearly.
    return {
        "f": SmoothFunction(str(rng.choice(list(SMOOTH_FUNCTIONS)))),
        "x": float(rng.uniform(0.5, 1.2)),
        "h": float(rng.choice([1e-2, 3e-2])),
    }


def _central(f: Callable[[float], float], x: float, h: float) -> tuple[float]:
    return ((f(x + h) - f(x - h)) / (2.0 * h),)


CENTRAL_DIFFERENCE = Exercise(
    name="central_difference",
    notebook=NOTEBOOK,
    signature="central_difference(f, x, h=1e-5) -> float",
    summary="(f(x + h) - f(x - h)) / (2h)",
    outputs=("derivative",),
    points=1,
    make_inputs=_difference_inputs,
    reference=_central,
    misconceptions=(
        Misconception(
            "forward_difference",
            "this is the one-sided difference (f(x+h) - f(x)) / h, whose error shrinks only like h; "
            "the central difference probes both sides: (f(x+h) - f(x-h)) / (2h)",
            lambda f, x, h: ((f(x + h) - f(x)) / h,),
        ),
        Misconception(
            "missing_two",
            "the two probes are 2h apart: divide by 2h, not h",
            lambda f, x, h: ((f(x + h) - f(x - h)) / h,),
        ),
        Misconception(
            "ignored_h",
            "use the step h you are given, not a fixed one",
            lambda f, x, h: ((f(x + 1e-5) - f(x - 1e-5)) / 2e-5,),
        ),
    ),
    revisit="finite differences and the choice of h",
    rtol=1e-7,
    atol=1e-8,
    # Its input is a bpcourse.testfunctions object, and calling it is the exercise: that module stays open.
    refuses=ENGINE + MINIGRAPH + REFERENCES,
    instead="write the difference yourself",
)

EXERCISES = (
    ADD_BACKWARD,
    MUL_BACKWARD,
    POW_BACKWARD,
    EXP_BACKWARD,
    TANH_BACKWARD,
    WORKED_EXAMPLE_GRADS,
    CENTRAL_DIFFERENCE,
)
