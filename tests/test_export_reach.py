"""Issue 15: export follows files and modules the way real notebooks reach them.

Each shape is run in a real tracked InteractiveShell, exported, the export folder copied to an
unrelated folder (and the notebook's helper code moved away) to prove it is self-contained,
then reproduced in a fresh Python process started in an empty folder.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mlops_nb.cli import EXIT_FAILED, main
from mlops_nb.errors import ExportExists
from mlops_nb.exporting import export_run
from mlops_nb.reproduction import reproduce
from mlops_nb.store.reader import StoreReader


@pytest.fixture(autouse=True)
def _isolated_imports():
    """The notebook's sys.path edits and helper modules must not leak into other tests."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    tmp = tempfile.gettempdir()
    for name in set(sys.modules) - modules:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(tmp):
            del sys.modules[name]


def the_run(sh):
    sh.flush()
    runs = [cr for cr in StoreReader(sh.tracker.home).session_log(sh.tracker.session)
            if cr.is_run]
    return runs[-1]


def exported_from_a_kernel(project: Path, path: Path, cells: list[str], metric: str,
                           monkeypatch) -> tuple[Path, dict]:
    """The notebook `cells` run at `path` in a real kernel tracking into the project's store,
    and its best run by `metric` exported with the CLI from the project folder: (export
    folder, its run.json)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from mlops_nb.execute import execute_notebook

    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    home = project / ".mlops_nb"
    execute_notebook(path, timeout=300, env={"MLOPS_NB_HOME": str(home)})
    monkeypatch.chdir(project)
    out = project / "exports" / "best"
    assert main(["--home", str(home), "export", "--best", "--metric", metric, "-o",
                 str(out)]) == 0
    return out, json.loads((out / "run.json").read_text())


def copied_away(out: Path, tmp_path_factory) -> Path:
    """The export folder copied somewhere unrelated to the project."""
    dest = tmp_path_factory.mktemp("elsewhere") / "export"
    shutil.copytree(out, dest)
    return dest


def run_fresh(export: Path, tmp_path_factory, *args: str) -> dict:
    """`python train.py` in a fresh process from an empty folder; its metrics."""
    empty = tmp_path_factory.mktemp("empty")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLOPS_NB_HOME")}
    proc = subprocess.run([sys.executable, str(export / "train.py"), *args], cwd=empty,
                          capture_output=True, text=True, timeout=300, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def verified(export: Path) -> None:
    verdict = reproduce(export)
    assert verdict.ok and verdict.level == "L2", verdict.summary() + verdict.stderr_tail


# -- the io watcher: installed while tracking, restored exactly --------------------------------
def test_readers_are_wrapped_while_tracking_and_restored_exactly(shell):
    import numpy as np
    import pandas as pd
    from IPython.core import interactiveshell

    originals = (builtins.open, pathlib.Path.open, pd.read_csv, np.load, np.loadtxt,
                 interactiveshell.io_open)
    shell.run("%load_ext mlops_nb")
    shell.run("%track on")
    shell.run("x = 1")  # the first tracked cell wraps libraries already imported
    assert builtins.open is not originals[0] and pd.read_csv is not originals[2]
    assert np.loadtxt is not originals[4]
    import pickle

    # wrapped readers still pickle (multiprocessing, joblib), by reference to the originals
    assert pickle.loads(pickle.dumps(pd.read_csv)) is pd.read_csv
    assert pickle.loads(pickle.dumps(builtins.open)) is builtins.open
    shell.run("%track off")
    assert pickle.loads(pickle.dumps(pd.read_csv)) is originals[2]
    assert (builtins.open, pathlib.Path.open, pd.read_csv, np.load, np.loadtxt,
            interactiveshell.io_open) == originals
    assert builtins.open is io.open
    assert "read_text" not in vars(pathlib.Path) or pathlib.Path.read_text.__module__ == \
        "pathlib"
    shell.run("%track on")
    shell.run("x = 2")
    shell.run("%unload_ext mlops_nb")
    assert (builtins.open, pathlib.Path.open, pd.read_csv, np.load, np.loadtxt,
            interactiveshell.io_open) == originals


def test_a_tracked_read_behaves_exactly_like_an_untracked_one(tracked, tmp_path):
    Path("f.txt").write_text("hello")
    tracked.run("import os\nfd = os.open('f.txt', os.O_RDONLY)\n"
                "with open(fd) as fh:\n    a = fh.read()")
    tracked.run("import io\nb = open('f.txt').read()\nc = io.StringIO('x').read()")
    result = tracked.run("open('missing.txt')", check=False)
    assert isinstance(result.error_in_exec, FileNotFoundError)
    tracked.run("import pathlib\nd = pathlib.Path('f.txt').read_text()")
    assert tracked.ns["a"] == tracked.ns["b"] == tracked.ns["d"] == "hello"
    tracked.flush()
    log = StoreReader(tracked.tracker.home).session_log(tracked.tracker.session)
    reads = [r["path"] for cr in log for r in cr.reads]
    assert reads.count(str(tmp_path / "f.txt")) == 2  # fd reads have no path to record
    assert not any("missing" in p for p in reads)
    assert all(r["hash"] for cr in log for r in cr.reads)


def test_computed_paths_are_recorded_resolved_at_read_time(tracked, tmp_path):
    import joblib
    import numpy as np

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("v\n1\n2\n")
    (data / "b.txt").write_text("3")
    np.savetxt(data / "c.txt", np.array([4.0, 5.0]))
    np.save(data / "d.npy", np.array([6]))
    joblib.dump({"e": 7}, data / "e.joblib")
    tracked.run("import os, pathlib\nimport numpy as np\nimport pandas as pd\nimport joblib\n"
                "DATA_DIR = 'data/'\nname = 'b'\nroot = pathlib.Path('data')")
    tracked.run("a = pd.read_csv(DATA_DIR + 'a.csv')\n"
                "b = open(f'{DATA_DIR}{name}.txt').read()\n"
                "c = np.loadtxt(os.path.join(DATA_DIR, 'c.txt'))\n"
                "d = np.load(root / 'd.npy')\n"
                "e = joblib.load(str(root / 'e.joblib'))\n"
                "score = float(a['v'].sum()) + float(b) + float(c.sum()) + float(d[0]) + "
                "e['e']")
    run = the_run(tracked)
    assert run.metrics == {"score": 28.0}
    by_path = {r["path"]: r for r in run.reads}
    for name in ("a.csv", "b.txt", "c.txt", "d.npy", "e.joblib"):
        assert str(data / name) in by_path, sorted(by_path)
    assert by_path[str(data / "a.csv")]["given"] == "data/a.csv"
    assert by_path[str(data / "a.csv")]["via"] == "pandas.read_csv"
    assert not any("site-packages" in p or p.startswith("/usr/") for p in by_path)


# -- modules reached through sys.path ----------------------------------------------------------
def _notebook_folder(tmp_path: Path, monkeypatch) -> Path:
    nb = tmp_path / "notebooks"
    nb.mkdir()
    monkeypatch.chdir(nb)
    return nb


def test_helpers_through_sys_path_append_and_star_import(tracked, tmp_path, monkeypatch,
                                                         tmp_path_factory):
    code = tmp_path / "code"
    code.mkdir()
    (code / "plotting_functions_r1.py").write_text(
        "import os\nimport matplotlib\n"
        "from utils_r1 import scale\n\n"
        "def summarize(values):\n    return scale(sum(values))\n\n"
        "def bonus():  # data found from the module's own folder\n"
        "    here = os.path.dirname(__file__)\n"
        "    with open(os.path.join(here, '..', 'data', 'bonus.txt')) as fh:\n"
        "        return float(fh.read())\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bonus.txt").write_text("0.5")
    (code / "utils_r1.py").write_text("def scale(x):\n    return x * 10\n")
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import sys, os\n"
                "sys.path.append(os.path.join(os.path.abspath('..'), 'code'))\n"
                "from plotting_functions_r1 import *")
    tracked.run("score = float(summarize([1, 2, 3])) + bonus()")
    run = the_run(tracked)
    out = export_run(run.id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    mods = {m["name"]: m for m in manifest["modules"]}
    assert set(mods) == {"plotting_functions_r1", "utils_r1"}  # utils_r1: imported by it
    assert mods["utils_r1"]["path"] == "lib/utils_r1.py"
    assert mods["utils_r1"]["recorded_file"] == str(code / "utils_r1.py")
    assert (out / "lib" / "utils_r1.py").read_text() == (code / "utils_r1.py").read_text()
    reqs = (out / "requirements.txt").read_text()
    assert "utils" not in reqs and "plotting" not in reqs
    shutil.move(code, tmp_path / "code-moved-away")
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 60.5}


def test_star_import_names_come_from_the_recorded_module_not_a_namesake(tracked, tmp_path,
                                                                         tmp_path_factory):
    import importlib

    from mlops_nb.exporting.slicing import _module_names

    code = tmp_path / "code"
    code.mkdir()
    (code / "utils_r5.py").write_text("import math\n\ndef helper():\n    return math.pi\n")
    tracked.run(f"import sys\nsys.path.append({str(code)!r})\nfrom utils_r5 import *")
    tracked.run("score = helper()")
    run = the_run(tracked)
    # where export runs (a CLI, another environment) a different utils_r5 is importable
    other = tmp_path / "other"
    other.mkdir()
    (other / "utils_r5.py").write_text("def unrelated():\n    pass\n")
    del sys.modules["utils_r5"]
    sys.path.insert(0, str(other))
    importlib.invalidate_caches()
    _module_names.cache_clear()
    try:
        out = export_run(run.id, tmp_path / "exp")
    finally:
        _module_names.cache_clear()
    assert "def helper" in (out / "lib" / "utils_r5.py").read_text()
    verified(copied_away(out, tmp_path_factory))


def test_a_package_two_folders_up(tracked, tmp_path, monkeypatch, tmp_path_factory):
    pkg = tmp_path / "homemade_r2"
    (pkg / "linear_regression").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .linear_regression import LinearRegression\n")
    (pkg / "linear_regression" / "__init__.py").write_text(
        "from .model import LinearRegression\n")
    (pkg / "linear_regression" / "model.py").write_text(
        "from ..utils import mean\n\n"
        "class LinearRegression:\n"
        "    def fit(self, xs, ys):\n"
        "        mx, my = mean(xs), mean(ys)\n"
        "        num = sum((x - mx) * (y - my) for x, y in zip(xs, ys))\n"
        "        self.slope = num / sum((x - mx) ** 2 for x in xs)\n"
        "        return self\n")
    (pkg / "utils.py").write_text("def mean(v):\n    return sum(v) / len(v)\n")
    nb = tmp_path / "notebooks" / "chapter1"
    nb.mkdir(parents=True)
    monkeypatch.chdir(nb)
    tracked.run("import sys\nsys.path.append('../..')")
    tracked.run("from homemade_r2.linear_regression import LinearRegression")
    tracked.run("model = LinearRegression().fit([1, 2, 3], [2, 4, 6])\nslope = model.slope")
    tracked.run("score = slope")
    run = the_run(tracked)
    out = export_run(run.id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    paths = {m["path"] for m in manifest["modules"]}
    assert paths == {"lib/homemade_r2/__init__.py", "lib/homemade_r2/utils.py",
                     "lib/homemade_r2/linear_regression/__init__.py",
                     "lib/homemade_r2/linear_regression/model.py"}
    assert {m["sys_path_entry"] for m in manifest["modules"]} == {"../.."}
    shutil.rmtree(pkg)
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 2.0}


def test_a_helper_beside_the_notebook_and_a_changed_copy_is_caught(tracked, tmp_path,
                                                                   tmp_path_factory):
    Path("utils_r3.py").write_text("def prep(x):\n    return x + 0.5\n")
    sys.path.insert(0, "")  # what a Jupyter kernel has: the notebook's folder first
    tracked.run("from utils_r3 import prep")
    tracked.run("score = prep(1)")
    out = export_run(the_run(tracked).id, tmp_path / "exp")
    Path("utils_r3.py").write_text("def prep(x):\n    return x + 100\n")  # edited later
    away = copied_away(out, tmp_path_factory)
    verified(away)  # the copy is the code that ran, not today's file
    (away / "lib" / "utils_r3.py").write_text("def prep(x):\n    return x + 0.5  # edited\n")
    verdict = reproduce(away)
    assert not verdict.ok and verdict.level is None
    assert any("utils_r3" in p and "differs" in p for p in verdict.problems)


# -- data files reached through computed paths --------------------------------------------------
def test_data_dir_plus_name_fstrings_join_pathlib_and_variables(tracked, tmp_path, monkeypatch,
                                                                tmp_path_factory):
    data = tmp_path / "data" / "housing-kaggle"
    data.mkdir(parents=True)
    (data / "train.csv").write_text("price\n100\n200\n")
    (data / "extra.txt").write_text("7")
    (data / "more.json").write_text('{"k": 3}')
    (data / "c.txt").write_text("0.5\n0.5\n")
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import json, os, pathlib\nimport numpy as np\nimport pandas as pd\n"
                "DATA_DIR = '../data/'\nsub = 'housing-kaggle'")
    tracked.run("df = pd.read_csv(DATA_DIR + 'housing-kaggle/train.csv')")
    tracked.run("extra = float(open(f'{DATA_DIR}{sub}/extra.txt').read())\n"
                "more = json.loads((pathlib.Path(DATA_DIR) / sub / 'more.json').read_text())\n"
                "path = os.path.join(os.path.abspath('..'), 'data', sub, 'train.csv')\n"
                "again = pd.read_csv(path)\n"
                "c = np.loadtxt(os.path.join(DATA_DIR, sub, 'c.txt'))")
    tracked.run("score = float(df['price'].sum()) + extra + more['k'] + len(again) + "
                "float(c.sum())")
    run = the_run(tracked)
    assert run.metrics == {"score": 313.0}
    out = export_run(run.id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    files = {Path(d["recorded"]).name: d for d in manifest["data_files"]}
    assert set(files) == {"train.csv", "extra.txt", "more.json", "c.txt"}
    assert files["train.csv"]["recorded"] == str(data / "train.csv")
    assert files["train.csv"]["default"] == "../data/housing-kaggle/train.csv"
    flags = [d["flag"] for d in manifest["data_files"]]
    assert len(set(flags)) == 4
    # DATA_DIR stays a parameter; its option cannot be taken for a data file
    assert manifest["parameter_flags"]["DATA_DIR"] == "--param-data-dir"
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 313.0}
    # a data option points the same computed read at another file
    other = tmp_path_factory.mktemp("other") / "train.csv"
    other.write_text("price\n1\n")
    got = run_fresh(away, tmp_path_factory, files["train.csv"]["flag"], str(other))
    assert got == {"score": 1 + 7 + 3 + 1 + 1.0}
    help_text = subprocess.run([sys.executable, str(away / "train.py"), "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "--param-data-dir" in help_text and files["extra.txt"]["flag"] in help_text


def test_a_file_the_slice_writes_through_a_computed_path_is_not_data(tracked, tmp_path,
                                                                     tmp_path_factory):
    tracked.run("import pandas as pd\nOUT = 'work'\nimport os\nos.makedirs(OUT, exist_ok=True)")
    tracked.run("pd.DataFrame({'v': [1, 2]}).to_csv(os.path.join(OUT, 'mid.csv'), index=False)")
    tracked.run("score = float(pd.read_csv(OUT + '/mid.csv')['v'].sum())")
    out = export_run(the_run(tracked).id, tmp_path / "exp")
    assert json.loads((out / "run.json").read_text())["data_files"] == []
    away = copied_away(out, tmp_path_factory)
    verified(away)


# -- %%capture output parsed by later cells -----------------------------------------------------
def test_captured_output_parsed_by_a_later_cell(tracked, tmp_path, tmp_path_factory):
    tracked.run("%%capture out\nprint('accuracy: 0.875')\nprint('done')")
    tracked.run("%%capture --no-stdout log\nimport sys\nprint('warn', file=sys.stderr)")
    tracked.run("score = float(out.stdout.splitlines()[0].split(':')[1]) + len(log.stderr)")
    run = the_run(tracked)
    assert run.metrics == {"score": 5.875}
    out = export_run(run.id, tmp_path / "exp")
    src = (out / "train.py").read_text()
    assert "with _mnb.capture(stdout=True, stderr=True) as out:" in src
    verified(copied_away(out, tmp_path_factory))


# -- where an export may be written (issue 8, item 15) --------------------------------------------
def test_export_never_overwrites_a_projects_own_files(tracked, tmp_path, capsys):
    tracked.run("score = 1.0")
    run = the_run(tracked)
    Path("train.py").write_text("# the project's own training script\n")
    Path("requirements.txt").write_text("numpy\n")
    with pytest.raises(ExportExists, match="did not write"):
        export_run(run.id, ".", force=True)
    home = str(tracked.tracker.home)
    assert main(["--home", home, "export", run.id, "-o", ".", "--force"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("mlops-nb: export refused:") and "did not write" in err
    assert Path("train.py").read_text() == "# the project's own training script\n"
    assert Path("requirements.txt").read_text() == "numpy\n"
    assert not Path("run.json").exists()


def test_a_broken_export_folder_is_refused_before_anything_is_written(tracked, tmp_path):
    tracked.run("score = 2.0")
    run = the_run(tracked)
    out = export_run(run.id, "exp")
    before = (out / "train.py").read_text()
    (out / "run.json").unlink()
    (out / "run.json").mkdir()
    with pytest.raises(ExportExists):
        export_run(run.id, "exp", force=True)
    assert (out / "train.py").read_text() == before and (out / "run.json").is_dir()
    shutil.rmtree(out / "run.json")
    (out / "run.json").write_text(json.dumps({"format": 1, "run_id": run.id}))
    (out / "lib").mkdir()
    (out / "lib" / "stale.py").write_text("")
    (out / "metrics.json").write_text("{}")  # what running train.py in place leaves
    export_run(run.id, "exp", force=True)
    assert json.loads((out / "run.json").read_text())["run_id"] == run.id
    assert not (out / "lib").exists() and (out / "metrics.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mlops-nb-export-")]


# -- a metric that depends on the hash seed says so ---------------------------------------------
def test_a_hash_seed_dependent_metric_gets_a_verdict_that_says_so(tracked, tmp_path):
    tracked.run("score = float(hash('mlops-nb') % 99991)")
    out = export_run(the_run(tracked).id, tmp_path / "exp")
    verdict = reproduce(out)
    assert not verdict.ok and verdict.level == "L1"
    assert verdict.hash_seed_dependent == ["score"]
    assert "PYTHONHASHSEED" in verdict.summary() and "hash seed" in verdict.summary()
    stable = reproduce(out, stable=True)
    assert not stable.ok and stable.hash_seed_dependent == ["score"]


# -- the course-repository shape, in a real kernel ------------------------------------------------
@pytest.mark.slow
def test_a_course_notebook_in_a_real_kernel_exports_and_reproduces_elsewhere(
        tmp_path, tmp_path_factory, monkeypatch, capsys):
    project = tmp_path / "course"
    for folder in ("code", "data/housing", "lectures"):
        (project / folder).mkdir(parents=True)
    (project / "code" / "plotting_functions.py").write_text(
        "import numpy as np\n\ndef rmse(values):\n"
        "    v = np.asarray(values, dtype=float)\n"
        "    return float(np.sqrt(((v - v.mean()) ** 2).mean()))\n")
    (project / "lectures" / "utils.py").write_text("def prep(x):\n    return round(x, 6)\n")
    (project / "data" / "housing" / "train.csv").write_text("price\n100\n140\n90\n170\n")
    cells = [
        "%load_ext mlops_nb\n%track on",
        "import sys, os\nsys.path.append(os.path.join(os.path.abspath('..'), 'code'))\n"
        "from plotting_functions import *\nfrom utils import prep",
        "import pandas as pd\nDATA_DIR = '../data/'\n"
        "df = pd.read_csv(DATA_DIR + 'housing/train.csv')",
        "%%capture out\nprint(f\"rmse: {rmse(df['price'])}\")",
        "score = prep(float(out.stdout.split(':')[1]))",
        "import mlops_nb as mnb\nassert mnb.flush()",
    ]
    out, manifest = exported_from_a_kernel(project, project / "lectures" / "lecture1.ipynb",
                                           cells, "score", monkeypatch)
    assert {m["name"] for m in manifest["modules"]} == {"plotting_functions", "utils"}
    assert [Path(d["recorded"]).name for d in manifest["data_files"]] == ["train.csv"]
    assert manifest["parameter_flags"] == {"DATA_DIR": "--param-data-dir"}
    shutil.move(project / "code", tmp_path / "code-gone")
    (project / "lectures" / "utils.py").unlink()
    away = copied_away(out, tmp_path_factory)
    capsys.readouterr()
    assert main(["reproduce", str(away)]) == 0, capsys.readouterr()
    assert "reproduced: level L2" in capsys.readouterr().out


def test_watcher_unit_hash_budget_cap_and_hostile_paths(tmp_path, monkeypatch):
    from mlops_nb.capture import io_watch

    monkeypatch.chdir(tmp_path)
    for name, size in (("a.bin", 10), ("b.bin", 10), ("c.bin", 10)):
        Path(name).write_bytes(b"x" * size)

    class Hostile:
        def __fspath__(self):
            raise ValueError("boom")

    watcher = io_watch.IoWatcher()
    monkeypatch.setattr(io_watch, "MAX_HASH_BYTES_PER_CELL", 15)
    watcher.start()
    try:
        watcher.begin_cell()
        for name in ("a.bin", "b.bin", "a.bin"):
            with open(name, "rb") as fh:
                fh.read()
        with pytest.raises(ValueError, match="boom"):  # the same error as untracked
            open(Hostile())  # noqa: SIM115 (it raises before opening anything)
        with open("out.txt", "w") as fh:
            fh.write("1")
        reads, writes, overflow = watcher.end_cell()
        assert [Path(r["path"]).name for r in reads] == ["a.bin", "b.bin"]
        assert reads[0]["hash"] and reads[1]["hash"] is None  # past the budget: named only
        assert writes == [str(tmp_path / "out.txt")] and overflow == 0
        monkeypatch.setattr(io_watch, "MAX_FILES_PER_CELL", 1)
        watcher.begin_cell()
        for name in ("a.bin", "b.bin", "c.bin"):
            Path(name).read_bytes()
        reads, _writes, overflow = watcher.end_cell()
        assert len(reads) == 1 and overflow >= 2
    finally:
        watcher.stop()
    assert builtins.open is io.open and not watcher.installed


def test_watcher_wraps_a_library_imported_later_even_when_caught_half_imported(monkeypatch):
    """`refresh` runs before every cell and skips its work while no module was imported; a
    library seen mid-import (its module registered, its readers not yet defined) is looked at
    again, though the count of modules no longer changes."""
    import types

    from mlops_nb.capture import io_watch

    fake = types.ModuleType("joblib")
    monkeypatch.setitem(sys.modules, "joblib", fake)
    watcher = io_watch.IoWatcher()
    watcher.start()
    try:
        assert "load" not in vars(fake)  # half imported: nothing to wrap yet

        def load(path):
            return path

        fake.load = load  # the import finishes; no module is added
        watcher.begin_cell()
        assert fake.load is not load and fake.load("p") == "p"  # wrapped now
        wrapped = fake.load
        watcher.begin_cell()
        assert fake.load is wrapped  # not wrapped twice
    finally:
        watcher.stop()
    assert fake.load is load


def test_watcher_wraps_a_library_the_moment_a_cell_imports_it(monkeypatch, tmp_path):
    """`import pandas as pd` then `pd.read_parquet(path)` in one cell: the readers were
    wrapped before the next cell only, and pyarrow opens the file in C, not through `open`:
    the read went unrecorded and the export could not find the file elsewhere."""
    from mlops_nb.capture import io_watch

    (tmp_path / "mnb_fake_reader.py").write_text("def load(path):\n    return path\n")
    (tmp_path / "x.bin").write_bytes(b"data")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(io_watch._LIBRARY_READERS, "mnb_fake_reader", ("load",))
    monkeypatch.setattr(io_watch, "_WATCHED_IMPORTS",
                        io_watch._WATCHED_IMPORTS | {"mnb_fake_reader"})
    monkeypatch.delitem(sys.modules, "mnb_fake_reader", raising=False)
    watcher = io_watch.IoWatcher()
    watcher.start()
    finder = watcher._finder
    assert finder in sys.meta_path
    watcher.begin_cell()
    try:
        import mnb_fake_reader  # the cell's import: no begin_cell between it and the read

        assert getattr(mnb_fake_reader.load, "__mnb_io_watcher__", None) is watcher
        mnb_fake_reader.load(str(tmp_path / "x.bin"))
        reads, _, _ = watcher.end_cell()
        assert [Path(r["path"]).name for r in reads] == ["x.bin"]
    finally:
        watcher.stop()
        sys.modules.pop("mnb_fake_reader", None)
    assert finder not in sys.meta_path  # `%track off` leaves the import system as it was


@pytest.mark.slow
def test_a_parquet_file_read_in_the_cell_that_imports_pandas_exports_elsewhere(
        tmp_path, tmp_path_factory, monkeypatch, capsys):
    import pandas as pd

    project = tmp_path / "forecast"
    (project / "data").mkdir(parents=True)
    pd.DataFrame({"load": [3.0, 5.0, 4.0, 8.0]}).to_parquet(project / "data" / "load.parquet")
    cells = [
        "%load_ext mlops_nb\n%track on",
        "import pandas as pd\nfrom pathlib import Path\n"
        "def read(name):\n    return pd.read_parquet(Path('data') / f'{name}.parquet')\n"
        "raw = read('load')",
        "mae = float((raw['load'] - raw['load'].mean()).abs().mean())",
        "import mlops_nb as mnb\nassert mnb.flush()",
    ]
    out, manifest = exported_from_a_kernel(project, project / "forecast.ipynb", cells, "mae",
                                           monkeypatch)
    assert [Path(d["recorded"]).name for d in manifest["data_files"]] == ["load.parquet"]
    away = copied_away(out, tmp_path_factory)
    capsys.readouterr()
    assert main(["reproduce", str(away)]) == 0, capsys.readouterr()
    assert "reproduced: level L2" in capsys.readouterr().out


def test_modules_imported_before_load_ext_are_exported(shell, tmp_path, monkeypatch,
                                                       tmp_path_factory):
    """mlops-nb added to a notebook below its imports cell: the notebook's own package and
    what it imports were loaded before the extension, and are still the run's code."""
    src = tmp_path / "src"
    (src / "mypkg_r3").mkdir(parents=True)
    (src / "mypkg_r3" / "__init__.py").write_text("")
    (src / "mypkg_r3" / "features.py").write_text(
        "from util_r3 import double\n\ndef prep(values):\n    return [double(v) for v in values]\n")
    (src / "util_r3.py").write_text("def double(x):\n    return 2 * x\n")
    (src / "bystander_r3.py").write_text("X = 1\n")
    _notebook_folder(tmp_path, monkeypatch)
    monkeypatch.syspath_prepend(str(src))
    __import__("bystander_r3")  # loaded before `%load_ext` too, but no cell imports it
    shell.run("import os, sys\nsys.path.insert(0, os.path.abspath('../src'))\n"
              "from mypkg_r3.features import prep")
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment test")
    shell.run("score = float(sum(prep([1, 2, 3])))")
    run = the_run(shell)
    log = StoreReader(shell.tracker.home).session_log(shell.tracker.session)
    recorded = {m["name"] for cr in log for m in cr.modules}
    assert recorded == {"mypkg_r3", "mypkg_r3.features", "util_r3"}
    out = export_run(run.id, tmp_path / "notebooks" / "exp")  # the store is beside it
    manifest = json.loads((out / "run.json").read_text())
    assert {m["path"] for m in manifest["modules"]} == {
        "lib/mypkg_r3/__init__.py", "lib/mypkg_r3/features.py", "lib/util_r3.py"}
    shutil.move(src, tmp_path / "src-moved-away")
    for name in ("mypkg_r3", "mypkg_r3.features", "util_r3"):
        sys.modules.pop(name, None)
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 12.0}
    # imported again in a tracked cell: recorded there, once, the source as it is now
    (tmp_path / "src-moved-away" / "util_r3.py").write_text("def double(x):\n    return 3 * x\n")
    shell.run("sys.path.insert(0, os.path.abspath('../src-moved-away'))\n"
              "import util_r3\nagain = util_r3.double(1)")
    assert shell.ns["again"] == 3


