"""The machinery every graded exercise shares: inputs, oracles, verdicts, diagnoses.

An ``Exercise`` names a graded function of a notebook, how to draw fresh inputs
for it, a reference answer computed with the engine, a finite-difference
oracle, and the classic mistakes (``Misconception``) with what a learner should
read when their answer matches one.

Judging never trusts the learner's code: it only receives what their function
returned (through ``call``, which may run the function in another process) and
compares it here. Before a learner is judged on an input, the engine and the
finite-difference oracle must agree on it; if they do not, the input is drawn
again, so an oracle problem is never blamed on the learner.

No marks for calling the engine: each exercise names what its function may
not use (``Exercise.refuses``: the engine's modules, single objects, the
registry itself) and what to do instead. A function that uses one of them, as
read from its source or caught by the run-time guard of
``bpcourse.delegation``, scores 0 with one line, ``uses
bpcourse.graph.topological_order: write the order yourself``
(``delegation_verdict``, ``Delegated``).

Custom judges (orders, statistics, stability) build on the same pieces:
``run_learner`` / ``learner_outputs`` call the learner's function and turn
what it raised into a verdict, ``weighted_verdict`` scores a list of lines,
``with_hints`` wraps the default judge, and ``judged_every_output`` says when
the default judge's verdict can take more lines. Input-drawing helpers shared
by the notebooks' modules live in ``bpcourse.exercises.inputs``. An exercise
made of steps that are exercises of their own takes its misconceptions from
theirs (``bpcourse.exercises.composite``), and the default judge names the
misconception that explains the whole answer before looking output by output
(``diagnose_answer``). An answer that is a class (notebook 08) is named by
``Exercise.answer`` and exercised by a driver (``bpcourse.drive``), which the
call runs in the learner's process: the judge still receives plain numbers.

Tolerances. The reference and a correct answer evaluate the same formulas in
float64, in possibly different orders: they differ by a few units of round-off
(relative 1e-15 to 1e-12 for these sizes). Every classic mistake changes the
answer at order one (a transposed product, a missing term, a factor B).
``RTOL = 1e-6`` and ``ATOL = 1e-9`` sit between the two by several orders of
magnitude on both sides. The two oracles are compared with the gradient-check
rule (1e-8 + 1e-5·max), since a finite difference carries ~1e-10 of error.
"""

from __future__ import annotations

import math
import numbers
import os
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np

from bpcourse.delegation import DelegationRefused, refusal_line, refused_name, refused_uses
from bpcourse.gradcheck import mismatch, numerical_gradient

RTOL = 1e-6
ATOL = 1e-9

Inputs = dict[str, Any]
Outputs = tuple[Any, ...]


class NotGradable(Exception):
    """The learner's answer cannot be judged at all (wrong type, wrong count, ...)."""


class OracleDisagreement(Exception):
    """The engine and finite differences kept disagreeing: a problem of the grader."""


class GradingStop(Exception):
    """Judging this exercise cannot go on; the message is for the learner.

    Raised by a ``call`` (never by the learner's own code): the function is
    missing, it ran past its time limit, or its process died. Judges let it
    through; ``judge`` turns it into the verdict, one line ``what``: message.
    """

    status = "error"
    what = "runs"


class MissingFunction(GradingStop):
    status = "missing"


class Delegated(GradingStop):
    """The learner's function used what the exercise refuses; the message is the refusal line."""

    status = "delegated"
    what = "own code"


class LearnerRaised(Exception):
    """The learner's function raised in another process; the message says what and where.

    ``kind`` is the name of the exception's type there (``"RecursionError"``).
    """

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.learner_message = message
        self.kind = kind


@dataclass(frozen=True)
class Misconception:
    """A classic mistake: a wrong variant of the reference, and what to tell the learner.

    ``variant(**inputs)`` returns the outputs the mistake produces, in the
    exercise's output order, with ``None`` for outputs it does not affect.
    """

    key: str
    message: str
    variant: Callable[..., Outputs]


