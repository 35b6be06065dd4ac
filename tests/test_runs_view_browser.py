"""The runs view in a real browser (Debian Chromium driven by playwright).

1. The HTML report opened from file:// with the network off: sort, filter with the query
   language, plots, brushing, hover, diff, hostile names stay text.
2. JupyterLab 4 started here on 127.0.0.1 with a token: the anywidget renders in a notebook,
   header click sorts, ticking two rows shows their diff (with the code diff from the kernel),
   brushing an axis filters, hover names the run; saved and reopened with a fresh kernel, the
   static snapshot shows.

Screenshots go to artifacts/ (gitignored) at the repository root: look at them.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import playwright.sync_api  # noqa: F401  (a test dependency: a broken install must fail)
import pytest
from lab.browser import ARTIFACTS, chromium, jupyter_server, need_chromium
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.slow

HOSTILE = "<img src=x onerror=alert(1)>"

need_chromium(module_level=True)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _rows(page) -> int:
    return page.locator(".mnb-grid tbody tr[data-id]").count()


def _until(check, timeout: float = 10.0) -> None:
    """Poll from Python: the report's CSP forbids the eval `wait_for_function` needs."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _names(page) -> list[str]:
    return _column(page, "name")


def _column(page, key: str) -> list[str]:
    """The texts of one column of the runs table, top to bottom."""
    return page.evaluate("""key => {
        const ths = [...document.querySelectorAll('.mnb-grid thead th')];
        const k = ths.findIndex(th => th.dataset.key === key);
        return [...document.querySelectorAll('.mnb-grid tbody tr[data-id]')]
            .map(tr => tr.children[k].textContent);
    }""", key)


# -- the report -----------------------------------------------------------------------------------
def _write_store(home: Path) -> None:
    from mlops_nb.records import CellRun
    from mlops_nb.store.writer import SessionWriter

    writer = SessionWriter(home, "s1")
    writer.update_session(session="s1", environment={})
    code = writer.blobs.put(b"x = 1\n")
    rf = "sklearn.ensemble._forest.RandomForestClassifier"
    specs = [(100, 8, 0.91), (300, 8, 0.93), (100, None, 0.95), (30, 2, 0.80), (300, 16, 0.90)]
    seq = 0
    for n, depth, f1 in specs:
        est = {"n_estimators": n, "max_depth": depth, "criterion": "gini"}
        writer.append(CellRun(
            id=uuid.uuid4().hex, session="s1", experiment="e", seq=seq,
            started_at=1_790_000_000.0 + 60 * seq, code=code, lineage=[],
            params={"n_estimators": n, **{f"clf.{k}": v for k, v in est.items()}},
            estimators={"clf": {"class": rf, "params": est}}, metrics={"f1": f1}))
        seq += 1
    for c, f1 in ((0.1, 0.81), (1.0, 0.84)):
        writer.append(CellRun(
            id=uuid.uuid4().hex, session="s1", experiment="e", seq=seq,
            started_at=1_790_000_000.0 + 60 * seq, code=code, lineage=[],
            params={"C": c, HOSTILE: "<script>alert(2)</script>"},
            estimators={"clf": {"class": "sklearn.linear_model.LogisticRegression",
                                "params": {"C": c}}},
            metrics={"f1": f1}, name=f"\u202eevil {HOSTILE}" if c == 1.0 else None))
        seq += 1
    writer.flush(30)
    writer.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from mlops_nb.comparison import write_report

    tmp = tmp_path_factory.mktemp("report")
    _write_store(tmp / ".mlops_nb")
    return write_report(tmp / "report.html", metric="f1", home=tmp / ".mlops_nb")