def test_a_package_reading_its_settings_and_a_table_at_import_through_file(
        tracked, tmp_path, monkeypatch, tmp_path_factory):
    """`ROOT = Path(__file__).parent.parent` then `open(ROOT / "settings.json")` as the module
    loads: in the script `__file__` is in `lib/`, so the import runs in its cell, after
    `_mnb.start()` redirects the data paths, not hoisted above it."""
    pkg = tmp_path / "churnlib_r8"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "config.py").write_text(
        "import json\nfrom pathlib import Path\n\n"
        "ROOT = Path(__file__).resolve().parent.parent\n"
        "with open(ROOT / 'settings.json') as fh:\n    SETTINGS = json.load(fh)\n"
        "DATA_DIR = ROOT / SETTINGS['data_dir']\n")
    (pkg / "lookups.py").write_text(
        "import pandas as pd\nfrom .config import DATA_DIR\n\n"
        "RISK = pd.read_csv(DATA_DIR / 'regions.csv').set_index('region')['risk']\n")
    (tmp_path / "settings.json").write_text('{"data_dir": "data", "scale": 3}')
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "regions.csv").write_text("region,risk\nnorth,0.25\nsouth,0.5\n")
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import os, sys\nsys.path.append(os.path.abspath('..'))\n"
                "from churnlib_r8.config import SETTINGS\nfrom churnlib_r8.lookups import RISK")
    tracked.run("score = float(RISK.sum() * SETTINGS['scale'])")
    out = export_run(the_run(tracked).id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    assert sorted(Path(d["recorded"]).name for d in manifest["data_files"]) == [
        "regions.csv", "settings.json"]
    script = (out / "train.py").read_text()
    assert script.index("_mnb.start()") < script.index("from churnlib_r8.config import")
    shutil.move(pkg, tmp_path / "churnlib-moved-away")
    verified(out)
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 2.25}