# -- what a graded function may not use -------------------------------------------------------
# Every way the course's engine finds a derivative: reverse mode on scalars (Value, SCALAR_OPS)
# and on arrays (Tensor, with softmax, affine and the losses), its traversal, forward mode
# (Dual, jvp, vjp), finite differences, and the layers and tools built on them. The rule each
# exercise asks for is inside every one of these, so calling any of them hands in the engine's work.
ENGINE: tuple[str, ...] = (
    "bpcourse.scalar",
    "bpcourse.tensor",
    "bpcourse.graph",
    "bpcourse.forward",
    "bpcourse.gradcheck",
    "bpcourse.nn",
    "bpcourse.checkpoint",
    "bpcourse.diagnostics",
)
# The registry: every exercise's reference answer (the class grader hides it; a notebook does not).
REFERENCES: tuple[str, ...] = ("bpcourse.exercises",)
# minigraph's nodes carry their local derivatives (mul(a, b).local_grads), and it converts a
# graph to Values and back-propagates it. Exercises whose inputs are its nodes refuse only the
# conversion (GRAPH_ANSWERS): the nodes themselves are the exercise.
MINIGRAPH: tuple[str, ...] = ("bpcourse.minigraph",)
GRAPH_ANSWERS: tuple[str, ...] = ("bpcourse.minigraph.to_values", "bpcourse.minigraph.reference_grads")
# Maps and layers made of engine ops (JvpFunction, VjpFunction, TanhLayer): they compute tanh
# and affine derivatives. Exercises that receive them as inputs leave the module open.
TEST_FUNCTIONS: tuple[str, ...] = ("bpcourse.testfunctions",)
# The default: all of the above.
NOT_YOURS: tuple[str, ...] = ENGINE + MINIGRAPH + TEST_FUNCTIONS + REFERENCES


@dataclass(frozen=True)
class Exercise:
    """One graded function of the course.

    ``refuses``: dotted names (modules, which cover everything in them, or
    single objects) that the learner's function may not use; ``instead``: what
    the refusal tells them to do, as in "uses NAME: write the rule yourself".
    """

    name: str
    notebook: str
    signature: str
    summary: str
    outputs: tuple[str, ...]
    points: float
    make_inputs: Callable[[np.random.Generator], Inputs]
    reference: Callable[..., Outputs] | None = None
    numeric: Callable[..., Outputs] | None = None
    misconceptions: tuple[Misconception, ...] = ()
    revisit: str = ""
    trials: int = 3
    rtol: float = RTOL
    atol: float = ATOL
    # A custom judge for exercises that are not "compare with the reference"
    # (orders, statistics, stability). It receives (exercise, call, rng).
    judge: Callable[..., Verdict] | None = None
    refuses: tuple[str, ...] = NOT_YOURS
    instead: str = "write it yourself"
    # An answer that is not a function (a class): ``answer`` is its name in the notebook when
    # several exercises judge it (default: ``name``), and ``driver`` a course function, visible
    # inside the sandbox, that exercises it there: the judge's inputs go to ``driver(answer,
    # *inputs)`` and what the driver returns comes back. A driver holds no reference answer.
    answer: str = ""
    driver: Callable[..., Any] | None = None

    @property
    def answer_name(self) -> str:
        """The name the graded answer has in the learner's notebook."""
        return self.answer or self.name


@dataclass
class Line:
    """One line of feedback: which check, did it pass, what to read."""

    what: str
    ok: bool
    message: str = ""


# What a verdict may say of an exercise ("unreadable": the notebook itself could not be read; "to grade
# by hand": a written answer, which the grader never scores, bpcourse.exercises.written).
STATUSES = ("passed", "partial", "failed", "not implemented", "error", "missing", "delegated", "unreadable",
            "to grade by hand")  # fmt: skip


@dataclass(repr=False)
class Verdict:
    """The outcome of judging one exercise."""

    exercise: str
    score: float
    max_score: float
    status: str  # one of STATUSES
    lines: list[Line] = field(default_factory=list)
    revisit: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        head = f"{self.exercise}: {self.status} ({_points(self.score)}/{_points(self.max_score)} points)"
        body = [f"  {'✓' if line.ok else '✗'} {line.what}" + (f": {line.message}" if line.message else "")
                for line in self.lines]  # fmt: skip
        if not self.passed and self.revisit:
            body.append(f"  → revisit: {self.revisit}")
        return "\n".join([head, *body])

    __repr__ = __str__  # Jupyter's text/plain and the console show the same readable lines

    def _repr_html_(self) -> str:
        colour = {"passed": "#1b7f3b", "partial": "#a86500"}.get(self.status, "#b00020")
        rows = "".join(
            f"<li style='list-style:none'>{'✅' if line.ok else '❌'} <b>{escape(line.what)}</b>"
            + (f": {escape(line.message)}" if line.message else "")
            + "</li>"
            for line in self.lines
        )
        hint = (
            f"<div style='margin-top:4px'>→ revisit: {escape(self.revisit)}</div>"
            if not self.passed and self.revisit
            else ""
        )
        return (
            f"<div style='font-family:sans-serif;border-left:4px solid {colour};padding:4px 10px'>"
            f"<b style='color:{colour}'>{escape(self.exercise)}: {escape(self.status)}</b> "
            f"({_points(self.score)}/{_points(self.max_score)} points)"
            f"<ul style='margin:4px 0;padding-left:6px'>{rows}</ul>{hint}</div>"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "lines": [{"what": ln.what, "ok": ln.ok, "message": ln.message} for ln in self.lines],
        }


