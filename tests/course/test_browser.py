"""The notebooks in a real browser: JupyterLab, headless Chromium, and the widgets used by hand.

nbval runs every cell, but it never renders a widget nor clicks one. Here JupyterLab runs
notebooks 05 and 07 (copies, so the committed files stay as they are) with the test settings of
conftest.py and a private embedded AWS. Chromium opens each one and runs all its cells from
JupyterLab's Run menu, as a learner does: the cells above the Clean up section ("Run All Above
Selected Cell"); then it uses the widget (types an invoice number into 05's lookup box and
presses its button; picks a country in 07's dashboard) and checks that its output area changes;
then the clean-up ("Run Selected Cell and All Below"). Every code cell must run once, in order
(execution counts 1, 2, 3, ...). (A plain Run All reaches the clean-up before anyone can click:
it deletes the API and the warehouse the widgets ask.) Screenshots of each widget before and
after go to artifacts/browser/ (git-ignored; their paths are printed).

Needs Playwright's Python package (requirements-dev.txt) and a Chromium on the machine
(Debian: ``apt-get install chromium``; another binary: ``ECOM_CHROMIUM=/path/to/chrome``).
Without them the test skips and says which is missing; with ``ECOM_BROWSER_TEST=required``
(set by CI) it fails instead.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ecomlib import edition, portable

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
LOOKUP_NB = "05_visualization_api.ipynb"
DASHBOARD_NB = "07_dashboards.ipynb"
# Flags that work in a container without a display or a GPU, with no background traffic.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# JupyterLab's user settings for this run: no "get Jupyter news?" prompt, no update check;
# every cell kept in the page (no windowing), so each prompt can be read; no autosave.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}
RUN_TIMEOUT = 300  # seconds, for the cells of one notebook (about 20 s on a quiet machine)


def _need(reason: str):
    if os.environ.get("ECOM_BROWSER_TEST") == "required":
        pytest.fail(f"the browser test must run here, but {reason}", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _need("Playwright's Python package is not installed (pip install -r requirements-dev.txt)")
    found = os.environ.get("ECOM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        _need("no Chromium found (Debian/Ubuntu: apt-get install chromium; or set ECOM_CHROMIUM)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A JupyterLab server of this Python environment, on 127.0.0.1 with a token."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(root.parent / "lab.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             "--LabApp.extension_manager=readonly",  # no look-ups on PyPI
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}"],
            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            **portable.detached())

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited at start (code {self.proc.returncode}); "
                                   f"see {self.log.name}")
            try:
                self.api("/api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s; see {self.log.name}")

    def wait_kernel_idle(self, notebook: str, timeout: float = 120) -> None:
        """Until the notebook has a kernel (a busy machine takes a while to start one) and it is idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kernels = [s["kernel"] for s in self.api("/api/sessions") if s["path"] == notebook]
            if kernels and kernels[0]["execution_state"] == "idle":
                return
            time.sleep(0.3)
        raise AssertionError(f"{notebook}: no idle kernel after {timeout:.0f} s; see {self.log.name}")

    def url(self, notebook: str) -> str:
        """The notebook alone in a workspace of its own (``reset``: no tab of an earlier page)."""
        return f"{self.base}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={self.token}"

    def shut_down(self, notebook: str) -> None:
        """Stop the notebook's kernel (its session)."""
        for session in self.api("/api/sessions"):
            if session["path"] == notebook:
                self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:  # the kernels first, then the server
                for kernel in self.api("/api/kernels"):
                    self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
            except (urllib.error.URLError, ConnectionError):
                pass
            portable.stop_group(self.proc.pid)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                portable.stop_group(self.proc.pid, force=True)
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving copies of 05 and 07, with the test settings and a private embedded AWS
    (its ECOM_HOME, stopped afterwards) and private Jupyter folders and settings."""
    chromium = _chromium()
    base = tmp_path_factory.mktemp("browser")
    root, home, jupyter = base / "notebooks", base / "ecom-home", base / "jupyter"
    root.mkdir()
    for name in (LOOKUP_NB, DASHBOARD_NB):
        shutil.copy(edition.NOTEBOOKS / name, root / name)
    for plugin, values in LAB_SETTINGS.items():
        path = jupyter / "lab-settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = edition.nbval_environment(str(home))
    env.update(JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(jupyter / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
               # the kernels import this checkout's ecomlib, as nbval's do
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    server = Lab(root, env)
    try:
        server.wait_ready()
        server.chromium = chromium
        yield server
    finally:
        server.stop()
        _stop_embedded_aws(home)


def _stop_embedded_aws(home: Path) -> None:
    from ecomlib.local import server

    saved = os.environ.get("ECOM_HOME")
    os.environ["ECOM_HOME"] = str(home)
    try:
        server.stop()
    finally:
        if saved is None:
            del os.environ["ECOM_HOME"]
        else:
            os.environ["ECOM_HOME"] = saved


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch_persistent_context(
            profile, executable_path=lab.chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield chromium
        finally:
            chromium.close()
            shutil.rmtree(profile, ignore_errors=True)


def _wait_page_idle(page, timeout: float = 60) -> None:
    """Until the notebook's toolbar shows its kernel idle."""
    page.wait_for_function("document.querySelector('.jp-Notebook-ExecutionIndicator')"
                           "?.dataset.status === 'idle'", timeout=timeout * 1000)