def test_a_module_only_unpickling_loads_is_exported(tracked, tmp_path, monkeypatch,
                                                    tmp_path_factory):
    """A model saved by another notebook, of a class in `src/feature_tools_r9.py`: no cell
    imports the module by name, `pickle.load` does, and the script must find it too."""
    import importlib
    import pickle

    src = tmp_path / "src"
    src.mkdir()
    (src / "feature_tools_r9.py").write_text(
        "class AddOffset:\n    def __init__(self, offset):\n        self.offset = offset\n\n"
        "    def transform(self, x):\n        return x + self.offset\n")
    sys.path.insert(0, str(src))
    try:
        model = importlib.import_module("feature_tools_r9").AddOffset(1.5)
        (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    finally:
        sys.path.remove(str(src))
        del sys.modules["feature_tools_r9"]
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import os, sys, pickle\nsys.path.insert(0, os.path.abspath('../src'))")
    tracked.run("with open('../model.pkl', 'rb') as fh:\n    model = pickle.load(fh)")
    tracked.run("score = model.transform(2.0)")
    out = export_run(the_run(tracked).id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    assert [m["path"] for m in manifest["modules"]] == ["lib/feature_tools_r9.py"]
    shutil.move(src, tmp_path / "src-moved-away")
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 3.5}


def test_a_metric_computed_inside_a_helper_module_is_reproduced(tracked, tmp_path, monkeypatch,
                                                                tmp_path_factory):
    """`evaluate(clf, X, y)` calls `accuracy_score` in the project's `metrics_utils_r10.py`:
    autolog named it in the kernel; the script imports the helper before its autolog starts,
    so the helper's names get the wrappers too."""
    (tmp_path / "metrics_utils_r10.py").write_text(
        "from sklearn.metrics import accuracy_score\n\n\n"
        "def evaluate(model, X, y):\n    return accuracy_score(y, model.predict(X))\n")
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import os, sys\nsys.path.append(os.path.abspath('..'))\n"
                "from sklearn.datasets import make_classification\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "from metrics_utils_r10 import evaluate\n"
                "X, y = make_classification(n_samples=120, random_state=0)")
    tracked.run("clf = LogisticRegression().fit(X, y)\nprint(evaluate(clf, X, y))")
    run = the_run(tracked)
    assert set(run.metrics) == {"accuracy_score"}
    out = export_run(run.id, tmp_path / "exp")
    verified(out)
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"accuracy_score": run.metrics["accuracy_score"]}