def _points(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


# -- building verdicts -----------------------------------------------------------------------------
NOT_IMPLEMENTED = "not implemented yet: replace the raise with your code"


def verdict_of(exercise: Exercise, status: str, lines: list[Line], score: float = 0.0) -> Verdict:
    """A verdict on ``exercise`` with these lines; the score is rounded to 4 decimals."""
    return Verdict(exercise.name, round(score, 4), exercise.points, status, lines, exercise.revisit)


def weighted_verdict(
    exercise: Exercise, lines: list[Line], weights: Sequence[float] | None = None
) -> Verdict:
    """A verdict whose score is the weighted share of the lines that passed, times the points.

    ``weights`` has one entry per line (all lines weigh the same when it is None).
    Status: "passed" when every line passed, "partial" when some did, "failed" when none did.
    """
    if weights is None:
        weights = [1.0] * len(lines)
    earned = sum(w for line, w in zip(lines, weights, strict=True) if line.ok)
    passed = sum(line.ok for line in lines)
    status = "passed" if passed == len(lines) else ("partial" if passed else "failed")
    return verdict_of(exercise, status, lines, exercise.points * earned / sum(weights))


def not_implemented(exercise: Exercise) -> Verdict:
    """The verdict on a function that still raises NotImplementedError."""
    return verdict_of(exercise, "not implemented", [Line("implemented", False, NOT_IMPLEMENTED)])


def judged_every_output(verdict: Verdict, exercise: Exercise) -> bool:
    """True when ``verdict`` has one line per output, as ``judge_by_reference`` writes them.

    A custom judge adds its own lines only then: otherwise the function was not
    implemented, raised, or returned something unusable, and the verdict says so.
    """
    return [line.what for line in verdict.lines] == list(exercise.outputs)


# -- normalising what the learner returned ---------------------------------------------------
def as_outputs(raw: Any, names: Sequence[str]) -> Outputs:
    """The learner's return value as a tuple with one entry per expected output."""
    if len(names) == 1:
        return (raw,)
    if not isinstance(raw, tuple | list):
        raise NotGradable(
            f"should return {len(names)} values ({', '.join(names)}) as a tuple, "
            f"but returned a single {type_name(raw)}"
        )
    if len(raw) != len(names):
        raise NotGradable(f"should return {len(names)} values ({', '.join(names)}), but returned {len(raw)}")
    return tuple(raw)


def type_name(x: Any) -> str:
    """The name of x's type (for a value that stayed in the learner's process, its original type)."""
    return getattr(x, "type_name", None) or type(x).__name__


def _is_real_scalar(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _describe_shape(shape: tuple[int, ...]) -> str:
    if shape == ():
        return "a scalar"
    if len(shape) == 1:
        return f"shape {shape}: a flat 1-D array, neither a column nor a row"
    return f"shape {shape}"


def non_finite(array: np.ndarray) -> str | None:
    """None when every entry of ``array`` is finite; otherwise "contains NaN (k entries)" (or Inf)."""
    finite = np.isfinite(array)
    if finite.all():
        return None
    kind = "NaN" if np.isnan(array).any() else "Inf"
    return f"contains {kind} ({int((~finite).sum())} entries)"


def problem_with(name: str, got: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """None when ``got`` matches ``expected``; otherwise what is wrong, in words.

    Never prints the expected values: only shapes, kinds and where the error sits.
    """
    if _is_real_scalar(expected) or (isinstance(expected, np.ndarray) and expected.shape == ()):
        if isinstance(got, np.ndarray) and got.size == 1:
            got = got.reshape(())[()]
        if not _is_real_scalar(got) and not isinstance(got, np.floating | np.integer):
            return f"should be a number, got {type_name(got)}"
        value = float(got)
        if not math.isfinite(value):
            return f"is {value}: the computation overflowed or divided by zero"
        if mismatch(value, float(expected), atol, rtol):
            return "has the wrong value"
        return None
    if isinstance(got, list | tuple):
        return f"should be a numpy array of shape {expected.shape}, got a {type_name(got)}"
    if _is_real_scalar(got):
        return f"should be an array of shape {expected.shape}, got a single number"
    if not isinstance(got, np.ndarray):
        return f"should be a numpy array of shape {expected.shape}, got {type_name(got)}"
    if got.dtype.kind == "b":
        return "is an array of True/False: multiply the mask by the upstream gradient to get numbers"
    if got.dtype.kind not in "fc":
        return (
            f"has dtype {got.dtype}: gradients are real numbers (float64); "
            "an integer array truncates them (np.zeros_like of an int array?)"
        )
    if got.shape != expected.shape:
        hint = ""
        if got.shape == expected.shape[::-1] and got.ndim == 2:
            hint = " (transposed?)"
        elif got.ndim == 1 and expected.ndim == 2 and 1 in expected.shape:
            hint = " (keep it 2-D: keepdims=True or .reshape)"
        return f"has {_describe_shape(got.shape)} but should have shape {expected.shape}{hint}"
    broken = non_finite(got)
    if broken is not None:
        return f"{broken}: overflow or a division by zero"
    bad = mismatch(got, expected, atol, rtol)
    if bad.any():
        err = np.where(bad, np.abs(got - expected), 0.0)
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))
        return (
            f"has the right shape but {int(bad.sum())} of {bad.size} entries are wrong "
            f"(largest error at {where})"
        )
    return None


def _matches(got: Any, candidate: Any, rtol: float, atol: float) -> bool:
    if candidate is None:
        return False
    try:
        return problem_with("", got, np.asarray(candidate) if not _is_real_scalar(candidate) else candidate,
                            rtol, atol) is None  # fmt: skip
    except Exception:  # a malformed answer never matches anything
        return False


Seen = dict[str, Any]  # each misconception's outputs on one input, by key (``variant_outputs``)


def variant_outputs(mistake: Misconception, inputs: Inputs, seen: Seen | None = None) -> Outputs | None:
    """What ``mistake`` gives on ``inputs``; None when its variant cannot run on them.

    ``seen`` (by misconception key), when given, keeps the result for the other
    outputs of the same inputs, so each variant runs once per input.
    """
    if seen is not None and mistake.key in seen:
        return seen[mistake.key]
    try:
        outputs = tuple(mistake.variant(**inputs))
    except Exception:
        outputs = None
    if seen is not None:
        seen[mistake.key] = outputs
    return outputs


def diagnose(
    exercise: Exercise, index: int, inputs: Inputs, got: Any, expected: Any, seen: Seen | None = None
) -> str | None:
    """The message of the first misconception whose variant reproduces ``got``.

    ``seen``: the variants' outputs on these inputs, kept between outputs (``variant_outputs``).
    """
    for mistake in exercise.misconceptions:
        outputs = variant_outputs(mistake, inputs, seen)
        if outputs is None or index >= len(outputs):
            continue
        variant = outputs[index]
        if variant is None or _matches(expected, variant, exercise.rtol, exercise.atol):
            continue  # this mistake does not change this output on this input
        if _matches(got, variant, exercise.rtol, exercise.atol):
            return mistake.message
    return None


def diagnose_answer(
    exercise: Exercise, inputs: Inputs, got: Outputs, expected: Outputs, seen: Seen | None = None
) -> str | None:
    """The message of the first misconception that reproduces the whole answer, or None.

    It must give every output it changes as the learner did, and leave every
    other output right, as the learner did. Output by output, two mistakes can
    look alike (a bias gradient divided by B in layer 1, or every gradient of
    layer 1 divided by B from a mistake in layer 2); the whole answer tells them
    apart, and ``judge_by_reference`` asks for it before looking output by output.
    """
    for mistake in exercise.misconceptions:
        outputs = variant_outputs(mistake, inputs, seen)
        if outputs is None or len(outputs) != len(got):
            continue
        changes = False
        for g, v, e in zip(got, outputs, expected, strict=True):
            if e is None:
                continue
            changed = v is not None and not _matches(e, v, exercise.rtol, exercise.atol)
            if not _matches(g, v if changed else e, exercise.rtol, exercise.atol):
                break
            changes = changes or changed
        else:
            if changes:
                return mistake.message
    return None


def explained(problem: str, diagnosis: str | None) -> str:
    """A problem followed by its diagnosis (the classic mistake behind it), when there is one."""
    return f"{problem} — {diagnosis}" if diagnosis else problem


def all_finite(value: Any) -> bool:
    """False when ``value`` holds a NaN or an Inf.

    True for anything that is not numbers at all: ``problem_with`` says what is wrong with that.
    """
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
    except (TypeError, ValueError):
        return True


# -- oracles ---------------------------------------------------------------------------------------
def slope(f: Callable[[float], float], x: float) -> float:
    """Central-difference derivative of a scalar function of one float."""
    return float(numerical_gradient(lambda v: f(float(v[0])), np.array([x]))[0])


# -- running the learner's function --------------------------------------------------------------
Call = Callable[[Inputs], Any]


def draw_checked_inputs(
    exercise: Exercise, rng: np.random.Generator, attempts: int = 5
) -> tuple[Inputs, Outputs]:
    """Fresh inputs on which the engine and the finite-difference oracle agree."""
    for _ in range(attempts):
        inputs = exercise.make_inputs(rng)
        expected = exercise.reference(**inputs)
        if exercise.numeric is None:
            return inputs, expected
        numeric = exercise.numeric(**inputs)
        agree = all(
            e is None or n is None or not np.any(mismatch(e, n))
            for e, n in zip(expected, numeric, strict=True)
        )
        if agree:
            return inputs, expected
    raise OracleDisagreement(
        f"{exercise.name}: the engine and finite differences disagree on {attempts} draws"
    )


def _copy_arrays(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy_arrays(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copy_arrays(v) for v in value)
    return value


def copy_inputs(inputs: Inputs) -> Inputs:
    """Arrays copied (inside dicts, lists and tuples too), so a function that writes into
    its inputs cannot change the reference. Other objects (graphs) are passed as they are.
    """
    return {k: _copy_arrays(v) for k, v in inputs.items()}


def call_directly(function: Callable[..., Any]) -> Call:
    """A ``Call`` that runs ``function`` here, positionally, on copies of the inputs."""

    def call(inputs: Inputs) -> Any:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return function(*copy_inputs(inputs).values())

    return call


def learner_error(exc: BaseException) -> str:
    """A learner-readable account of an exception raised by their own code.

    Names the exception and the last line of the learner's code it came from,
    leaving out the grader's own frames.
    """
    if isinstance(exc, LearnerRaised):
        return exc.learner_message
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(package)]
    where = f" (at line {frames[-1].lineno}: {frames[-1].line})" if frames and frames[-1].line else ""
    return f"raised {type(exc).__name__}: {exc}{where}"


def run_learner(exercise: Exercise, call: Call, inputs: Inputs) -> tuple[Any, Verdict | None]:
    """``(returned, None)``, or ``(None, verdict)`` when the learner's code raised.

    An answer the call could not even return (``NotGradable``) fails on a "returns"
    line; any other exception is an error on a "runs" line, in the words of
    ``learner_error``. NotImplementedError and GradingStop go through: ``judge``
    turns them into verdicts.
    """
    try:
        return call(inputs), None
    except (NotImplementedError, GradingStop):
        raise
    except NotGradable as exc:
        return None, verdict_of(exercise, "failed", [Line("returns", False, str(exc))])
    except Exception as exc:
        return None, verdict_of(exercise, "error", [Line("runs", False, learner_error(exc))])


def learner_outputs(exercise: Exercise, call: Call, inputs: Inputs) -> tuple[Outputs | None, Verdict | None]:
    """Like ``run_learner``, with what was returned as one entry per output (``as_outputs``).

    ``(None, verdict)`` too when the function returned too few or too many values.
    """
    return run_learner(exercise, lambda given: as_outputs(call(given), exercise.outputs), inputs)


def judge_by_reference(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
    """The default judge: each output against the engine on several fresh inputs.

    Score: the fraction of outputs that are right on every trial, times the points.
    """
    names = exercise.outputs
    problems: dict[int, str] = {}
    for _ in range(exercise.trials):
        inputs, expected = draw_checked_inputs(exercise, rng)
        try:
            got, stop = learner_outputs(exercise, call, inputs)
        except NotImplementedError:
            return not_implemented(exercise)
        if stop is not None:
            return stop
        seen: Seen = {}
        whole: list[str | None] = []  # the misconception behind the whole answer, once looked for
        for i, name in enumerate(names):
            if i in problems or expected[i] is None:
                continue
            problem = problem_with(name, got[i], expected[i], exercise.rtol, exercise.atol)
            if problem is None:
                continue
            if not whole:
                whole.append(diagnose_answer(exercise, inputs, got, expected, seen))
            diagnosis = whole[0] or diagnose(exercise, i, inputs, got[i], expected[i], seen)
            problems[i] = explained(problem, diagnosis)
    lines = [Line(name, i not in problems, problems.get(i, "")) for i, name in enumerate(names)]
    return weighted_verdict(exercise, lines)


# -- the default judge with a hint for numpy shape errors -------------------------------------------
_SHAPE_ERRORS = ("matmul", "not aligned", "could not be broadcast", "shapes")


def _add_hint(exc: BaseException, hint: str) -> None:
    """Append ``hint`` to a numpy shape error raised by the learner's code (traceback kept).

    The error may come from this process (a ValueError) or, relayed as text, from
    the process the grader runs the notebook in (``LearnerRaised``).
    """
    if isinstance(exc, LearnerRaised):
        text = exc.learner_message
        if "ValueError" in text and any(s in text for s in _SHAPE_ERRORS) and hint not in text:
            exc.learner_message = f"{text}. {hint}"
            exc.args = (exc.learner_message,)
        return
    text = str(exc)
    if isinstance(exc, ValueError) and any(s in text for s in _SHAPE_ERRORS) and hint not in text:
        exc.args = (f"{text}. {hint}",)


def with_hints(
    shape_hint: str, convert: Callable[[Any], Outputs] | None = None
) -> Callable[[Exercise, Call, np.random.Generator], Verdict]:
    """The default judge, with two additions around the learner's call.

    ``shape_hint`` is added to a numpy shape error (W g where Wᵀ g belongs
    cannot even run when m != n, so the error itself is the diagnosis).
    ``convert``, when given, turns what the learner returned into the tuple of
    outputs the reference produces (raising ``NotGradable`` when it cannot).
    """

    def run(exercise: Exercise, call: Call, rng: np.random.Generator) -> Verdict:
        def hinted(inputs: Inputs) -> Any:
            try:
                raw = call(inputs)
            except Exception as exc:
                _add_hint(exc, shape_hint)
                raise
            return raw if convert is None else convert(raw)

        return judge_by_reference(exercise, hinted, rng)

    return run


# -- no marks for calling the engine -------------------------------------------------------------
def delegated(exercise: Exercise, name: str) -> Verdict:
    """The verdict on a function that used ``name``, which the exercise refuses: 0 points, one line."""
    line = Line(Delegated.what, False, refusal_line(name, exercise.instead))
    return verdict_of(exercise, Delegated.status, [line])


def delegation_verdict(exercise: Exercise, source: str) -> Verdict | None:
    """The verdict when ``source`` shows that the exercise's function uses what it refuses; else None.

    ``source`` is the code of the cell that defines the function (the whole
    notebook's code will do): only the function's own definition, and the
    source's functions it calls, are read, with the source's imports as aliases.
    """
    found = refused_uses(source, exercise.refuses, function=exercise.name)
    return delegated(exercise, found[0]) if found else None


def refusals_stop(exercise: Exercise, call: Call) -> Call:
    """``call``, with a refusal of the run-time guard turned into ``Delegated`` (which stops judging).

    The refusal comes raised in this process (``DelegationRefused``), or relayed
    as text from the learner's process (``LearnerRaised``); either way the line
    is written here, from the refused name and the exercise's ``instead``.
    """

    def guarded(inputs: Inputs) -> Any:
        try:
            return call(inputs)
        except DelegationRefused as exc:
            raise Delegated(refusal_line(exc.name, exercise.instead)) from None
        except LearnerRaised as exc:
            name = refused_name(exc.learner_message) if exc.kind == DelegationRefused.__name__ else None
            if name is None:
                raise
            raise Delegated(refusal_line(name, exercise.instead)) from None

    return guarded


def judge(exercise: Exercise, call: Call, rng: np.random.Generator | None = None) -> Verdict:
    """Judge one exercise, whatever kind it is. Never raises for the learner's faults."""
    rng = np.random.default_rng() if rng is None else rng
    run = exercise.judge or judge_by_reference
    try:
        return run(exercise, refusals_stop(exercise, call), rng)
    except NotImplementedError:
        return not_implemented(exercise)
    except GradingStop as exc:
        return verdict_of(exercise, exc.status, [Line(exc.what, False, str(exc))])
    except OracleDisagreement as exc:
        message = f"internal problem of the grader, not your answer: {exc}"
        return Verdict(exercise.name, 0.0, exercise.points, "error", [Line("grader", False, message)])