def test_report_offline_sorts_filters_plots(browser, report):
    ctx = browser.new_context(offline=True, viewport={"width": 1400, "height": 1200})
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append("dialog: " + d.message), d.dismiss()))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else
            problems.append("request: " + r.url))
    page.goto(report.as_uri())
    rows = page.locator(".mnb-grid tbody tr[data-id]")
    rows.first.wait_for()
    assert rows.count() == 7
    names = _names(page)
    assert names[0] == "★ RandomForest · n_estimators=100 · max_depth=None"  # best first

    # click a header: sorted by it, with an indicator; again: the other way
    header = page.locator('th[data-key="params.n_estimators"]')
    header.click()
    assert header.get_attribute("aria-sort") == "ascending" and "▲" in header.inner_text()
    col = _column(page, "params.n_estimators")
    assert col[:5] == ["30", "100", "100", "300", "300"] and col[5:] == ["—", "—"]
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert _names(page) != names

    # filter with the query language, and an unknown column names the closest
    q = page.locator("input.mnb-q")
    q.fill("model=RandomForest max_depth>=8 f1<0.92")
    _until(lambda: _rows(page) == 2)
    assert "2 of 7 runs" in page.locator(".mnb-count").inner_text()
    q.fill("max_dept>2")
    _until(lambda: "closest" in page.locator(".mnb-error").inner_text())
    assert "unknown column 'max_dept'; closest: max_depth" in page.locator(".mnb-error").inner_text()
    q.fill("max_depth=None")
    _until(lambda: _rows(page) == 1)
    q.fill("")
    _until(lambda: _rows(page) == 7)

    # None and not set are distinct in the table
    assert page.locator("td.mnb-none").first.inner_text() == "None"
    unset = page.locator("td.mnb-unset").first
    assert unset.inner_text() == "—" and unset.get_attribute("title") == "not set in this run"

    # plot: every run drawn, None and not set on ticks of their own; hover names the run
    page.select_option("select.mnb-plot-param", "params.max_depth")
    assert page.locator(".mnb-plot circle.mnb-pt").count() == 7
    ticks = page.locator(".mnb-plot .mnb-tick-label").all_text_contents()
    assert "None" in ticks and "not set" in ticks
    page.locator(".mnb-plot circle.mnb-pt-best").hover()
    tip = page.locator(".mnb-tip")
    assert tip.is_visible() and "RandomForest · n_estimators=100 · max_depth=None" in \
        tip.inner_text()
    _shot(page, "report-table-and-plot.png")

    # parallel coordinates: brush the metric axis -> the table keeps the runs in range
    page.get_by_role("tab", name="parallel coordinates").click()
    assert page.locator(".mnb-plot polyline.mnb-line").count() == 7
    area = page.locator('.mnb-paxis[data-key="metrics.f1"] .mnb-brush-area').bounding_box()
    x = area["x"] + area["width"] / 2
    page.mouse.move(x, area["y"] + 2)
    page.mouse.down()
    page.mouse.move(x, area["y"] + area["height"] * 0.3, steps=5)
    page.mouse.up()
    _until(lambda: _rows(page) < 7)
    kept = page.locator(".mnb-grid tbody tr[data-id]").count()
    assert 1 <= kept < 7 and page.locator(".mnb-chip").count() == 1
    _shot(page, "report-brushed.png")
    page.locator(".mnb-chip").click()
    _until(lambda: _rows(page) == 7)

    # tick two rows: the diff of the two shows, only what differs by default
    boxes = page.locator(".mnb-grid tbody tr[data-id] input[type=checkbox]")
    boxes.nth(0).check()
    assert page.locator("button.mnb-export").inner_text() == "Export 1 selected"
    boxes.nth(1).check()
    assert page.locator("button.mnb-verify").inner_text() == "Verify 2 selected"
    diff = page.locator(".mnb-diff-table")
    diff.wait_for()
    assert "n_estimators" in diff.inner_text() or "max_depth" in diff.inner_text()
    _shot(page, "report-diff.png")

    # hostile names are text: shown as typed, nothing executed or loaded
    assert page.locator(".mnb-view img").count() == 0
    assert page.locator("script:not([type])").count() == 0
    assert HOSTILE in page.locator(".mnb-grid thead").inner_text() or \
        page.locator(f'th[data-key="params.{HOSTILE}"]').count() == 1
    assert problems == []
    ctx.close()


def test_report_hostile_values_render_as_typed(browser, report):
    ctx = browser.new_context(offline=True)
    page = ctx.new_page()
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    page.goto(report.as_uri())
    page.locator(".mnb-grid tbody tr[data-id]").first.wait_for()
    page.locator(".mnb-chooser summary").click()
    page.locator(f'.mnb-chooser input[data-key="params.{HOSTILE}"]').check()
    cells = page.locator(".mnb-grid tbody td").all_inner_texts()
    assert "<script>alert(2)</script>" in cells
    assert any(HOSTILE in c for c in cells)  # the explicit name, as typed
    assert page.evaluate("document.querySelectorAll('.mnb-view img, .mnb-view script').length") \
        == 0
    assert alerts == []
    ctx.close()