@pytest.mark.parametrize("before", ["%load_ext", "%track on"])
def test_a_helper_imported_before_tracking_has_its_metric_recorded(shell, tmp_path, monkeypatch,
                                                                   tmp_path_factory, before):
    """The helper bound the original `accuracy_score` before anything was patched: `%track on`
    swaps the wrapper into the notebook's own modules as into its namespace (a library's
    are left alone), and `%track off` puts the original back."""
    import sklearn.metrics

    (tmp_path / "metrics_utils_r11.py").write_text(
        "from sklearn.metrics import accuracy_score\n\n\n"
        "def evaluate(model, X, y):\n    return accuracy_score(y, model.predict(X))\n")
    _notebook_folder(tmp_path, monkeypatch)
    imports = ("import os, sys\nsys.path.append(os.path.abspath('..'))\n"
               "from sklearn.datasets import make_classification\n"
               "from sklearn.linear_model import LogisticRegression\n"
               "import metrics_utils_r11\nfrom metrics_utils_r11 import evaluate\n"
               "X, y = make_classification(n_samples=120, random_state=0)")
    if before == "%load_ext":
        shell.run(imports)
        shell.run("%load_ext mlops_nb")
    else:
        shell.run("%load_ext mlops_nb")
        shell.run(imports)
    shell.run("%track on --experiment test")
    helper = shell.ns["metrics_utils_r11"]
    original = sklearn.metrics.accuracy_score.original
    assert helper.accuracy_score is sklearn.metrics.accuracy_score  # the wrapper
    assert sys.modules["sklearn.metrics._scorer"].accuracy_score is original  # a library's
    shell.run("clf = LogisticRegression().fit(X, y)\nprint(evaluate(clf, X, y))")
    run = the_run(shell)
    assert set(run.metrics) == {"accuracy_score"}
    shell.run("%track off")
    assert helper.accuracy_score is sklearn.metrics.accuracy_score  # the original, restored
    out = export_run(run.id, tmp_path / "notebooks" / "exp")  # the store is beside it
    away = copied_away(out, tmp_path_factory)
    verified(away)


