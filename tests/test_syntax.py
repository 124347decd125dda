"""``bpcourse.syntax.parse``: ast.parse one thread at a time (the class grader parses in threads)."""

from __future__ import annotations

import ast
import threading

import pytest

from bpcourse import syntax


def test_parse_gives_what_ast_parse_gives():
    source = "def f(x):\n    return [y * 2 for y in x if y]\n"
    assert ast.dump(syntax.parse(source)) == ast.dump(ast.parse(source))
    with pytest.raises(SyntaxError):
        syntax.parse("def f(:\n    pass")


def test_a_parse_waits_while_another_thread_parses():
    done = threading.Event()

    def parse_in_a_thread() -> None:
        syntax.parse("x = 1")
        done.set()

    with syntax._LOCK:  # as if another thread were in the middle of a parse
        worker = threading.Thread(target=parse_in_a_thread)
        worker.start()
        assert not done.wait(0.3), "parse did not wait for the parse under way"
    assert done.wait(5)
    worker.join()
