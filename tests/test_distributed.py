"""Grading on a dask.distributed cluster gives the gradebook of a local run.

A two-process ``LocalCluster`` stands in for machines: each worker is its own
process that starts the learners' sandboxes, the notebooks travel with the
tasks, and the results come back to ``bpcourse grade``, which writes them.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import time
from pathlib import Path

import pytest
from test_grading import CORRECT, FULL_MARKS, LIMITS, NOTEBOOK, WRONG_MUL, with_replaced, write

from bpcourse.cli import main
from bpcourse.grading.distributed import ClusterProblem, check_workers, dask_executor, grade_shipped, ship
from bpcourse.grading.results import file_hash
from bpcourse.grading.runner import grade_class, grade_submission
from bpcourse.grading.submissions import Submission, discover

distributed = pytest.importorskip("distributed")

LIMIT_OPTIONS = ["--cell-timeout", str(LIMITS.cell_seconds), "--call-timeout", str(LIMITS.call_seconds),
                 "--memory", str(LIMITS.memory_mb)]  # fmt: skip
STUB = "def exp_backward(upstream, out):\n    raise NotImplementedError()"
RAISES = "def tanh_backward(upstream, out):\n    return upstream / 0"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each; afterwards every one of them is gone."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        with distributed.Client(local, set_as_default=False) as client:
            pids = list(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        yield local
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "the cluster's worker processes outlived it"


def _make_class(root: Path) -> None:
    write(root / "amy" / f"{NOTEBOOK}.ipynb", list(CORRECT.values()))
    write(root / "ben" / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", WRONG_MUL))
    write(root / "cem" / f"{NOTEBOOK}.ipynb", with_replaced("exp_backward", STUB))
    write(root / "dee" / f"{NOTEBOOK}.ipynb", [*with_replaced("tanh_backward", RAISES), "x = 1 / 0"])


def _gradebook(out: Path) -> dict[tuple[str, str], tuple[str, str, str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {(r["student"], r["exercise"]): (r["score"], r["status"], r["diagnosis"]) for r in rows}


def test_a_class_graded_on_the_cluster_matches_the_local_run(cluster, tmp_path, capsys):
    _make_class(tmp_path / "class")
    local = grade_class(
        discover([tmp_path / "class"]), tmp_path / "local", workers=2, limits=LIMITS, seed=5, progress=None
    )
    assert not local.failed

    status = main(["grade", str(tmp_path / "class"), "--dask", cluster.scheduler_address,
                   "--out", str(tmp_path / "dask"), "--seed", "5", "--quiet", *LIMIT_OPTIONS])  # fmt: skip
    assert status == 0, capsys.readouterr().err

    on_cluster = _gradebook(tmp_path / "dask")
    assert on_cluster == _gradebook(tmp_path / "local")
    assert len(on_cluster) == 4 * len(CORRECT)
    assert on_cluster[("amy", "mul_backward")][:2] == ("1.0", "passed")
    assert on_cluster[("ben", "mul_backward")][:2] == ("0.0", "failed")
    assert on_cluster[("cem", "exp_backward")][1] == "not implemented"
    assert on_cluster[("dee", "tanh_backward")][1] == "error"
    assert (tmp_path / "dask" / "gradebook.csv").read_text() == (
        tmp_path / "local" / "gradebook.csv"
    ).read_text()

    # The work was done by the workers, and each result names the submitted file, as locally.
    with distributed.Client(cluster, set_as_default=False) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert sum(executed.values()) >= 4
    results = json.loads((tmp_path / "dask" / "gradebook.json").read_text())["submissions"]
    assert {r["path"] for r in results} == {str(s.path) for s in discover([tmp_path / "class"])}
    dee = next(r for r in results if r["student"] == "dee")
    # The hash a worker computed names the bytes of the submitted file.
    assert {r["sha256"] for r in results} == {file_hash(s.path) for s in discover([tmp_path / "class"])}
    assert any("ZeroDivisionError" in p for p in dee["problems"])

    # A second run finds everything done, as a local rerun would.
    assert main(["grade", str(tmp_path / "class"), "--dask", cluster.scheduler_address,
                 "--out", str(tmp_path / "dask"), "--seed", "5"]) == 0  # fmt: skip
    assert "graded 0, already done 4" in capsys.readouterr().out


def test_the_notebook_travels_with_the_task(tmp_path):
    path = write(tmp_path / "amy" / f"{NOTEBOOK}.ipynb", with_replaced("mul_backward", WRONG_MUL))
    submission = Submission("amy", NOTEBOOK, path)
    shipped = ship(submission)
    path.unlink()  # a worker on another machine cannot read the caller's files
    result = grade_shipped(grade_submission, shipped, LIMITS, 5)
    assert result["path"] == str(path)
    assert result["score"] == FULL_MARKS - 1
    assert not result["problems"]


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    started = time.monotonic()
    with pytest.raises(ClusterProblem, match="could not reach the dask scheduler"):
        with dask_executor("tcp://127.0.0.1:9", connect_timeout=1):
            pass
    assert time.monotonic() - started < 30
    with pytest.raises(ClusterProblem, match="not a dask scheduler address"):
        with dask_executor("nonsense://10.0.0.5:8786"):
            pass


class _FakeClient:
    """Just enough of distributed.Client for check_workers."""

    def __init__(self, versions, workers_come=True):
        self.versions = versions
        self.workers_come = workers_come
        self.scheduler = type("Scheduler", (), {"address": "tcp://10.0.0.5:8786"})()

    def wait_for_workers(self, n, timeout=None):
        if not self.workers_come:
            raise TimeoutError

    def run(self, function, *args, on_error="raise"):
        return self.versions


def test_workers_without_this_package_are_refused():
    here = importlib.metadata.version("bpcourse")
    missing = importlib.metadata.PackageNotFoundError("bpcourse")
    with pytest.raises(ClusterProblem, match="not installed on 1 dask worker"):
        check_workers(_FakeClient({"tcp://a:1": here, "tcp://b:1": missing}))
    with pytest.raises(ClusterProblem, match="no dask worker joined"):
        check_workers(_FakeClient({}, workers_come=False), wait_seconds=1)
    assert check_workers(_FakeClient({"tcp://a:1": here})) == []
    assert "grades may differ" in check_workers(_FakeClient({"tcp://a:1": here + ".other"}))[0]