def test_data_listed_by_glob_listdir_and_pathlib_after_a_chdir(tracked, tmp_path, monkeypatch,
                                                               tmp_path_factory):
    """A notebook that moves to its project's root and lists its data folder: the export runs
    from anywhere, where those listings find nothing, and still reads the same files."""
    parts = tmp_path / "data" / "parts"
    parts.mkdir(parents=True)
    for k in range(3):
        (parts / f"part_{k}.csv").write_text(f"v\n{k + 1}\n{10 * (k + 1)}\n")
    (parts / "notes.txt").write_text("not read")
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import glob, os, pathlib\nimport pandas as pd\nos.chdir('..')")
    tracked.run("files = sorted(glob.glob('data/parts/part_*.csv'))\n"
                "by_glob = pd.concat([pd.read_csv(f) for f in files])\n"
                "names = sorted(n for n in os.listdir('data/parts') if n.endswith('.csv'))\n"
                "by_listdir = [pd.read_csv(os.path.join('data/parts', n)) for n in names]\n"
                "by_path = [pd.read_csv(p) for p in sorted(pathlib.Path('data').rglob('*.csv'))]")
    tracked.run("score = float(by_glob['v'].sum()) + len(by_listdir) * 100 + "
                "1000 * sum(len(d) for d in by_path)")
    run = the_run(tracked)
    assert run.metrics == {"score": 66.0 + 300 + 6000}
    out = export_run(run.id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    assert {Path(d["recorded"]).name for d in manifest["data_files"]} == {
        "part_0.csv", "part_1.csv", "part_2.csv"}
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 6366.0}
    # a listing that finds files here is left alone: another folder of parts is read as is
    other = tmp_path_factory.mktemp("other")
    (other / "data" / "parts").mkdir(parents=True)
    (other / "data" / "parts" / "part_9.csv").write_text("v\n5\n")
    proc = subprocess.run([sys.executable, str(away / "train.py")], cwd=other / "data",
                          capture_output=True, text=True, timeout=300, check=False,
                          env={k: v for k, v in os.environ.items() if k != "MLOPS_NB_HOME"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"score": 5.0 + 100 + 1000}


def test_run_magic_scripts_define_what_later_cells_use(shell, tmp_path, monkeypatch,
                                                       tmp_path_factory):
    """`%run helpers.py` (before `%track on`, back-filled) and `%run -i` (tracked, reading
    the notebook's names): their functions are the run's code, not hidden state, and the
    export runs them as IPython did."""
    nb = _notebook_folder(tmp_path, monkeypatch)
    (nb / "sib_r4.py").write_text("K = 100\n")
    (nb / "helpers_r4.py").write_text(
        "import sys\nfrom sib_r4 import K\nOFFSET = K\nARGS = sys.argv[1:]\n\n"
        "def fill(values):\n    return [v if v is not None else 0 for v in values]\n\n"
        "if __name__ == '__main__':\n    MAIN = True\n")
    (nb / "scale_r4.py").write_text("scaled = [v * factor for v in base]\nbase.append(0)\n")
    shell.run("%run helpers_r4.py --fast 3")
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment test")
    shell.run("factor = 2\nbase = fill([1, None, 3])")
    shell.run("%run -i scale_r4.py")
    shell.run("score = float(sum(scaled)) + OFFSET + len(ARGS) * 1000 + MAIN * 10000")
    run = the_run(shell)
    assert run.metrics == {"score": 8.0 + 100 + 2000 + 10000}
    log = StoreReader(shell.tracker.home).session_log(shell.tracker.session)
    by_count = {cr.execution_count: cr for cr in log}
    assert {"fill", "OFFSET", "ARGS", "MAIN", "sys"} <= set(by_count[1].defs)
    assert set(by_count[5].defs) == {"scaled"} and {"factor", "base"} <= set(by_count[5].uses)
    assert by_count[5].mutations == ["base"]  # `-i`: the script changed the notebook's list
    out = export_run(run.id, nb / "exp")
    # the script's own import, loaded before `%load_ext`: in lib/ like the cell's imports
    assert (out / "lib" / "sib_r4.py").read_text() == "K = 100\n"
    train = (out / "train.py").read_text()
    assert "_mnb.run_script('helpers_r4.py', ['--fast', '3'], interactive=False)" \
        in train
    assert "_mnb.run_script('scale_r4.py', [], interactive=True)" in train
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 12108.0}
    # the scripts are checked like data: an edited one is reported, and is what runs
    (nb / "scale_r4.py").write_text("scaled = [v * factor * 10 for v in base]\nbase.append(0)\n")
    verdict = reproduce(away)
    assert not verdict.ok and "scale_r4.py" in json.dumps(verdict.to_dict())


