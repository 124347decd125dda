"""Tests of the ``bpcourse`` command and ``python -m bpcourse``."""

import matplotlib

matplotlib.use("Agg")

import os  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

import bpcourse.scalar  # noqa: E402
from bpcourse.cli import main  # noqa: E402

NUMBER = r"-?\d+\.\d+"


def gradients(output, row):
    """The (dL/dx, dL/dy) pair printed on the report row starting with ``row``."""
    match = re.search(rf"^\s*{re.escape(row)}\s+({NUMBER})\s+({NUMBER})\s*$", output, re.MULTILINE)
    assert match, f"no row {row!r} in:\n{output}"
    return float(match.group(1)), float(match.group(2))


def test_demo_reports_three_gradients_and_writes_pictures(tmp_path, capsys):
    out = tmp_path / "pictures"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for row in ("engine (backward)", "finite differences", "closed form"):
        dx, dy = gradients(text, row)
        assert dx == pytest.approx(13.5, abs=1e-6)
        assert dy == pytest.approx(-27.0, abs=1e-6)
    assert "L = v**2   = 20.25" in text
    assert "gradient check passed" in text
    assert re.search(r"max \|engine - finite differences\| = (\S+)", text)
    for name in ("worked_example.png", "worked_example.svg"):
        path = out / name
        assert path.stat().st_size > 1000
        assert str(path) in text


def test_demo_other_point(tmp_path, capsys):
    assert main(["demo", "--x", "1", "--y", "-0.5", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    # v = x y + y = -1: dL/dx = 2 v y = 1, dL/dy = 2 v (1 + x) = -4
    for row in ("engine (backward)", "finite differences", "closed form"):
        assert gradients(text, row) == pytest.approx((1.0, -4.0), abs=1e-6)


def test_no_arguments_runs_the_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    text = capsys.readouterr().out
    assert "running `bpcourse demo`" in text
    assert gradients(text, "engine (backward)") == pytest.approx((13.5, -27.0))
    assert (tmp_path / "demo-output" / "worked_example.png").stat().st_size > 0


def test_wrong_engine_gives_nonzero_status(tmp_path, monkeypatch, capsys):
    # A broken product rule that forgets dz/dy: the forward pass is still right,
    # so finite differences expose the wrong gradient.
    monkeypatch.setattr(bpcourse.scalar, "_mul", lambda x, y: (x * y, y, 0.0))
    assert main(["demo", "--out", str(tmp_path)]) == 1
    text = capsys.readouterr().out
    assert "gradient check FAILED" in text
    assert gradients(text, "finite differences") == pytest.approx((13.5, -27.0), abs=1e-6)


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_python_dash_m(tmp_path):
    out = tmp_path / "m"
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, "-m", "bpcourse", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert gradients(done.stdout, "engine (backward)") == pytest.approx((13.5, -27.0))
    assert (out / "worked_example.png").stat().st_size > 0
    assert (out / "worked_example.svg").stat().st_size > 0