# -- JupyterLab -----------------------------------------------------------------------------------
NOTEBOOK_CELLS = [
    "%load_ext mlops_nb\n%track on --experiment demo  # record every cell",
    "from sklearn.datasets import make_classification\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import f1_score\n"
    "X, y = make_classification(n_samples=300, n_features=8, random_state=0)\n"
    "Xt, yt = X[:200], y[:200]\nXv, yv = X[200:], y[200:]",
    *[f"n_estimators = {n}\nmax_depth = {d}\n"
      "clf = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, "
      "random_state=0).fit(Xt, yt)\nf1 = f1_score(yv, clf.predict(Xv))"
      for n, d in ((10, 2), (50, 4), (50, None), (100, 8))],
    *[f"C = {c}\nclf = LogisticRegression(C=C).fit(Xt, yt)\nf1 = f1_score(yv, clf.predict(Xv))"
      for c in (0.01, 1.0)],
    "import mlops_nb as mnb\nmnb.compare(metric='f1')",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    import nbformat

    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / "runs.ipynb")
    token = uuid.uuid4().hex
    # The Experiments panel draws this same view in the sidebar; this test is about the
    # notebook widget, so the panel's extension stays off (tests/lab drives the panel).
    with jupyter_server(root, tmp_path_factory.mktemp("labstate"), token=token,
                        disabled=("@mlops-nb/labextension",)) as base:
        yield {"base": base, "token": token, "root": root}