def _prompts(page) -> list[str]:
    return [text.strip() for text in page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]


def open_notebook(lab: Lab, browser, notebook: str):
    """A new tab with ``notebook``, once its kernel has started and is idle."""
    page = browser.new_page()
    page.goto(lab.url(notebook))
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)
    lab.wait_kernel_idle(notebook)
    _wait_page_idle(page)
    return page


def code_cells_before_clean_up(notebook: str) -> int:
    """How many code cells come before the notebook's "## Clean up" section."""
    cells = json.loads((edition.NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and "".join(cell["source"]).startswith("## Clean up"):
            return sum(c["cell_type"] == "code" for c in cells[:index])
    raise AssertionError(f"{notebook}: no Clean up section")


def select_clean_up(page) -> None:
    """Click the "Clean up" heading: its markdown cell becomes the selected cell."""
    heading = page.locator(".jp-MarkdownCell h2", has_text=re.compile(r"^Clean up"))
    heading.scroll_into_view_if_needed()
    heading.click()
    page.locator(".jp-MarkdownCell.jp-mod-selected h2", has_text=re.compile(r"^Clean up")).wait_for()


def run_from_menu(page, notebook: str, command: str, cells: slice) -> float:
    """Choose Run > ``command``; wait until no cell shows [*] and the kernel is idle; check that
    the code cells in ``cells`` ran, in order, with the execution counts that follow the cells
    above them (a fresh kernel: 1, 2, 3, ...). Returns the seconds it took."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:visible", has_text=re.compile("^" + re.escape(command))).click()
    started = time.monotonic()
    # the committed prompts are numbered too: first see the cells queued ([*])
    page.locator(".jp-CodeCell .jp-InputPrompt", has_text="[*]").first.wait_for(timeout=30_000)
    indicator = page.locator(".jp-Notebook-ExecutionIndicator")
    while True:
        prompts = _prompts(page)
        if "[*]:" not in prompts and indicator.get_attribute("data-status") == "idle":
            break
        if time.monotonic() - started > RUN_TIMEOUT:
            _screenshot(page.locator(".jp-NotebookPanel").first, f"{notebook[:2]}_stuck")
            queued = [i for i, p in enumerate(prompts) if p == "[*]:"]
            raise AssertionError(f"{notebook}: {command}: code cells {queued[:5]}... still [*] "
                                 f"after {RUN_TIMEOUT} s")
        time.sleep(0.5)
    seconds = time.monotonic() - started
    first = len(prompts[:cells.start or 0]) + 1
    ran, wanted = prompts[cells], [f"[{n}]:" for n in range(first, first + len(prompts[cells]))]
    if ran != wanted:  # a cell raised (the run stops there) or did not run
        at = next(i for i, (p, w) in enumerate(zip(ran, wanted)) if p != w) + (cells.start or 0)
        text = page.locator(".jp-CodeCell").nth(max(at - 1, 0)).locator(".jp-OutputArea").inner_text()
        raise AssertionError(f"{notebook}: {command}: code cell {at} shows {prompts[at]} (wanted "
                             f"{wanted[at - (cells.start or 0)]}); the output above it ends:\n{text[-1500:]}")
    print(f"{notebook}: {command}: {len(ran)} code cells in {seconds:.1f} s")
    return seconds


def run_to_clean_up(page, notebook: str) -> tuple[int, float]:
    """Every cell above the Clean up section, as a learner runs them before using a widget
    (the clean-up deletes the API and the warehouse the widgets ask). Returns that count
    and the seconds it took."""
    above = code_cells_before_clean_up(notebook)
    select_clean_up(page)
    return above, run_from_menu(page, notebook, "Run All Above Selected Cell", slice(0, above))


def run_clean_up(page, notebook: str, above: int) -> float:
    """The rest of the notebook, from the selected Clean up cell to the end; its seconds."""
    select_clean_up(page)
    return run_from_menu(page, notebook, "Run Selected Cell and All Below", slice(above, None))


def _screenshot(locator, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(path))
    return path


def _report(capsys, notebook: str, seconds: dict[str, float], paths: list[Path]) -> None:
    """Print the screenshots' paths and the run times, whatever pytest captures."""
    with capsys.disabled():
        runs = ", ".join(f"{what} {took:.0f} s" for what, took in seconds.items())
        print(f"\n  {notebook}: {runs}", end="")
        for path in paths:
            print(f"\n  screenshot: {path.relative_to(REPO)}", end="")
        print()


def _committed_stdout(notebook: str, marker: str) -> str:
    """The printed output nbval checks for the committed cell whose source contains ``marker``."""
    cells = json.loads((edition.NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "code" and marker in "".join(cell["source"]):
            return "".join("".join(o["text"]) for o in cell["outputs"] if o.get("name") == "stdout").strip()
    raise AssertionError(f"{notebook}: no cell with {marker!r}")


def _wait_for_change(read, before, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = read()
        if now and now != before:
            return now
        time.sleep(0.25)
    raise AssertionError(f"the output did not change within {timeout:.0f} s (still {str(before)[:200]!r})")


def test_the_lookup_box_of_05_answers_a_typed_invoice(lab, browser, capsys):
    """Type a cancellation's number, press "Look up": its lines appear in the output area, with
    the line count and total that the committed notebook shows for the same invoice."""
    started = time.monotonic()
    page = open_notebook(lab, browser, LOOKUP_NB)
    seconds = {"open": time.monotonic() - started}
    above, seconds["cells above Clean up"] = run_to_clean_up(page, LOOKUP_NB)
    form = page.locator(".widget-vbox", has=page.locator(".widget-text")).last
    box, button = form.locator(".widget-text input"), form.locator("button", has_text="Look up")
    output = form.locator(".widget-output")
    expect_total = _committed_stdout(LOOKUP_NB, 'invoices["IsCancellation"], "InvoiceNo"].iloc[0]')
    assert re.fullmatch(r"\d+ lines, total -[\d.,]+ GBP", expect_total), expect_total

    before = output.inner_text().strip()
    shots = [_screenshot(form, "05_lookup_before")]
    box.fill("C536438")  # the first cancellation: what the committed cell shows for it
    clicked = time.monotonic()
    button.click()
    after = _wait_for_change(lambda: output.inner_text().strip(), before)
    _wait_page_idle(page)
    after = output.inner_text().strip()
    seconds["lookup"] = time.monotonic() - clicked
    shots.append(_screenshot(form, "05_lookup_after"))
    assert before == "", f"the output area starts empty, not {before!r}"
    assert expect_total in after, after
    lines = int(expect_total.split()[0])
    assert output.locator("table tbody tr").count() == lines, after  # the invoice's lines, as a table

    box.fill("999999")
    button.click()
    missing = _wait_for_change(lambda: output.inner_text().strip(), after)
    assert missing == _committed_stdout(LOOKUP_NB, 'show_invoice("999999")'), missing
    seconds["clean-up"] = run_clean_up(page, LOOKUP_NB, above)
    _report(capsys, LOOKUP_NB, seconds, shots)
    page.close()
    lab.shut_down(LOOKUP_NB)


def test_the_dashboard_of_07_redraws_for_a_chosen_country(lab, browser, capsys):
    """Pick Germany in the country list: the dashboard's figure is drawn again (a new image)."""
    started = time.monotonic()
    page = open_notebook(lab, browser, DASHBOARD_NB)
    seconds = {"open": time.monotonic() - started}
    above, seconds["cells above Clean up"] = run_to_clean_up(page, DASHBOARD_NB)
    dashboard = page.locator(".widget-vbox", has=page.locator(".widget-dropdown")).last
    country = dashboard.locator(".widget-dropdown select")
    image = dashboard.locator(".widget-output img")
    image.wait_for()
    assert image.count() == 1
    before = image.get_attribute("src")
    assert country.input_value() == "All"
    shots = [_screenshot(dashboard, "07_dashboard_before")]

    picked = time.monotonic()
    country.select_option(label="Germany")
    after = _wait_for_change(lambda: image.first.get_attribute("src") if image.count() == 1 else None, before)
    _wait_page_idle(page)
    shots.append(_screenshot(dashboard, "07_dashboard_after"))
    seconds["redraw"] = time.monotonic() - picked
    assert before.startswith("data:image/png") and after.startswith("data:image/png")
    assert country.input_value() == "Germany"
    assert image.count() == 1, "one figure in the output area, the new one"
    seconds["clean-up"] = run_clean_up(page, DASHBOARD_NB, above)
    _report(capsys, DASHBOARD_NB, seconds, shots)
    page.close()
    lab.shut_down(DASHBOARD_NB)