def test_run_magic_lines_a_script_cannot_replay_are_refused_by_name():
    from mlops_nb.exporting.translate import translate
    from mlops_nb.run_line import RunLine, parse_run_line

    assert parse_run_line("-i a.py x 'y z'") == RunLine("a.py", ["x", "y z"], True)
    assert parse_run_line("-e  b.py") == RunLine("b.py", [], False)
    for line in ("-m pkg.mod", "-t a.py", "-d a.py", "-p a.py", "$script", "{name}.py",
                 "other.ipynb", "", "-i"):
        with pytest.raises(ValueError):
            parse_run_line(line)
    got = translate("get_ipython().run_line_magic('run', '-m pkg.mod')\n",
                    "%run -m pkg.mod")
    assert got.refused == ["%run -m pkg.mod: cannot translate (%run option -m)"]


def test_a_zip_archive_its_member_and_a_walked_folder(tracked, tmp_path, monkeypatch,
                                                      tmp_path_factory):
    """`zipfile.ZipFile` opens the archive through `io.open`, which wrapping `open` missed:
    the archive was no data file, and its member's name, `z.open("inner.csv")`, was taken
    for one and rewritten into a path. `os.walk` over a folder that is not where the script
    runs walks the run's data files."""
    import zipfile

    data = tmp_path / "data"
    (data / "walk" / "sub").mkdir(parents=True)
    with zipfile.ZipFile(data / "arch.zip", "w") as z:
        z.writestr("inner.csv", "v\n10\n20\n")
    (data / "walk" / "sub" / "w.csv").write_text("v\n1000\n")
    (data / "walk" / "top.csv").write_text("v\n300\n")
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import os, zipfile\nimport pandas as pd\nDATA = '../data'")
    tracked.run("with zipfile.ZipFile(os.path.join(DATA, 'arch.zip')) as z:\n"
                "    zdf = pd.read_csv(z.open('inner.csv'))")
    tracked.run("found = []\n"
                "for root, dirs, files in os.walk(os.path.join(DATA, 'walk')):\n"
                "    found += [os.path.join(root, f) for f in files if f.endswith('.csv')]\n"
                "wdf = pd.concat([pd.read_csv(f) for f in sorted(found)])")
    tracked.run("score = float(zdf.v.sum() + wdf.v.sum()) + len(found) * 0.5")
    run = the_run(tracked)
    assert run.metrics == {"score": 1331.0}
    out = export_run(run.id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    assert {Path(d["recorded"]).name for d in manifest["data_files"]} == {
        "arch.zip", "w.csv", "top.csv"}
    assert "z.open('inner.csv')" in (out / "train.py").read_text()
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 1331.0}


def _database(path: Path, values: list[float]) -> None:
    """A SQLite file with one table `t (v real)` holding `values`."""
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("create table t (v real)")
    con.executemany("insert into t values (?)", [(v,) for v in values])
    con.commit()
    con.close()


def test_a_sqlite_database_is_data_found_elsewhere_and_opened_read_only(
        tracked, tmp_path, monkeypatch, tmp_path_factory):
    """`sqlite3.connect(DB)` opens the file in C, not through `open`: the database was no
    data file, and the replay's `connect` made an empty one where it ran ("no such table").
    A URI (`file:...?mode=ro`) names the same file; an in-memory database is none."""
    import sqlite3

    data = tmp_path / "data"
    data.mkdir()
    _database(data / "houses.db", [1.5, 2.5, 4.0])
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import sqlite3, os\nimport pandas as pd\nDB = os.path.join('..', 'data', "
                "'houses.db')")
    tracked.run("con = sqlite3.connect(DB)\ndf = pd.read_sql_query('select v from t', con)\n"
                "con.close()\n"
                "uri = sqlite3.connect('file:' + DB + '?mode=ro', uri=True)\n"
                "n = uri.execute('select count(*) from t').fetchone()[0]\nuri.close()\n"
                "mem = sqlite3.connect(':memory:')\nmem.close()")
    tracked.run("score = float(df.v.sum()) + n")
    run = the_run(tracked)
    assert run.metrics == {"score": 11.0}
    lineage = StoreReader(tracked.tracker.home).session_log(tracked.tracker.session)
    reads = [r for cr in lineage for r in cr.reads]
    assert {Path(r["path"]).name for r in reads} == {"houses.db"}
    assert {r["via"] for r in reads} == {"sqlite3.connect"}
    out = export_run(run.id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    assert [Path(d["recorded"]).name for d in manifest["data_files"]] == ["houses.db"]
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 11.0}
    # the replay cannot change the run's data: the database it reads is opened read-only
    script = (out / "train.py").read_text().replace(
        "con.close()", "con.execute('insert into t values (100.0)')\ncon.commit()\ncon.close()",
        1)
    (away / "train.py").write_text(script)
    empty = tmp_path_factory.mktemp("empty")
    proc = subprocess.run([sys.executable, str(away / "train.py")], cwd=empty,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0 and "readonly database" in proc.stderr
    assert not list(empty.iterdir())  # no empty database made where it ran
    check = sqlite3.connect(data / "houses.db")
    assert check.execute("select count(*) from t").fetchone()[0] == 3
    check.close()


def test_a_sqlite_database_read_through_sqlalchemy(tracked, tmp_path, monkeypatch,
                                                   tmp_path_factory):
    """`create_engine("sqlite:///houses.db")`: SQLAlchemy's driver connects through
    `sqlite3.dbapi2`, with the path made absolute, and the notebook never imports sqlite3;
    the export redirected nothing and read an empty database made where it ran."""
    pytest.importorskip("sqlalchemy")  # installed with mlflow, a test dependency
    _database(_notebook_folder(tmp_path, monkeypatch) / "houses.db", [2.0, 5.0])
    tracked.run("import pandas as pd\nfrom sqlalchemy import create_engine\n"
                "engine = create_engine('sqlite:///houses.db')\n"
                "df = pd.read_sql('select v from t', engine)")
    tracked.run("score = float(df.v.sum())")
    run = the_run(tracked)
    assert run.metrics == {"score": 7.0}
    out = export_run(run.id, tmp_path / "exp")
    assert "sqlite3" in json.loads((out / "run.json").read_text())["script"]["readers"]
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 7.0}