def _api(lab, method: str, path: str) -> object:
    req = urllib.request.Request(f"{lab['base']}{path}?token={lab['token']}", method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def _accept_dialogs(page) -> None:
    """Accept whatever modal JupyterLab shows (kernel selection, a busy-kernel prompt): on a
    loaded machine one can appear late and block the next click. Each one's text is printed,
    so a failing run's captured output says which modal it was."""
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            return
        try:
            text = " ".join(dialog.first.inner_text(timeout=2_000).split())
        except PlaywrightError:
            text = "(gone before it could be read)"
        print(f"JupyterLab dialog: {text[:300]}")
        button = dialog.locator(".jp-Dialog-button.jp-mod-accept")
        try:
            if button.count():
                button.first.click(timeout=5_000)
            else:
                page.keyboard.press("Escape")
        except PlaywrightError:  # closed on its own meanwhile, or re-rendered: look again
            pass
        time.sleep(0.5)


def _wait_for_kernel(lab, path: str, timeout: float = 120) -> None:
    """Wait until the server has an idle kernel in the notebook's session. Run All clicked
    before that (a loaded machine) makes each queued cell start a kernel of its own, ask with
    a modal which one to use, and clear the cells left without one: seen as a queue that
    never finishes. The toolbar's idle indicator shows before the kernel exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for session in _api(lab, "GET", "/api/sessions") or []:
            kernel = session.get("kernel") or {}
            if session.get("path") == path and kernel.get("execution_state") == "idle":
                return
        time.sleep(0.5)
    raise AssertionError(f"no idle kernel for {path} in {timeout:.0f} s: "
                         f"{_api(lab, 'GET', '/api/sessions')}")


def _run_all(page, lab, path: str) -> None:
    """Run > Run All Cells, again if a busy machine swallowed the first click (no cell ran)."""
    page.locator(".jp-Notebook").first.wait_for(timeout=90_000)
    _wait_for_kernel(lab, path)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=90_000)
    prompts = page.locator(".jp-Cell .jp-InputArea-prompt")
    for _ in range(4):
        _accept_dialogs(page)  # a kernel or restart dialog would swallow the menu click
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        _accept_dialogs(page)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(t.strip() not in ("[ ]:", "") for t in prompts.all_inner_texts()):
                _finish_all(page, prompts)
                return
            time.sleep(0.5)
    raise AssertionError("JupyterLab never started running the cells")


def _finish_all(page, prompts) -> None:
    """Wait for every cell to run. On a busy machine JupyterLab has been seen to run the first
    cell and drop the rest of the queue (kernel idle, later prompts still `[ ]:`): then run
    from the first cell left, once the kernel has stayed idle."""
    idle = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
    deadline = time.monotonic() + 240
    stalled = 0
    while time.monotonic() < deadline:
        texts = [t.strip() for t in prompts.all_inner_texts()]
        left = [i for i, t in enumerate(texts) if t in ("[ ]:", "")]
        if not left:
            return
        busy = any(t == "[*]:" for t in texts)
        stalled = stalled + 1 if not busy and page.locator(idle).count() else 0
        if stalled >= 10:  # idle for ~5 s with cells never run
            # A modal (a late kernel prompt) is one reason the queue stalls; it would also
            # take the clicks below, so it goes first, and a click it still took is retried.
            _accept_dialogs(page)
            try:
                page.locator(".jp-Cell .jp-InputArea-prompt").nth(left[0]).click(timeout=10_000)
                page.get_by_role("menuitem", name="Run", exact=True).click(timeout=10_000)
                page.get_by_text("Run Selected Cell and All Below",
                                 exact=True).click(timeout=10_000)
            except PlaywrightError as exc:
                print(f"re-running the cells left failed, will retry: {exc.message[:200]}")
            stalled = 0
        time.sleep(0.5)
    _shot(page, "lab-failure.png")
    raise AssertionError(f"cells {left} never ran in 240 s")


def test_widget_in_jupyterlab(browser, lab):
    ctx = browser.new_context(viewport={"width": 1500, "height": 1400})
    page = ctx.new_page()
    page.goto(f"{lab['base']}/lab/tree/runs.ipynb?token={lab['token']}")
    _run_all(page, lab, "runs.ipynb")
    view = page.locator(".mnb-view")
    try:
        view.wait_for(timeout=150_000)
    except Exception:
        _shot(page, "lab-failure.png")
        raise
    rows = view.locator(".mnb-grid tbody tr[data-id]")
    page.wait_for_function(
        "document.querySelectorAll('.mnb-view .mnb-grid tbody tr[data-id]').length == 6",
        timeout=60_000)
    names = _names(page)
    assert any(n.startswith("★ RandomForest") or n.startswith("★ LogisticRegression")
               for n in names[:1])
    assert any("LogisticRegression · C=0.01" in n for n in names)
    assert view.locator('th[data-key="model"]').count() == 1

    # the snapshot printed for the saved file is hidden while the widget lives
    page.wait_for_function("[...document.querySelectorAll('.mnb-snapshot')]"
                           ".every(e => e.offsetParent === null)")

    # header click reorders
    header = view.locator('th[data-key="params.C"]')
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _names(page)[:2] == ["LogisticRegression · C=0.01", "LogisticRegression · C=1"]
    assert _names(page) != names
    header.scroll_into_view_if_needed()
    _shot(page, "lab-widget.png")
    page.evaluate("document.querySelector('.mnb-view .mnb-scroll').scrollLeft = 0")
    view.screenshot(path=str(ARTIFACTS / "lab-widget-view.png"))  # the README's docs/widget.png

    # tick two rows -> diff, and the kernel sends the code diff
    boxes = rows.locator("input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    view.locator(".mnb-diff-table").wait_for(timeout=30_000)
    view.locator("pre.mnb-code").wait_for(timeout=60_000)
    assert view.locator("button.mnb-verify").inner_text() == "Verify 2 selected"

    # hover a point: the run's name
    view.locator(".mnb-plot circle.mnb-pt").first.hover()
    assert view.locator(".mnb-tip").is_visible()
    assert "·" in view.locator(".mnb-tip .mnb-tip-name").inner_text()

    # brush the metric axis of the parallel coordinates -> the table filters
    view.get_by_role("tab", name="parallel coordinates").click()
    area = view.locator('.mnb-paxis[data-key="metrics.f1"] .mnb-brush-area').bounding_box()
    x = area["x"] + area["width"] / 2
    page.mouse.move(x, area["y"] + 1)
    page.mouse.down()
    page.mouse.move(x, area["y"] + area["height"] * 0.25, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "document.querySelectorAll('.mnb-view .mnb-grid tbody tr[data-id]').length < 6")
    _shot(page, "lab-widget-brushed.png")

    # save, stop the kernel, reopen: the snapshot is what the file keeps
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    ctx.close()
    for s in _api(lab, "GET", "/api/sessions") or []:
        _api(lab, "DELETE", f"/api/sessions/{s['id']}")
    saved = json.loads((lab["root"] / "runs.ipynb").read_text("utf-8"))
    outputs = saved["cells"][-1]["outputs"]
    assert any("mnb-snapshot" in "".join(o.get("data", {}).get("text/html", ""))
               for o in outputs)

    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{lab['base']}/lab/tree/runs.ipynb?token={lab['token']}")
    snap = page.locator(".mnb-snapshot")
    snap.wait_for(timeout=90_000)
    assert "best by f1" in snap.inner_text() and snap.locator("tr").count() == 7
    assert page.locator(".mnb-view").count() == 0
    snap.scroll_into_view_if_needed()
    _shot(page, "lab-reopened-snapshot.png")
    ctx.close()


def test_report_of_a_sweep_for_the_readme(browser, tmp_path):
    """A report of a plain sweep (no hostile values), offline: the README's docs/report.png."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_compare import make_store
    from mlops_nb.comparison import write_report

    make_store(tmp_path / ".mlops_nb", 60)
    out = write_report(tmp_path / "report.html", metric="accuracy", home=tmp_path / ".mlops_nb")
    ctx = browser.new_context(offline=True, viewport={"width": 1300, "height": 1000})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.locator(".mnb-grid tbody tr[data-id]").first.wait_for()
    assert page.locator(".mnb-count").inner_text() == "60 of 60 runs"
    assert page.locator(".mnb-plot svg circle").count() >= 60
    page.locator("details.plots").evaluate("d => d.open = false")
    page.screenshot(path=str(ARTIFACTS / "report-readme.png"))
    ctx.close()
    assert not errors, errors
