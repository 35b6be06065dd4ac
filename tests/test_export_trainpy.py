"""A train.py an engineer would write: the notebook's own text, its parameters as they were,
support code out of sight, RNG restores only where random numbers are drawn. Each export is
reproduced in a fresh process, so none of this may cost exactness."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_nb.exporting import best_run_id, export_run
from mlops_nb.reproduction import reproduce
from mlops_nb.store.reader import StoreReader

ROOT = Path(__file__).resolve().parent.parent


def runs_of(sh):
    sh.flush()
    reader = StoreReader(sh.tracker.home)
    return [cr for cr in reader.session_log(sh.tracker.session) if cr.is_run]


def verified(run, name: str = "exp"):
    out = export_run(run.id, Path.cwd() / name)
    verdict = reproduce(out)
    assert verdict.ok, verdict.summary() + "\n" + verdict.stderr_tail
    return out, (out / "train.py").read_text()


def script(out: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(out / "train.py"), *args], cwd=cwd or out,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_notebooks_text_survives_and_parameters_hold_the_run_values(tracked):
    tracked.run("# the data\nimport numpy as np\nimport math\n\n"
                "rows = 50_001  # enough rows\n")
    tracked.run("max_depth = 2\nwidth = 3")
    tracked.run("max_depth = 8  # deeper is better")
    tracked.run("from sklearn.model_selection import cross_val_score\n"
                "from sklearn.tree import DecisionTreeRegressor\n"
                "X = np.arange(rows * 2, dtype=float).reshape(-1, 2)[:200]\n"
                "y = X[:, 0] % 7\n\n"
                "# a look at the spread, then nothing reads it\n"
                "cv = cross_val_score(DecisionTreeRegressor(random_state=0), X, y, cv=3)")
    tracked.run("tree = DecisionTreeRegressor(max_depth=max_depth, random_state=0)\n"
                "tree.fit(X, y)  # fitted once\n\n"
                "score = float(tree.score(X, y)) + width")
    run = runs_of(tracked)[-1]
    out, src = verified(run)
    assert "# the data" not in src  # the import-only part of that cell moved to the top
    assert "rows = 50_001  # enough rows" in src
    assert "max_depth = 8  # deeper is better" in src and "max_depth = 2" not in src
    assert "tree.fit(X, y)  # fitted once\n\nscore = " in src
    assert "cross_val_score" not in src  # the discarded cross-validation, and its import
    assert "import math" not in src  # imported, never used by the slice
    params = json.loads((out / "run.json").read_text())["parameters"]
    assert params["max_depth"] == 8 and params["rows"] == 50_001 and params["width"] == 3
    # no earlier cell drew random numbers; the session's last cell may (nothing after it says)
    assert "restore_rng" not in src[:src.rindex("# In [")]


def test_an_rng_restore_only_before_the_cell_that_draws(tracked):
    tracked.run("import numpy as np\nimport random\nbase = 3")
    tracked.run("offset = base * 2")
    tracked.run("noise = np.random.rand(3)")
    tracked.run("pick = random.random()")
    tracked.run("score = float(noise.sum()) + offset + pick")
    tracked.run("print('done')")  # after it: the run's cell is known not to draw
    (run,) = runs_of(tracked)
    _out, src = verified(run)
    lines = src.splitlines()
    restores = [i for i, line in enumerate(lines) if "restore_rng" in line]
    assert len(restores) == 2, src
    assert lines[restores[0]].startswith("_mnb.restore_rng('numpy', ")
    assert lines[restores[0] + 1] == "noise = np.random.rand(3)"
    assert lines[restores[1]].startswith("_mnb.restore_rng('random', ")
    assert lines[restores[1] + 1] == "pick = random.random()"


def test_help_shows_each_parameter_and_a_bad_value_names_it(tracked):
    tracked.run("lr = 0.1\nepochs = 3\nname = 'a'")
    tracked.run("score = lr * epochs + len(name)")
    (run,) = runs_of(tracked)
    out, _src = verified(run)
    helped = script(out, "--help")
    assert helped.returncode == 0, helped.stderr
    text = " ".join(helped.stdout.split())
    assert "--lr VALUE float, recorded 0.1" in text
    assert "--epochs VALUE int, recorded 3" in text and "--name VALUE str, recorded 'a'" in text
    bad = script(out, "--epochs", "three", "--output-dir", "o")
    assert bad.returncode == 2
    assert "parameter epochs expects an int (recorded: 3), got 'three'" in bad.stderr


def test_train_py_without_its_folder_says_what_is_missing(tracked, tmp_path):
    tracked.run("score = 2.0")
    (run,) = runs_of(tracked)
    out, _src = verified(run)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "train.py", alone / "train.py")
    proc = script(alone)
    assert proc.returncode != 0
    assert "_mlops_support" in proc.stderr and "copy the whole folder" in proc.stderr
    shutil.copy(out / "_mlops_support.py", alone / "_mlops_support.py")
    proc = script(alone)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "run.json is missing beside it" in proc.stderr and "export folder" in proc.stderr


def test_a_changed_support_file_fails_reproduce(tracked):
    tracked.run("score = 2.0")
    (run,) = runs_of(tracked)
    out, _src = verified(run)
    with open(out / "_mlops_support.py", "a", encoding="utf-8") as fh:
        fh.write("\n# edited\n")
    verdict = reproduce(out)
    assert not verdict.ok
    assert any("_mlops_support.py differs from the file export wrote" in p
               for p in verdict.problems)


def test_reproduce_prints_real_lines(tracked):
    tracked.run("score = 2.0\nloss = 1.0")
    (run,) = runs_of(tracked)
    out, _src = verified(run)
    proc = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "reproduce", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("reproduced: level L2") and "\\n" not in proc.stdout
    assert any(line.strip().startswith("score: recorded 2.0") for line in lines[1:])


def test_a_missing_data_file_is_a_structured_warning(tracked):
    Path("d.csv").write_text("a\n1\n2\n")
    tracked.run("import pandas as pd\ndf = pd.read_csv('d.csv')")
    tracked.run("score = float(df['a'].sum())")
    (run,) = runs_of(tracked)
    Path("d.csv").unlink()
    from mlops_nb.exporting.build import DataChanged

    with pytest.warns(DataChanged, match="missing"):
        out = export_run(run.id, Path.cwd() / "exp")
    (warning,) = json.loads((out / "run.json").read_text())["warnings"]
    assert warning["kind"] == "data_file" and warning["problem"] == "missing"
    assert warning["path"].endswith("d.csv")


def _own_lines(notebook: Path) -> set[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return {line.strip() for c in cells if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if line.strip()}


def test_the_quickstart_best_run_reads_like_a_script(tracked):
    """The README's quickstart (its code cells, in a real tracked shell): the best run's
    train.py is under 60 lines, at most 10 of them not the notebook's code, parameters or
    imports, and it reproduces exactly."""
    notebook = ROOT / "notebooks" / "quickstart.ipynb"
    for cell in json.loads(notebook.read_text())["cells"]:
        code = "".join(cell["source"])
        if cell["cell_type"] != "code" or any(
                k in code for k in ("%load_ext", "%track on", "%track compare", "%track status",
                                    "%track export", "reproduce(", "mnb.runs(")):
            continue
        tracked.run(code)
    tracked.flush()
    best = best_run_id("f1", home=tracked.tracker.home)
    run = next(r for r in runs_of(tracked) if r.id == best)
    out, src = verified(run)
    lines = [line.strip() for line in src.splitlines() if line.strip()]
    params = json.loads((out / "run.json").read_text())["parameters"]
    own = _own_lines(notebook)
    text = "\n".join(own)
    options = {n: v for n, v in params.items() if n not in text}  # constructor keywords

    def as_written(line: str) -> str:  # `random_state=model_random_state` -> `random_state=0`
        for name, value in options.items():
            line = re.sub(rf"=\b{name}\b", f"={value!r}", line)
        return line

    other = [line for line in lines
             if as_written(line) not in own and not line.startswith(("import ", "from "))
             and line.split(" = ")[0] not in params]
    print(f"quickstart train.py: {len(src.splitlines())} lines, {len(other)} not the "
          "notebook's own:\n" + "\n".join(other))
    assert len(src.splitlines()) < 60
    assert len(other) <= 10, other


def test_statements_that_only_look_at_data_are_left_out(tracked):
    tracked.run("import pandas as pd\nimport numpy as np")
    tracked.run("df = pd.DataFrame({'a': np.arange(20.0), 'b': np.arange(20.0) % 3})\n"
                "df.head()\ndf.describe()\nprint(df.shape, len(df))\n"
                "df['b'].value_counts()\ndf.sample(3)  # draws: stays\n"
                "print(f'rows: {df.shape[0]}')\ndf")
    tracked.run("total = float(df['a'].sum())\nprint('total', total)\nscore = total / 10\n"
                "df.tail(2)")
    run = runs_of(tracked)[-1]
    _out, src = verified(run)
    for gone in ("df.head()", "describe", "print(df.shape", "value_counts", "print(f'rows",
                 "df.tail", "\ndf\n"):
        assert gone not in src, gone
    assert "df.sample(3)  # draws: stays" in src
    assert "print('total', total)" in src  # `total` is not data: a print may be the point


def test_only_what_provably_just_looks_at_data_is_dropped():
    import ast

    from mlops_nb.exporting.prune import _only_looks

    def dropped(code: str) -> bool:
        return _only_looks(ast.parse(code).body[0], {"df"})

    for code in ("df.head()", "df.describe()", "print(df.shape, len(df))", "df[['a']].mean()",
                 "df.iloc[:5]", "df", "print('n =', df['a'].nunique())"):
        assert dropped(code), code
    for code in ("df.sample(3)", "df.apply(f)", "df.to_csv('x.csv')", "print(df, file=fh)",
                 "other.head()", "df.head(n)", "df.plot()", "print(model.score(X, y))",
                 "x = df.head()", "df.pop('a')", "print(df[key])"):
        assert not dropped(code), code


def test_an_inline_constructors_options_are_named_by_its_words(tracked):
    """`cv=StratifiedKFold(5, shuffle=True, random_state=0)` inside a call: its keywords
    become options named after the class, word by word (`--stratified-k-fold-random-state`,
    not `stratifiedk_fold_random_state`)."""
    tracked.run("import numpy as np\n"
                "from sklearn.linear_model import LogisticRegressionCV\n"
                "from sklearn.model_selection import StratifiedKFold, cross_val_score\n"
                "rng = np.random.default_rng(0)\n"
                "X = rng.normal(size=(120, 3))\ny = (X[:, 0] + rng.normal(size=120) > 0)\n")
    tracked.run("scores = cross_val_score(LogisticRegressionCV(Cs=3), X, y,\n"
                "    cv=StratifiedKFold(4, shuffle=True, random_state=0))\n"
                "cv_accuracy = float(scores.mean())")
    run = runs_of(tracked)[-1]
    out, src = verified(run)
    assert "stratified_k_fold_random_state = 0" in src
    assert "random_state=stratified_k_fold_random_state" in src
    assert "logistic_regression_cv_Cs = 3" in src
    helped = " ".join(script(out, "--help").stdout.split())
    assert "--stratified-k-fold-random-state VALUE" in helped
