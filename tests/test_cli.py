"""`mlops-nb runs` and `mlops-nb show` over runs recorded by a real IPython shell."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import warnings
from typing import Any

import pytest

import mlops_nb as mnb
from mlops_nb.cli import main
from mlops_nb.store.reader import StoreReader

# Three training runs of one experiment (f1 up is better, loss down is better), one of another.
DEPTHS = (3, 7, 5)


def _f1(depth: int) -> float:
    return 0.5 + depth / 100


def _strict_loads(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def store(tracked) -> dict[str, Any]:
    tracked.run("import mlops_nb as mnb")
    for depth in DEPTHS:
        tracked.run(f"max_depth = {depth}\nlearning_rate = 0.1")
        tracked.run("f1 = 0.5 + max_depth / 100\nloss = 1 - f1")
    tracked.run("%track on --experiment other")
    tracked.run("accuracy = 0.9\nmnb.log_metric('auc', float('nan'))")
    tracked.flush()
    reader = StoreReader(tracked.tracker.home)
    log = reader.session_log(tracked.tracker.session)
    ids: dict[str, Any] = {}
    ids["runs"] = [cr.id for cr in log if cr.metrics]
    ids["param_cells"] = {cr.params["max_depth"]: cr.id for cr in log
                          if "max_depth" in cr.params and not cr.metrics}
    ids["home"] = str(tracked.tracker.home)
    return ids


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def runs_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    code, out, err = run_cli(capsys, "runs", "--format", "json", *argv)
    assert code == 0, err
    return _strict_loads(out)


# -- runs --------------------------------------------------------------------------------------
def test_runs_table_lists_every_run_found_from_the_working_directory(store, capsys):
    code, out, err = run_cli(capsys, "runs")  # the store is found like .git, no --home
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 1 + 4  # every run fits the first page: no count line
    header = lines[0].split()
    # the compact table of `%track runs` and the widget: name, short names, when
    assert header == ["id", "name", "experiment", "f1", "loss", "accuracy", "auc", "max_depth",
                      "learning_rate", "when"]
    assert not any(c.startswith(("params.", "metrics.")) for c in header)
    # learning_rate is set in 3 runs of 4: a column (unset shown as —), not "same for all runs"
    assert "same for all" not in out and "(3 of 4)" not in out
    assert lines[-1].split()[-5:-2] == ["NaN", "—", "—"]
    for run_id in store["runs"]:
        assert run_id[:8] in out and run_id[:9] not in out  # ids shortened like git
    assert sum(" test " in f" {ln} " for ln in lines[1:]) == 3
    assert sum(" other " in f" {ln} " for ln in lines[1:]) == 1


def test_runs_json_is_strict_json_with_effective_params(store, capsys):
    rows = runs_json(capsys)
    assert [r["id"] for r in rows] == store["runs"]
    test_rows, [other] = rows[:3], rows[3:]
    assert [r["params.max_depth"] for r in test_rows] == list(DEPTHS)
    assert [r["metrics.f1"] for r in test_rows] == [_f1(d) for d in DEPTHS]
    assert [r["metrics.loss"] for r in test_rows] == [1 - _f1(d) for d in DEPTHS]
    assert all(r["status"] == "ok" and r["experiment"] == "test" for r in test_rows)
    # Missing values and NaN are null, never NaN or "<NA>".
    assert other["metrics.f1"] is None and other["params.max_depth"] is None
    assert other["metrics.auc"] is None and other["metrics.accuracy"] == 0.9
    assert all(r["metrics.accuracy"] is None for r in test_rows)
    for r in rows:
        assert dt.datetime.fromisoformat(r["started_at"]).tzinfo is not None
        assert isinstance(r["duration_s"], float) and r["duration_s"] >= 0


def test_runs_csv_parses_back(store, capsys):
    code, out, err = run_cli(capsys, "runs", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == store["runs"]
    assert [r["params.max_depth"] for r in rows] == [str(d) for d in DEPTHS] + [""]
    assert [float(r["metrics.f1"]) for r in rows[:3]] == [_f1(d) for d in DEPTHS]
    assert rows[3]["metrics.accuracy"] == "0.9"


@pytest.mark.parametrize(
    ("argv", "expected_depths"),
    [
        (["--sort", "f1"], [7, 5, 3]),  # a score: higher is better by default
        (["--sort", "loss"], [7, 5, 3]),  # a loss: lower is better by default
        (["--sort", "metrics.f1"], [7, 5, 3]),
        (["--sort", "f1", "--min"], [3, 5, 7]),
        (["--sort", "loss", "--max"], [3, 5, 7]),
        (["--sort", "f1", "--limit", "2"], [7, 5]),
        (["--sort", "loss", "--limit", "1"], [7]),
        (["--limit", "2"], [7, 5]),  # unsorted: the newest two, in the order they ran
        (["-n", "2"], [7, 5]),
    ],
)
def test_runs_sort_direction_and_limit(store, capsys, argv, expected_depths):
    rows = runs_json(capsys, "--experiment", "test", *argv)
    assert [r["params.max_depth"] for r in rows] == expected_depths


def test_runs_sorted_puts_runs_without_the_metric_last(store, capsys):
    rows = runs_json(capsys, "--sort", "f1")
    assert [r["params.max_depth"] for r in rows] == [7, 5, 3, None]
    rows = runs_json(capsys, "--sort", "loss", "--max")
    assert rows[-1]["experiment"] == "other"


def test_runs_sort_puts_a_metric_logged_as_text_last(tracked, capsys):
    tracked.run("import mlops_nb as mnb\n_ = mnb.log_metric('acc', 'high')")
    tracked.run("acc = 0.5")
    tracked.run("acc = 0.7")
    tracked.flush()
    assert [r["metrics.acc"] for r in runs_json(capsys, "--sort", "acc")] == [0.7, 0.5, "high"]
    assert [r["metrics.acc"] for r in runs_json(capsys, "--sort", "acc", "--min")] == [
        0.5, 0.7, "high"]
    code, out, _ = run_cli(capsys, "runs", "--sort", "acc")
    assert code == 0 and " high " in out.splitlines()[-1]


def test_runs_sort_table_is_best_first(store, capsys):
    code, out, _ = run_cli(capsys, "runs", "--sort", "loss", "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[-1].startswith("... and 2 more runs not shown (2 of 4;")
    lines = lines[-3:-1]
    by_depth = {d: store["runs"][i][:8] for i, d in enumerate(DEPTHS)}
    assert len(lines) == 2
    assert lines[0].startswith(by_depth[7]) and lines[1].startswith(by_depth[5])


def test_runs_sort_by_unknown_metric_is_bad_input(store, capsys):
    code, out, err = run_cli(capsys, "runs", "--sort", "precision")
    assert code == 2 and out == ""
    assert "precision" in err and "f1" in err  # says which metrics exist


def test_runs_experiment_filter(store, capsys):
    rows = runs_json(capsys, "--experiment", "test")
    assert [r["id"] for r in rows] == store["runs"][:3]
    [other] = runs_json(capsys, "--experiment", "other")
    assert other["id"] == store["runs"][3]
    assert "params.max_depth" not in other  # columns no run of the experiment has are dropped
    assert runs_json(capsys, "--experiment", "nope") == []
    code, out, _ = run_cli(capsys, "runs", "-e", "nope")
    assert code == 0 and out.strip() == (
        "no runs in experiment 'nope'; the store has 'other', 'test'")


def test_an_empty_table_says_why_it_is_empty(store, capsys):
    """"no runs yet" only when the store has none: a filter or `-n 0` left none to show."""
    code, out, _ = run_cli(capsys, "runs", "--filter", "f1>2")
    assert code == 0 and out.strip() == "no run matches 'f1>2'"
    code, out, _ = run_cli(capsys, "runs", "-n", "0")
    assert code == 0 and out.strip() == (
        f"{len(store['runs'])} runs, none shown (`-n N` shows the newest N)")


@pytest.fixture
def many(tmp_path) -> dict[str, Any]:
    """45 runs written by the real writer: more than a page."""
    from mlops_nb.records import CellRun
    from mlops_nb.store.writer import SessionWriter

    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s", segment_size=7)
    ids = []
    for i in range(45):
        cr = CellRun(id=hashlib.md5(str(i).encode()).hexdigest(), session="s", experiment="e", seq=i,
                     started_at=1_700_000_000 + i, params={"depth": i % 5, "seed": 0},
                     metrics={"f1": i / 100})
        ids.append(cr.id)
        w.append(cr)
    w.close()
    assert len({i[:8] for i in ids}) == 45  # distinct at 8 characters: shown that short
    return {"home": str(home), "ids": ids}


def test_runs_table_shows_the_newest_page_and_counts_the_rest(many, capsys):
    code, out, err = run_cli(capsys, "--home", many["home"], "runs")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "same for all runs shown: seed=0"
    rows = lines[2:-1]
    assert [r.split()[0] for r in rows] == [i[:8] for i in many["ids"][-20:]]  # newest, in order
    assert lines[-1] == ("... and 25 older runs not shown (20 of 45; `-n N` shows more, "
                         "`--all` every run)")
    code, out, _ = run_cli(capsys, "--home", many["home"], "runs", "-n", "3")
    assert [r.split()[0] for r in out.splitlines()[2:-1]] == [i[:8] for i in many["ids"][-3:]]
    assert "42 older runs" in out.splitlines()[-1]
    code, out, _ = run_cli(capsys, "--home", many["home"], "runs", "--all")
    assert len(out.splitlines()) == 2 + 45 and "not shown" not in out
    with pytest.raises(SystemExit):
        main(["--home", many["home"], "runs", "--all", "-n", "3"])


def test_runs_csv_and_json_stream_every_run_in_chunks(many, capsys, monkeypatch):
    import mlops_nb.cli as cli

    monkeypatch.setattr(cli, "STREAM_ROWS", 4)  # many chunks: one header, no seams
    writes: list[str] = []
    real = cli.sys.stdout

    class Counting:
        def write(self, text: str) -> int:
            writes.append(text)
            return real.write(text)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(cli.sys, "stdout", Counting())
    code, out, err = run_cli(capsys, "--home", many["home"], "runs", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == many["ids"]  # csv and json are every run by default
    assert [r["params.depth"] for r in rows] == [str(i % 5) for i in range(45)]
    assert len(writes) >= 45 // 4 and max(len(w) for w in writes) < len(out) / 5
    writes.clear()

    def as_json(*argv: str) -> list[dict[str, Any]]:
        code, out, err = run_cli(capsys, "--home", many["home"], "runs", "--format", "json",
                                 *argv)
        assert code == 0, err
        return _strict_loads(out)

    rows = as_json()
    assert [r["id"] for r in rows] == many["ids"]
    assert [r["metrics.f1"] for r in rows] == [i / 100 for i in range(45)]
    assert len(writes) >= 45
    assert [r["id"] for r in as_json("-n", "2")] == many["ids"][-2:]
    assert as_json("-e", "nope") == []


def test_runs_rejects_unknown_format_like_argparse(store, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["runs", "--format", "xml"])
    assert exc.value.code == 2
    assert "xml" in capsys.readouterr().err


# -- show --------------------------------------------------------------------------------------
def test_show_json_has_the_documented_fields_and_effective_params(store, capsys):
    run_id = store["runs"][1]  # the max_depth = 7 run
    code, out, err = run_cli(capsys, "show", run_id[:10], "--format", "json")
    assert code == 0, err
    doc = _strict_loads(out)
    for key in ("id", "experiment", "session", "notebook", "cell_id", "execution_count",
                "started_at", "duration_s", "status", "error", "params", "metrics", "data",
                "estimators", "lineage"):
        assert key in doc
    assert doc["id"] == run_id and doc["experiment"] == "test" and doc["status"] == "ok"
    assert doc["error"] is None
    # The metric cell set no parameter itself: its params are those of its lineage.
    assert doc["params"] == {"max_depth": 7, "learning_rate": 0.1}
    assert doc["cell_params"] == {}
    assert doc["metrics"] == {"f1": _f1(7), "loss": 1 - _f1(7)}
    assert isinstance(doc["lineage"], list)
    assert store["param_cells"][7] in doc["lineage"]
    assert store["param_cells"][3] not in doc["lineage"]
    dt.datetime.fromisoformat(doc["started_at"])


def test_show_json_turns_nan_into_null(store, capsys):
    code, out, _ = run_cli(capsys, "show", store["runs"][3], "--format", "json")
    assert code == 0
    assert "NaN" not in out
    doc = _strict_loads(out)
    assert doc["metrics"] == {"accuracy": 0.9, "auc": None}
    assert any("auc" in w and "not finite" in w for w in doc["warnings"])


def test_show_text(store, capsys):
    run_id = store["runs"][2]  # max_depth = 5
    code, out, err = run_cli(capsys, "show", run_id)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["id", run_id]
    assert "experiment       test" in out and "status           ok" in out
    assert "params:" in out and "  max_depth = 5" in out and "  learning_rate = 0.1" in out
    assert "metrics:" in out and f"  f1 = {json.dumps(_f1(5))}" in out
    lineage = next(ln for ln in lines if ln.startswith("lineage:"))
    assert int(lineage.split()[1]) >= 1
    counts = {cr.id: cr.execution_count for cr in StoreReader(store["home"]).iter_cell_runs()}
    assert f"In[{counts[store['param_cells'][5]]}]" in lineage  # the cell that set max_depth
    code_at = lines.index("code:")
    assert lines[code_at + 1:] == ["  f1 = 0.5 + max_depth / 100", "  loss = 1 - f1"]


def test_show_a_cell_run_that_is_not_a_run(store, capsys):
    # Ids of any cell run resolve, so lineage entries can be inspected too.
    code, out, _ = run_cli(capsys, "show", store["param_cells"][3], "--format", "json")
    assert code == 0
    doc = _strict_loads(out)
    assert doc["metrics"] == {} and doc["params"]["max_depth"] == 3


def test_show_nan_metric_prints_in_text(store, capsys):
    code, out, _ = run_cli(capsys, "show", store["runs"][3])
    assert code == 0
    assert "  auc = NaN" in out and "warning:" in out
    assert "  accuracy = 0.9" in out


def test_runs_refuses_a_negative_limit(store, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["runs", "--limit", "-1"])
    assert exc.value.code == 2
    assert "must be 0 or more" in capsys.readouterr().err


def test_an_integer_past_a_floats_range_is_listed_compared_and_named_short(tmp_path, capsys):
    """A 400-digit seed is a parameter like any (the export needs its every digit), and a
    metric that large is stored as the int (JSON holds it; past 4,300 digits the writer
    keeps its text): one such run made `runs`, `mnb.runs()` and `compare` fail for the
    whole experiment."""
    from mlops_nb.records import CellRun
    from mlops_nb.store.writer import SessionWriter

    huge = int("9" * 400)
    home = tmp_path / ".mlops_nb"
    w = SessionWriter(home, "s")
    for i, (seed, acc) in enumerate([(huge, 0.6), (7, 0.7), (7, 10**400)]):
        w.append(CellRun(id=f"{i:032x}", session="s", experiment="e", seq=i,
                         started_at=1_700_000_000 + i, params={"seed": seed},
                         metrics={"accuracy": acc}))
    w.close()
    code, out, err = run_cli(capsys, "--home", str(home), "runs")
    assert code == 0 and err == ""
    assert "seed=99999999999999999999999…" in out and max(map(len, out.splitlines())) < 150
    code, out, err = run_cli(capsys, "--home", str(home), "runs", "--format", "json")
    rows = _strict_loads(out)
    assert [r["params.seed"] for r in rows] == [huge, 7, 7]
    assert mnb.runs(home=str(home))["metrics.accuracy"].tolist()[:2] == [0.6, 0.7]
    with warnings.catch_warnings():  # an infinite seed made its plot axis all NaN
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["--home", str(home), "compare", "-o", str(tmp_path / "r.html")]) == 0


def test_output_and_server_mistakes_are_bad_input_not_tracebacks(store, capsys, tmp_path):
    code, _, err = run_cli(capsys, "compare", "-o", str(tmp_path))
    assert code == 2 and f"{tmp_path} is a folder: give the report's file name" in err
    code, out, _ = run_cli(capsys, "compare", "-o", str(tmp_path / "no" / "such" / "r.html"))
    assert code == 0 and out.strip().endswith("r.html") and (tmp_path / "no" / "such" / "r.html").is_file()  # folders are made
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "compare", "-o", str(tmp_path / "file" / "r.html"))
    assert code == 2 and "cannot write the report to" in err and "Traceback" not in err
    pytest.importorskip("mlflow")
    code, _, err = run_cli(capsys, "sync", "mlflow", "--tracking-uri", "ftp://host/x",
                           "--dry-run")
    assert code == 2 and err.startswith("mlops-nb: MLflow: ") and "ftp://host/x" in err


def test_a_store_path_that_is_a_file_is_said_and_the_cell_still_runs(shell, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setenv("MLOPS_NB_HOME", str(tmp_path / "store-file"))
    (tmp_path / "store-file").write_text("not a folder")
    shell.run("%load_ext mlops_nb")
    capsys.readouterr()
    shell.run("%track on")
    err = capsys.readouterr().err
    assert "store-file (or a folder above it) is a file, not a folder" in err
    assert "Traceback" not in err and not shell.tracker.auto
    shell.run("accuracy = 0.5")
    assert shell.ns["accuracy"] == 0.5