def _imported_from_src(sh, tmp_path: Path, monkeypatch, name: str, source: str) -> Path:
    """A helper module `../src/<name>.py`, imported by the notebook through `sys.path`: its
    file."""
    src = tmp_path / "src"
    src.mkdir()
    helper = src / f"{name}.py"
    helper.write_text(source)
    _notebook_folder(tmp_path, monkeypatch)
    sh.run(f"import sys, os\nsys.path.insert(0, os.path.abspath('../src'))\nimport {name}")
    return helper


def test_a_helper_edited_on_disk_is_recorded_once_the_kernel_runs_it(tracked, tmp_path,
                                                                     monkeypatch,
                                                                     tmp_path_factory):
    """A helper saved after an edit but not reloaded is not what the kernel runs: the run
    after the edit still used the imported code, and its export shipped the edited file (no
    warning, a different metric). Once `importlib.reload` (what `%autoreload` calls) runs the
    new file, the next run's export ships that one."""
    helper = _imported_from_src(tracked, tmp_path, monkeypatch, "prep_r9",
                                "def scale(x):\n    return x * 2\n")
    src = helper.parent
    helper.write_text("def scale(x):\n    return x * 3  # edited, not reloaded\n")
    tracked.run("score = prep_r9.scale(10)")
    assert tracked.ns["score"] == 20
    before = the_run(tracked)
    out = export_run(before.id, tmp_path / "exp_before")
    assert (out / "lib" / "prep_r9.py").read_text() == "def scale(x):\n    return x * 2\n"
    assert run_fresh(copied_away(out, tmp_path_factory), tmp_path_factory) == {"score": 20}
    tracked.run("import importlib\nprep_r9 = importlib.reload(prep_r9)")
    tracked.run("score = prep_r9.scale(10)")
    assert tracked.ns["score"] == 30
    out = export_run(the_run(tracked).id, tmp_path / "exp_after")
    assert "edited, not reloaded" in (out / "lib" / "prep_r9.py").read_text()
    assert run_fresh(copied_away(out, tmp_path_factory), tmp_path_factory) == {"score": 30}
    # `%autoreload 2` may patch the changed code into the loaded functions instead of
    # reloading the module (a new `__spec__` then tells nothing): the kernel runs it all the same
    (src / "pkg_r9").mkdir()
    (src / "pkg_r9" / "__init__.py").write_text("")
    tracked.run("%%writefile ../src/pkg_r9/utils.py\nN = 25\ndef make(n):\n    return n * N\n")
    tracked.run("%load_ext autoreload\n%autoreload 2\nfrom pkg_r9.utils import make")
    tracked.run("score = make(2)")
    tracked.run("%%writefile ../src/pkg_r9/utils.py\nN = 60\ndef make(n):\n    return n * N\n")
    tracked.run("score = make(2)")
    assert tracked.ns["score"] == 120
    out = export_run(the_run(tracked).id, tmp_path / "exp_autoreload")
    assert "N = 60" in (out / "lib" / "pkg_r9" / "utils.py").read_text()
    assert run_fresh(copied_away(out, tmp_path_factory), tmp_path_factory) == {"score": 120}


