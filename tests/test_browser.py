"""A learner's first minutes with notebook 03, in a real browser.

JupyterLab is started on a free loopback port with a fresh HOME and fresh
Jupyter folders, serving a copy of ``solutions/03_affine_and_activations.ipynb``
with its stored outputs removed (so every verdict on the page comes from this
run, not from the file). Headless Chromium, driven by Playwright, then does
what a learner does:

1. opens the notebook and waits for its kernel to be connected and idle;
2. selects the ``affine_backward`` self-check, clicks Run ▸ Run All Above Selected
   Cell, then Run ▸ Run Selected Cell and Do not Advance, and reads the rendered
   (HTML) verdict: passed;
3. edits ``affine_backward`` in the cell's editor into the classic slip
   ``dW = x @ g.T``, runs it and the self-check again with Shift+Enter, and reads
   the diagnosis: it names the transposed dW.

A screenshot of each state is saved into ``$BPCOURSE_ARTIFACTS`` (default:
``test-artifacts/`` under the repository root); on a failure, a screenshot of
the page and the server's log are saved there too.

The test needs Chromium at /usr/bin/chromium (``bash .ci/install-browser``, as
root, on Debian; another binary can be named with ``$BPCOURSE_CHROMIUM``) and
the ``playwright`` package (in the ``test`` extra). In CI (``CI`` set, as
``.ci/run`` runs) it fails, never skips, when either is missing. On a learner's
or instructor's own machine without Chromium it is skipped with that same
instruction, so the README's test command works with Python and pip alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bpcourse.exercises.affine_and_activations import DW_TRANSPOSED

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "03_affine_and_activations.ipynb"
SOURCE = REPO / "solutions" / NOTEBOOK
CHROMIUM = os.environ.get("BPCOURSE_CHROMIUM") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("BPCOURSE_ARTIFACTS") or REPO / "test-artifacts")
SHOTS = ("browser-1-loaded.png", "browser-2-passed.png", "browser-3-diagnosed.png")
FAILURE_SHOT, FAILURE_LOG = "browser-failure.png", "browser-jupyter-server.log"
INSTALL = (
    "install it as the CI does: `bash .ci/install-browser` (as root, on Debian: Chromium at "
    "/usr/bin/chromium) and `pip install '.[test]'` (the playwright package)"
)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SERVER_START_S = 60  # JupyterLab's first start in a fresh HOME (matplotlib builds its font cache)
SHUTDOWN_S = 15
KERNEL_MS = 60_000  # the kernel starts, then runs the cells above the self-check
STEP_MS = 30_000  # any single click, keystroke or rendering

# The learner's slip: the weight gradient with its factors swapped (x gᵀ, shape (n, m)).
RIGHT_DW, WRONG_DW = "dW = g @ x.T", "dW = x @ g.T"


# -- the notebook ------------------------------------------------------------------------------
def _cell_index(cells: list[dict[str, Any]], grade_id: str) -> int:
    for i, cell in enumerate(cells):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise AssertionError(f"{NOTEBOOK} has no cell with grade_id {grade_id!r}")


NB = json.loads(SOURCE.read_text(encoding="utf-8"))
FUNCTION_CELL = _cell_index(NB["cells"], "affine_backward")
CHECK_CELL = _cell_index(NB["cells"], "check_affine_backward")
FUNCTION_SOURCE = "".join(NB["cells"][FUNCTION_CELL]["source"])
KERNEL_NAME = NB["metadata"]["kernelspec"]["display_name"]  # "Python 3 (ipykernel)"


def _without_outputs(nb: dict[str, Any]) -> dict[str, Any]:
    """The notebook as a learner first sees it run: no stored outputs or execution counts."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


# -- the server --------------------------------------------------------------------------------
@dataclass
class Lab:
    url: str
    token: str
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _request(lab_url: str, token: str, path: str, method: str = "GET") -> int:
    request = urllib.request.Request(
        f"{lab_url}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def _scrubbed_env(home: Path) -> dict[str, str]:
    """This environment without any Jupyter, IPython or XDG setting of the machine's user."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "JPY_", "IPYTHON", "XDG_", "MPLCONFIGDIR"))
    }
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / ".ipython"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    root, home = tmp_path / "course", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    (root / NOTEBOOK).write_text(json.dumps(_without_outputs(NB), indent=1), encoding="utf-8")
    # No news or update checks: no network, and no toast over the notebook in the screenshots.
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8"
    )

    port, token = _free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "jupyter-server.log"
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    with open(log, "wb") as out:
        server = subprocess.Popen(
            command,
            cwd=root,
            env=_scrubbed_env(home),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, ended below if it will not stop
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{_tail(log)}")
            try:
                if _request(url, token, "/api/status") == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {url} within {SERVER_START_S} s:\n{_tail(log)}")
            time.sleep(0.25)
        yield Lab(url, token, log)
    finally:
        try:  # the clean way: the server shuts its kernels down, then itself
            _request(url, token, "/api/shutdown", method="POST")
        except (urllib.error.URLError, OSError):
            pass
        try:
            server.wait(SHUTDOWN_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(SHUTDOWN_S)


# -- the browser -------------------------------------------------------------------------------
def _require_browser() -> None:
    """In CI, fail when the browser or its driver is missing (CI installs both); elsewhere skip."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        missing = f"the playwright package is missing ({exc}): {INSTALL}"
    else:
        missing = "" if os.access(CHROMIUM, os.X_OK) else f"Chromium is missing at {CHROMIUM}: {INSTALL}"
    if missing and not os.environ.get("CI"):
        pytest.skip(missing)
    assert not missing, missing


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=STEP_MS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(STEP_MS)
            yield page
        finally:
            browser.close()


# -- the learner -------------------------------------------------------------------------------
def _shot(page: Any, name: str, top: Any) -> None:
    """A screenshot with the cell ``top`` at the top of the notebook's view."""
    top.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)  # let the scroll and the last rendering settle
    page.screenshot(path=str(ARTIFACTS / name))


