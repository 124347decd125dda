"""bpcourse.notebook.once_written: a demonstration waits for an exercise instead of stopping Run All."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from bpcourse.notebook import once_written  # noqa: E402


def layer_grad_norms(*args):
    """A stub, as the student notebook hands it out."""
    raise NotImplementedError()


def test_a_stub_prints_one_line_and_the_notebook_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    reached = []
    with once_written("compares your norms with the engine's"):
        layer_grad_norms()
        reached.append("after the call")
    out = capsys.readouterr().out
    assert reached == []
    assert out == (
        "(layer_grad_norms is not written yet: once it is written, "
        "this cell compares your norms with the engine's.)\n"
    )


def test_a_written_exercise_runs_silently(capsys: pytest.CaptureFixture[str]) -> None:
    with once_written("shows something"):
        value = 2 + 2
    assert value == 4 and capsys.readouterr().out == ""


def test_other_errors_are_raised() -> None:
    with pytest.raises(ZeroDivisionError), once_written("shows something"):
        1 / 0  # noqa: B018


def test_a_half_drawn_figure_is_closed() -> None:
    plt.close("all")
    kept = plt.figure()
    with once_written("draws a figure"):
        plt.subplots()
        layer_grad_norms()
    assert plt.get_fignums() == [kept.number]
    plt.close("all")
