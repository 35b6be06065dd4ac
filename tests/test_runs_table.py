"""`%track runs` (compact table), `mlops-nb runs --filter`, `mlops-nb compare` without --metric,
and magic lines with a trailing comment, through a real IPython shell and the real CLI."""

from __future__ import annotations

import pytest

from mlops_nb.cli import EXIT_BAD_INPUT, EXIT_OK, main
from mlops_nb.magics import strip_comment


def make_runs(tracked) -> None:
    tracked.run("import numpy as np\nseed = 0")
    for depth, lr in ((2, 0.1), (4, 0.01), (8, 0.001)):
        tracked.run(f"max_depth = {depth}\nlr = {lr}")
        tracked.run("f1 = float(np.round(0.7 + 0.01 * max_depth - lr, 4))\n"
                    "loss = float(np.round(1 - f1, 4))")
    tracked.flush()


def test_track_runs_is_a_compact_table(tracked, capsys):
    make_runs(tracked)
    df = tracked.run("%track runs").result
    assert list(df.columns) == ["id", "name", "f1", "loss", "max_depth", "lr", "when"]
    assert df["id"].str.len().max() == 8
    assert list(df["max_depth"]) == [2, 4, 8]  # in the order they ran
    assert df["name"].iloc[2] == "run · max_depth=8 · lr=0.001"
    assert "same for all runs: seed=0" in capsys.readouterr().out
    full = tracked.run("%track runs --all").result
    assert {"session", "cell_id", "params.seed", "metrics.f1"} <= set(full.columns)
    best = tracked.run("%track runs --sort f1 --limit 1").result
    assert list(best["max_depth"]) == [8]
    some = tracked.run('%track runs --filter "max_depth>=4 f1>0.7"  # the good ones').result
    assert list(some["max_depth"]) == [4, 8]


