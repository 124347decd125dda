"""What a learner reads when a graded function is refused: the exception, and its one line."""

from __future__ import annotations


class DelegationRefused(Exception):
    """A graded function reached a part of the course's engine that it must write itself.

    ``name`` is the dotted name of what it reached, ``instead`` what to do instead;
    ``str()`` is the line the learner reads (``refusal_line``).
    """

    def __init__(self, name: str, instead: str = "") -> None:
        super().__init__(name, instead)
        self.name = name
        self.instead = instead

    def __str__(self) -> str:
        return refusal_line(self.name, self.instead)


def refusal_line(name: str, instead: str = "") -> str:
    """The line a learner reads: ``"uses bpcourse.graph.topological_order: write the order yourself"``."""
    return f"uses {name}: {instead}" if instead else f"uses {name}"


def refused_name(report: str) -> str | None:
    """The dotted name in a refusal relayed as text (``"... DelegationRefused: uses a.b.c: ..."``).

    A learner's process reports an exception as text; this finds what was
    refused in it, so the line can be written again on the grader's side.
    """
    marker = "DelegationRefused: uses "
    start = report.find(marker)
    if start < 0:
        return None
    rest = report[start + len(marker) :]
    end = next((i for i, c in enumerate(rest) if not (c.isalnum() or c in "._")), len(rest))
    return rest[:end] or None


# Named where it is imported from, in tracebacks, reprs and pickles.
DelegationRefused.__module__ = "bpcourse.delegation"