def test_learner_sees_pass_then_transpose_diagnosis(request: pytest.FixtureRequest) -> None:
    _require_browser()  # before anything starts, so that a missing browser fails at once
    from playwright.sync_api import expect

    lab: Lab = request.getfixturevalue("lab")
    page = request.getfixturevalue("page")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in (*SHOTS, FAILURE_SHOT, FAILURE_LOG):  # no stale pictures from an earlier run
        (ARTIFACTS / name).unlink(missing_ok=True)
    expect.set_options(timeout=STEP_MS)

    try:
        # 1. Open the notebook; wait for all its cells and an idle kernel.
        page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}", timeout=KERNEL_MS)
        notebook = page.locator(".jp-NotebookPanel .jp-Notebook")
        cells = notebook.locator(".jp-Cell")
        expect(cells).to_have_count(len(NB["cells"]), timeout=KERNEL_MS)
        # The status bar names the kernel and its state once the page is connected to it. (The
        # toolbar's indicator is no proof: it reads "idle" before any kernel exists.)
        kernel_status = page.locator('#jp-main-statusbar [title^="Change kernel for"]')
        expect(kernel_status).to_have_text(f"{KERNEL_NAME} | Idle", timeout=KERNEL_MS)
        function_cell, check_cell = cells.nth(FUNCTION_CELL), cells.nth(CHECK_CELL)
        expect(function_cell.locator(".cm-content")).to_contain_text("def affine_backward(g, x, W):")
        expect(check_cell.locator(".cm-content")).to_contain_text("check(affine_backward)")
        check_output = check_cell.locator(".jp-OutputArea-output")
        expect(check_output).to_have_count(0)  # nothing stored: what appears next is this run's
        _shot(page, SHOTS[0], function_cell)

        # 2. Select the self-check; Run All Above Selected Cell, then run it.
        check_cell.locator(".jp-InputPrompt").click()
        expect(check_cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
        for command in ("notebook:run-all-above", "notebook:run-cell"):
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.locator(f'.lm-Menu-item[data-command="{command}"]').click()
            expect(check_cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
        verdict = check_cell.locator(".jp-RenderedHTMLCommon").first  # the HTML verdict, not text
        expect(verdict).to_contain_text("affine_backward:", timeout=KERNEL_MS)
        expect(verdict.locator("b").first).to_have_text("affine_backward: passed")
        expect(verdict).to_contain_text("(3/3 points)")
        _shot(page, SHOTS[1], function_cell)

        # 3. Swap the factors of dW in the editor, run the cell and the self-check (Shift+Enter twice).
        assert RIGHT_DW in FUNCTION_SOURCE, f"the solution of affine_backward no longer has {RIGHT_DW!r}"
        editor = function_cell.locator(".cm-content")
        editor.click()
        page.keyboard.press("ControlOrMeta+a")
        # One insertion of the whole text, as a paste: typing line by line would add
        # the editor's automatic indentation to the indentation already in the text.
        page.keyboard.insert_text(FUNCTION_SOURCE.replace(RIGHT_DW, WRONG_DW))
        expect(editor).to_contain_text(WRONG_DW)
        expect(editor).not_to_contain_text(RIGHT_DW)
        expect(editor.locator(".cm-line")).to_have_count(len(FUNCTION_SOURCE.splitlines()))
        page.keyboard.press("Shift+Enter")
        expect(check_cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
        page.keyboard.press("Shift+Enter")

        verdict = check_cell.locator(".jp-RenderedHTMLCommon").first
        expect(verdict.locator("b").first).to_have_text("affine_backward: partial", timeout=KERNEL_MS)
        expect(verdict).to_contain_text("(2/3 points)")
        dw_line = verdict.locator("li").filter(has=page.locator("b", has_text=re.compile(r"^dW$")))
        expect(dw_line).to_contain_text("❌")
        expect(dw_line).to_contain_text("(transposed?)")
        expect(dw_line).to_contain_text("this is x gᵀ, the transpose of dW")
        expect(dw_line).to_contain_text(DW_TRANSPOSED)
        expect(verdict).to_contain_text("→ revisit:")
        _shot(page, SHOTS[2], function_cell)
    except BaseException:
        with contextlib.suppress(Exception):  # keep the original error, whatever happens here
            page.screenshot(path=str(ARTIFACTS / FAILURE_SHOT), timeout=10_000)
        with contextlib.suppress(OSError):
            shutil.copyfile(lab.log, ARTIFACTS / FAILURE_LOG)
        raise