def test_a_data_folder_set_with_env_is_a_setting_not_a_credential(tracked, tmp_path,
                                                                  monkeypatch, tmp_path_factory):
    """`%env DATA_ROOT=../data`, then a read of `os.environ['DATA_ROOT'] + name`: the value
    was withheld as if it were a credential, and the export refused to start without
    `DATA_ROOT` set. A path is a setting: the export sets it, and a copy elsewhere reads the
    recorded file through its `--data-*` option."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("a\n1\n2\n4\n")
    _notebook_folder(tmp_path, monkeypatch)
    monkeypatch.delenv("DATA_ROOT", raising=False)
    tracked.run("%env DATA_ROOT=../data")
    tracked.run("import os\nimport pandas as pd\n"
                "score = float(pd.read_csv(os.path.join(os.environ['DATA_ROOT'], 't.csv'))"
                "['a'].sum())")
    run = the_run(tracked)
    out = export_run(run.id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    assert not manifest.get("secret_env"), manifest.get("secret_env")
    assert "os.environ['DATA_ROOT'] = '../data'" in (out / "train.py").read_text()
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 7.0}


def test_a_cell_run_under_an_earlier_version_of_a_helper_is_named(tracked, tmp_path,
                                                                   monkeypatch):
    """Features built with a helper, the helper edited and reloaded (`%autoreload`), then
    only the model cell re-run: the run's features came from the first version, the script
    can import one, the latest. The export said nothing, and its verdict was a mismatch with
    no cause given; it names the cell and the module now."""
    helper = _imported_from_src(tracked, tmp_path, monkeypatch, "fe_r10",
                                "def make(n):\n    return [i * 2 for i in range(n)]\n")
    tracked.run("feats = fe_r10.make(4)")
    helper.write_text("def make(n):\n    return [i * 3 for i in range(n)]\n")
    tracked.run("import importlib\nfe_r10 = importlib.reload(fe_r10)")
    tracked.run("score = float(sum(feats))")
    out = export_run(the_run(tracked).id, tmp_path / "exp")
    warned = [w for w in json.loads((out / "run.json").read_text())["warnings"]
              if w["kind"] == "module_version"]
    assert [(w["module"], w["seq"]) for w in warned] == [("fe_r10", 1)], warned
    assert "ran under an earlier version" in warned[0]["message"]
    # the cells re-run after the reload: one version throughout, nothing to say
    tracked.run("feats = fe_r10.make(4)")
    tracked.run("score = float(sum(feats))")
    out = export_run(the_run(tracked).id, tmp_path / "exp2")
    assert not [w for w in json.loads((out / "run.json").read_text())["warnings"]
                if w["kind"] == "module_version"]


# -- files the lineage writes -------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_files_the_lineage_writes_into_project_folders_land_in_the_output(
        tracked, tmp_path, monkeypatch, tmp_path_factory):
    """A cleaning cell writes `data/interim/clean.csv` (a path built from
    `os.path.abspath('..')`), the next reads it back and writes arrays and a scaler, the
    last loads them. The replay ran where `data/interim` does not exist ("Cannot save file
    into a non-existent directory"), and from the notebook's folder it overwrote the
    project's own files. Each written file now goes under the output folder, its folders
    made, and is read back from there; the project is never written."""
    project = tmp_path / "proj"
    (project / "data" / "raw").mkdir(parents=True)
    (project / "data" / "interim").mkdir()
    (project / "models").mkdir()
    (project / "data" / "raw" / "events.csv").write_text("a,b\n1,\n2,5\n3,6\n4,\n")
    nb = project / "notebooks"
    nb.mkdir()
    monkeypatch.chdir(nb)
    tracked.run("import os\nimport numpy as np\nimport pandas as pd\nimport joblib")
    tracked.run("ROOT = os.path.abspath('..')\n"
                "RAW = os.path.join(ROOT, 'data', 'raw', 'events.csv')\n"
                "INTERIM = os.path.join(ROOT, 'data', 'interim')\n"
                "MODELS = os.path.join(ROOT, 'models')")
    tracked.run("fill = 0.5\nraw = pd.read_csv(RAW)\n"
                "raw.fillna(fill).to_csv(os.path.join(INTERIM, 'clean.csv'), index=False)")
    tracked.run("df = pd.read_csv(os.path.join(INTERIM, 'clean.csv'))\n"
                "joblib.dump({'scale': 2.0}, os.path.join(MODELS, 'scaler.joblib'))\n"
                "np.save(os.path.join(INTERIM, 'X.npy'), df.to_numpy())")
    tracked.run("X = np.load(os.path.join(INTERIM, 'X.npy'))\n"
                "scaler = joblib.load(os.path.join(MODELS, 'scaler.joblib'))\n"
                "score = float(X.sum()) * scaler['scale']")
    run = the_run(tracked)
    assert run.metrics == {"score": 2 * (10 + 12.0)}
    before = _snapshot(project / "data") | _snapshot(project / "models")
    out = export_run(run.id, project / "exports" / "run")
    manifest = json.loads((out / "run.json").read_text())
    assert [Path(d["recorded"]).name for d in manifest["data_files"]] == ["events.csv"]
    assert sorted(w["to"] for w in manifest["script"]["written"]) == [
        "data/interim/X.npy", "data/interim/clean.csv", "models/scaler.joblib"]
    verified(out)
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == run.metrics
    # from the export folder, and from the notebook's (where the paths are the project's)
    for cwd in (out, nb):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLOPS_NB_HOME")}
        target = tmp_path_factory.mktemp("output")
        proc = subprocess.run([sys.executable, str(out / "train.py"), "--output-dir",
                               str(target), "--fill", "1.5"], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        # another fill value: the file written and read back is this run's, not the project's
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"score": 2 * (10 + 14.0)}
        assert (target / "written" / "data" / "interim" / "clean.csv").is_file()
        assert (target / "written" / "models" / "scaler.joblib").is_file()
    assert _snapshot(project / "data") | _snapshot(project / "models") == before
    assert not (out / "data").exists() and not (project / "exports" / "data").exists()


def test_a_run_script_writing_beside_the_data_writes_into_the_output(
        tracked, tmp_path, monkeypatch, tmp_path_factory):
    """`%run ../scripts/prep.py ../data/raw.csv ../data/sample.csv`: the script's own pandas
    (the notebook never imports it) wrote into `../data`, which the replay does not have."""
    project = tmp_path / "proj"
    (project / "data").mkdir(parents=True)
    (project / "scripts").mkdir()
    (project / "data" / "raw.csv").write_text("v\n1\n2\n3\n")
    (project / "scripts" / "prep.py").write_text(
        "import sys\nimport pandas as pd\n"
        "pd.read_csv(sys.argv[1]).head(2).to_csv(sys.argv[2], index=False)\n")
    nb = project / "notebooks"
    nb.mkdir()
    monkeypatch.chdir(nb)
    tracked.run("%run ../scripts/prep.py ../data/raw.csv ../data/sample.csv")
    tracked.run("score = float(len(open('../data/sample.csv').read().split()))")
    run = the_run(tracked)
    assert run.metrics == {"score": 3.0}
    before = _snapshot(project / "data")
    out = export_run(run.id, project / "exports" / "run")
    verified(out)
    verified(copied_away(out, tmp_path_factory))
    assert _snapshot(project / "data") == before


def test_a_parquet_file_the_lineage_writes_and_reads_back_is_its_own(
        tracked, tmp_path, monkeypatch, tmp_path_factory):
    """`to_parquet` hands its path to pyarrow, never to `open`: the write went unrecorded, the
    read back became a data input (the project's file), and the replay wrote over it."""
    (tmp_path / "data").mkdir()
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("import pandas as pd\nMID = '../data/mid.parquet'")
    tracked.run("pd.DataFrame({'v': [1.0, 2.0]}).to_parquet(MID)")
    tracked.run("score = float(pd.read_parquet(MID)['v'].sum())")
    run = the_run(tracked)
    log = StoreReader(tracked.tracker.home).session_log(tracked.tracker.session)
    assert [cr.writes for cr in log if cr.writes] == [[str(tmp_path / "data" / "mid.parquet")]]
    out = export_run(run.id, tmp_path / "exp")
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["data_files"] == []
    assert [w["to"] for w in manifest["script"]["written"]] == ["mid.parquet"]
    before = _snapshot(tmp_path / "data")
    verified(copied_away(out, tmp_path_factory))
    assert _snapshot(tmp_path / "data") == before


# -- a folder read as one data set ----------------------------------------------------------------
def test_a_partitioned_parquet_folder_is_data_checked_and_found_elsewhere(
        tracked, tmp_path, monkeypatch, tmp_path_factory):
    """`pd.read_parquet(DATA_DIR / 'events')` of a partitioned dataset: pyarrow opens the
    files in C and the watcher saw a folder, no file, and recorded nothing; the replay failed
    with `FileNotFoundError: ../data/events`. The folder is one data input: hashed by its
    files, a `--data-*` option, checked on load."""
    import pandas as pd

    events = tmp_path / "data" / "events"
    pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0], "plan": ["a", "b", "a", "b"]}).to_parquet(
        events, partition_cols=["plan"], index=False)
    _notebook_folder(tmp_path, monkeypatch)
    tracked.run("from pathlib import Path\nimport pandas as pd\nDATA_DIR = Path('..') / 'data'")
    tracked.run("df = pd.read_parquet(DATA_DIR / 'events')\n"
                "score = float(df.sort_values('v')['v'].sum())")
    run = the_run(tracked)
    assert run.metrics == {"score": 10.0}
    [read] = run.reads
    assert read["folder"] is True and read["hash"] and read["files"] == 2
    out = export_run(run.id, tmp_path / "exp")
    [data] = json.loads((out / "run.json").read_text())["data_files"]
    assert data["folder"] is True and data["default"] == "../data/events"
    assert data["flag"] == "--data-events"
    away = copied_away(out, tmp_path_factory)
    verified(away)
    assert run_fresh(away, tmp_path_factory) == {"score": 10.0}
    # another folder through its option; a changed file in the run's folder is reported
    other = tmp_path_factory.mktemp("other") / "events"
    pd.DataFrame({"v": [5.0], "plan": ["a"]}).to_parquet(other, partition_cols=["plan"])
    assert run_fresh(away, tmp_path_factory, "--data-events", str(other)) == {"score": 5.0}
    part = next(events.rglob("*.parquet"))
    pd.DataFrame({"v": [100.0]}).to_parquet(part, index=False)
    verdict = reproduce(away)
    assert not verdict.ok
    assert [d["problem"] for d in verdict.data_mismatches] == ["changed"]