def test_a_run_whose_cell_raised_says_so_in_both_tables(tracked, capsys):
    """A run whose cell raised after its metric looked like any other in `runs` and `%track
    runs` (its status only in `--all` and CSV), though `--best` may pick it."""
    from mlops_nb.cli import main

    make_runs(tracked)
    df = tracked.run("%track runs").result
    assert "status" not in df.columns  # every run ended well: nothing to say
    tracked.run("f1 = 0.99\nraise ValueError('after the metric')", check=False)
    tracked.flush()
    df = tracked.run("%track runs").result
    assert list(df["status"]) == ["ok", "ok", "ok", "error"]
    capsys.readouterr()
    assert main(["--home", str(tracked.tracker.home), "runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["id", "name"])
    assert "status" in lines[at].split()
    assert [" error " in f"{ln} " for ln in lines[at + 1:]] == [False, False, False, True]


def test_a_dict_of_settings_is_shown_by_its_entries(tracked, capsys):
    """`for params in ParameterGrid(grid):` made a run per setting whose one parameter was
    the dict: the table's column, the plot's axis and each run's name read
    `params={'learning_rate': 0.05, 'max_depth': 3}`. Each entry is a parameter of its own
    (`params.max_depth`, sortable, filterable, plottable); the dict is kept in the record."""
    tracked.run("from sklearn.model_selection import ParameterGrid\n"
                "cfg = {'scale': 2.0, 'name': 'base'}")
    tracked.run("for params in ParameterGrid({'max_depth': [3, None], 'lr': [0.1]}):\n"
                "    depth = params['max_depth'] or 10\n"
                "    score = cfg['scale'] * params['lr'] * depth")
    tracked.flush()
    df = tracked.run("%track runs").result
    assert {"max_depth", "score"} <= set(df.columns) and "params" not in df.columns
    assert list(df["name"]) == ["run · max_depth=3", "run · max_depth=None"]
    full = tracked.run("%track runs --all").result
    assert full["params.params.max_depth"].iloc[0] == 3
    assert full["params.params"].iloc[0] == {"lr": 0.1, "max_depth": 3}  # kept as it was
    tracked.run("score = cfg['scale'] * 2")  # a cell's own dict of settings too
    tracked.flush()
    full = tracked.run("%track runs --all").result
    assert full["params.cfg.scale"].iloc[-1] == 2.0 and full["params.cfg.name"].iloc[-1] == \
        "base"
    capsys.readouterr()
    home = str(tracked.tracker.home)
    assert main(["--home", home, "runs", "--filter", "max_depth>=3", "--format", "csv"]) == \
        EXIT_OK
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # header and one run


def test_a_parameter_stored_as_a_blob_is_one_column(tracked, capsys):
    """A parameter over 1 KB is stored once as a blob, its record holding a reference
    ({"$blob", "size", "preview"}): that reference was taken for a dict of settings, and the
    CSV grew bogus columns `params.v.$blob`, `params.v.size`, `params.v.preview`."""
    tracked.run("import mlops_nb as mnb\nmnb.log_params({'v': 'z' * 7000})\nf1 = 0.5")
    tracked.flush()
    capsys.readouterr()
    assert main(["--home", str(tracked.tracker.home), "runs", "--format", "csv"]) == EXIT_OK
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert [c for c in header if c.startswith("params.v")] == ["params.v"]


def test_track_runs_bad_filter_says_why(tracked, capsys):
    make_runs(tracked)
    assert tracked.run("%track runs -f max_dept>2").result is None
    assert "unknown column 'max_dept'; closest: max_depth" in capsys.readouterr().err


def test_readme_tour_line_with_a_comment_works(shell, capsys):
    shell.run("%load_ext mlops_nb")
    shell.run("%track on --experiment churn  # from now on, every cell is recorded")
    assert "experiment 'churn'" in capsys.readouterr().out


@pytest.mark.parametrize(("line", "expected"), [
    ("on --experiment churn  # from now on", "on --experiment churn"),
    ("# only a comment", ""),
    ("runs -f 'name~#3'", "runs -f 'name~#3'"),  # inside quotes: not a comment
    ('runs -f "a # b"  # c', 'runs -f "a # b"'),
    ("export abc#1", "export abc#1"),  # no space before '#': part of the word
])
def test_strip_comment(line, expected):
    assert strip_comment(line) == expected


def test_cli_runs_filter(tracked, capsys):
    make_runs(tracked)
    home = str(tracked.tracker.home)
    capsys.readouterr()
    assert main(["--home", home, "runs", "--filter", "max_depth>=4", "--format", "csv"]) == \
        EXIT_OK
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3  # header and two runs
    assert main(["--home", home, "runs", "--filter", "lr=0.001..0.01 f1>0.7",
                 "--format", "json"]) == EXIT_OK
    assert '"params.max_depth": 4' in capsys.readouterr().out
    assert main(["--home", home, "runs", "--filter", "max_dept>2"]) == EXIT_BAD_INPUT
    assert "closest: max_depth" in capsys.readouterr().err


def test_cli_compare_default_metric_is_the_last_chosen_then_the_one_most_runs_have(
        tracked, tmp_path, capsys):
    """Not the first logged: one random forest's `accuracy` before three runs' `f1` made
    the report's best run, its plot (one point) and its sort about one run."""
    from mlops_nb.comparison.widget import remember_metric

    tracked.run("accuracy = 0.5")
    make_runs(tracked)
    home = tracked.tracker.home
    out = tmp_path / "r.html"
    assert main(["--home", str(home), "compare", "-o", str(out)]) == EXIT_OK
    assert "best by f1 (the one most runs have; none chosen yet" in capsys.readouterr().err
    remember_metric(home, "test", "metrics.loss", "min")
    assert main(["--home", str(home), "compare", "-e", "test", "-o", str(out)]) == EXIT_OK
    assert "best by loss (the metric last chosen for experiment 'test'" in \
        capsys.readouterr().err


def test_export_into_a_folder_holding_another_run_says_which(tracked, tmp_path, capsys):
    make_runs(tracked)
    out = tmp_path / "best"
    tracked.run(f"%track export --best --metric f1 -o {out}")
    first = capsys.readouterr().out
    assert "exported run" in first
    tracked.run("max_depth = 30\nlr = 0.0")
    tracked.run("f1 = float(np.round(0.7 + 0.01 * max_depth - lr, 4))")
    assert tracked.run(f"%track export --best --metric f1 -o {out}").result is None
    err = capsys.readouterr().err
    assert f"{out} already holds the export of run [" in err
    assert "reproduce on that folder verifies the old run" in err


def _sweep(tracked) -> None:
    tracked.run("import numpy as np\nseed = 0")
    for depth, rate, n in ((2, 5.91e-4, 100), (4, 0.00431678, 300), (8, 0.0123, 300)):
        tracked.run(f"max_depth = {depth}\nlearning_rate_schedule = {rate}\nn_estimators = {n}")
        tracked.run("f1 = float(np.round(0.7 + 0.01 * max_depth, 4))")
    tracked.flush()


def _table(capsys, *argv: str) -> dict[str, str]:
    """`mlops-nb runs ARGV`: each shown run's name by its short id."""
    import re

    assert main(list(argv)) == EXIT_OK
    rows = re.findall(r"^\s*([0-9a-f]{8,})\s+(run · .*?)\s+0\.\d+ ", capsys.readouterr().out,
                      re.MULTILINE)
    return dict(rows)


def test_cli_names_are_the_runs_own_whatever_the_table_shows(tracked, capsys):
    _sweep(tracked)
    home = str(tracked.tracker.home)
    every = _table(capsys, "--home", home, "runs", "--all")
    assert len(every) == 3
    newest = _table(capsys, "--home", home, "runs", "-n", "2")
    assert len(newest) == 2
    for rid, name in newest.items():  # `-n 2` shows two runs that differ in less
        assert name == every[rid]
    picked = _table(capsys, "--home", home, "runs", "--filter", "n_estimators=300")
    assert all(name == every[rid] for rid, name in picked.items())
    # names in full: this one is longer than the 40 characters cells are cut to
    longest = max(every.values(), key=len)
    assert len(longest) > 40 and "..." not in longest
    assert "n_estimators=300" in every[next(r for r, n in every.items() if "max_depth=4" in n)]


def test_cli_number_column_has_one_format(tracked, capsys):
    _sweep(tracked)
    assert main(["--home", str(tracked.tracker.home), "runs", "--all"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "5.91000e-4" in out and "4.31678e-3" in out and "1.23000e-2" in out
    assert "0.00431678" not in out


def test_a_parameter_one_run_of_a_model_set_tells_it_from_another(tracked):
    """A loop's Pipeline with `name=logreg` and a Pipeline fitted later without that
    parameter were both "Pipeline" plus a short id: not set is a value for names too."""
    tracked.run("from sklearn.linear_model import LinearRegression\nimport numpy as np\n"
                "X = np.arange(8.0).reshape(-1, 1)\ny = 2 * X[:, 0]")
    tracked.run("variant = 'a'\nm = LinearRegression().fit(X, y)\nr2 = m.score(X, y)")
    tracked.run("m2 = LinearRegression().fit(X, y)\nr2 = m2.score(X, y) - 0.5")
    tracked.flush()
    df = tracked.run("%track runs").result
    assert list(df["name"]) == ["LinearRegression · variant=a", "LinearRegression"]
