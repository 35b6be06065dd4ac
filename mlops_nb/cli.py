"""The `mlops-nb` command: the store from a terminal or a CI job.

Exit codes are distinct so a pipeline can branch on them: 0 ok, 1 the check failed (a problem
with --strict, not reproduced, export refused: nothing written), 2 bad input (unknown or
ambiguous run id, no store).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import MlopsNbError
from .jsonvalues import json_ready

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _printable(text: Any) -> Any:
    """Terminal-safe text: control characters and bidi overrides shown as escapes."""
    if not isinstance(text, str) or text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: Any) -> Any:
    """A text cell safe to open in a spreadsheet or `cat` in a terminal: control characters
    and bidi overrides as escapes, and a leading `'` on text a spreadsheet would take for a
    formula (`=HYPERLINK(...)`). Numbers are left as numbers."""
    if not isinstance(value, str):
        return value
    text = _printable(value)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def _csv_safe(df: Any) -> Any:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype.kind in "OSUT" or str(out[col].dtype) in ("string", "str"):
            out[col] = out[col].map(csv_cell, na_action="ignore")
    out.columns = [csv_cell(str(c)) for c in out.columns]
    return out


def _home(args: argparse.Namespace) -> Path:
    from .config import store_home

    # a typo in --home or MLOPS_NB_HOME is no store, not an empty one
    return store_home(args.home, use_tracker=False, must_exist=True)


def _report_problems(problems: list[str], strict: bool) -> int:
    for p in problems:
        print(f"mlops-nb: warning: skipped {_printable(p)}", file=sys.stderr)
    if len(problems) > 1:
        print(f"mlops-nb: warning: {len(problems)} store files or records skipped, listed "
              "above; everything else was read", file=sys.stderr)
    if problems and strict:
        print(f"mlops-nb: {len(problems)} unreadable file(s) and --strict given", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


PAGE = 20  # runs a table shows unless -n/--all says otherwise: the newest, as `git log` pages
STREAM_ROWS = 2000  # rows per chunk of --format csv/json: memory flat in the number of runs


def cmd_runs(args: argparse.Namespace) -> int:
    from .api import with_tags
    from .config import store_reader
    from .table import runs_frame, sort_runs

    limit = None if args.all else args.limit
    if limit is None and not args.all and args.format == "table":
        limit = PAGE
    newest = limit if not (args.sort or args.filter) else None
    if args.source == "mlflow":
        from .sync.command import tracking_uri
        from .sync.team import mlflow_runs

        df = mlflow_runs(tracking_uri(args), args.experiment)
        total = len(df)
    else:
        # Only the newest `limit` runs are decoded when nothing reorders or filters them.
        reader = store_reader(_home(args))
        reader.keep_encoded()  # the first screen reads the index twice (newest, then all)
        cols = reader.run_columns(args.experiment, newest=newest)
        if args.format == "table" and newest is not None and _first_screen(
                cols, newest, lambda: reader.run_columns(args.experiment)):
            return _report_problems([str(p) for p in cols.problems], args.strict)
        df, total = with_tags(runs_frame(cols), reader.home), cols.total
    problems = df.attrs.get("problems", [])
    # A run's made-up name comes from what varies in its whole experiment, never from which
    # runs this table happens to show (`-n 2` must not rename them).
    names: dict[str, str] | None = None
    if args.format == "table" and total > len(df):
        names = _experiment_names(reader, args.experiment, [str(i) for i in df["id"]])
    if args.filter and len(df):
        from .comparison.model import Comparison

        cmp = Comparison(df, names=names)
        cmp.set_filter(args.filter)  # a bad query: QueryError, exit 2 with the reason
        if names is None:
            names = _made_names(cmp)
        df = df.loc[cmp.view.sort_index().index]
        total = len(df)
    if args.sort:
        df = sort_runs(df, args.sort, "min" if args.min else "max" if args.max else None)
    if limit is not None and len(df) > limit:
        if names is None and args.format == "table":
            from .comparison.identity import names_by_id

            names = names_by_id(df)
        df = df.head(limit) if args.sort else df.tail(limit)  # best first, or the newest
    if args.format == "json":
        _stream_json(df)
    elif args.format == "csv":
        _stream_csv(df)
    elif df.empty:
        print(_nothing_shown(args, total, reader if args.source != "mlflow" else None))
    else:
        rest = total - len(df)
        print(_table_text(df, sorted_by=args.sort, goal="min" if args.min else "max"
                          if args.max else None, some=rest > 0, names=names))
        if rest > 0:
            which = "more" if args.sort else "older"
            print(f"... and {rest:,} {which} run{'s' if rest != 1 else ''} not shown "
                  f"({len(df):,} of {total:,}; `-n N` shows more, `--all` every run)")
    return _report_problems(problems, args.strict)


def _nothing_shown(args: argparse.Namespace, total: int, reader: Any) -> str:
    """Why the table is empty, in words that lead on: "no runs yet" only when there are
    none, not when a filter, an experiment's name or `-n 0` left none to show."""
    if args.filter:
        return f"no run matches {args.filter!r}"
    if total:  # `-n 0`
        return (f"{total:,} run{'s' if total != 1 else ''}, none shown (`-n N` shows the "
                "newest N)")
    if args.experiment is not None and reader is not None:
        from .table import runs_frame

        known = sorted({str(e) for e in runs_frame(reader.run_columns()).get(
            "experiment", [])})
        if known:
            return (f"no runs in experiment {args.experiment!r}; the store has "
                    + ", ".join(repr(e) for e in known))
    if args.experiment is not None:
        return f"no runs in experiment {args.experiment!r}"
    return "no runs yet: `%track on` in a notebook records them"


def _experiment_names(reader: Any, experiment: str | None, ids: list[str]) -> dict[str, str]:
    """The made-up names of runs `ids` as their whole experiment names them, from the
    columns names read (ids, names, models, parameters): the table read only the newest."""
    from .comparison.identity import names_by_id
    from .store.reader import RunColumns
    from .table import runs_frame

    cols = reader.run_columns(experiment)
    if cols.typed is not None:
        keep = ("id", "name", "model", "started_at", "seq", "params_none")
        cols = RunColumns(n=cols.n, typed={k: v for k, v in cols.typed.items()
                                           if k in keep or k.startswith("params.")})
    return names_by_id(runs_frame(cols), only=ids)


def _made_names(cmp: Any) -> dict[str, str]:
    df = cmp.df
    return {str(i): str(n) for i, n, made in zip(df["id"], df["name"], df["name_auto"],
                                                 strict=True) if made}

def _first_screen(cols: Any, limit: int, whole: Any) -> bool:
    """Print the newest `limit` runs' table without importing pandas (first_screen.py);
    False, having printed nothing, when only the pandas path can print it exactly. `whole()`
    reads every run of the experiment, for names that do not depend on what is shown."""
    from .first_screen import compact_text
    from .textframe import NotPlain

    try:
        text, shown = compact_text(cols, limit, printable=_printable, short_value=_short_value,
                                   unique_prefixes=_unique_prefixes, column_cells=_column_cells,
                                   whole=whole() if cols.total > limit else None)
    except NotPlain:
        return False
    print(text)
    rest = cols.total - shown
    if rest > 0:
        print(f"... and {rest:,} older run{'s' if rest != 1 else ''} not shown "
              f"({shown:,} of {cols.total:,}; `-n N` shows more, `--all` every run)")
    return True


def _stream_json(df: Any) -> None:
    """A JSON array of runs written a chunk of rows at a time, never one string of them all."""
    out = sys.stdout
    out.write("[")
    first = True
    for start in range(0, len(df), STREAM_ROWS):
        chunk = df.iloc[start:start + STREAM_ROWS].copy()
        chunk["started_at"] = chunk["started_at"].map(lambda t: t.isoformat())
        for row in chunk.to_dict(orient="records"):
            out.write(("\n" if first else ",\n") + json.dumps(json_ready(row), default=str))
            first = False
    out.write("\n]\n")


def _stream_csv(df: Any) -> None:
    for start in range(0, max(len(df), 1), STREAM_ROWS):
        chunk = _csv_safe(df.iloc[start:start + STREAM_ROWS])
        _write_text(chunk.to_csv(index=False, header=start == 0))


def _write_text(text: str) -> None:
    """Write machine output as is, except what the terminal's encoding cannot carry (a lone
    surrogate from a non-UTF-8 file name), which is written as a backslash escape."""
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        enc = sys.stdout.encoding or "utf-8"
        sys.stdout.write(text.encode(enc, "backslashreplace").decode(enc))


def _table_text(df: Any, *, sorted_by: str | None = None, goal: str | None = None,
                some: bool = False, names: dict[str, str] | None = None) -> str:
    """The compact table `%track runs`, the widget and the report show: short id, name, model,
    metrics, the parameters that differ between the shown runs, when; what they all share in
    one line above. Rows in the frame's order; every cell and header terminal-safe."""
    from .comparison.model import Comparison
    from .table import compact_runs, constants_line

    if df.empty:
        return "no runs yet: `%track on` in a notebook records them"
    cmp = Comparison(df, metric=sorted_by, goal=goal, names=names)
    cmp.sort_by = None  # keep the caller's order (newest last, or best first)
    cmp.update()
    shown = compact_runs(cmp)
    shown["id"] = _unique_prefixes([str(i) for i in cmp.view["id"]])
    for col in shown.columns:
        shown[col] = _column_cells(col, shown[col].tolist())
    shown.columns = [_printable(c) for c in shown.columns]
    text = shown.to_string(index=False, max_colwidth=None)
    line = constants_line({_printable(k): _printable(_short_value(v)) if isinstance(v, str)
                           else v for k, v in cmp.plan.constant.items()})
    if some:  # only some runs are shown: what they share, not what every run does
        line = line.replace("same for all runs:", "same for all runs shown:", 1)
    return (_printable(line) + "\n" + text) if line else text


def _column_cells(col: str, values: list[Any]) -> list[Any]:
    """A table column's cells: numbers in one format per column, terminal-safe text, cut at 40
    characters except names (a name cut loses what tells runs apart). The first screen
    (first_screen.py) prints its columns through this too, so both paths print alike."""
    if col == "name":
        return [_printable(v) for v in values]
    if col not in ("id", "when"):
        values = _numbers_alike(values)
    return [_cell_text(v) for v in values]


def _cell_text(value: Any) -> Any:
    """A table cell terminal-safe and no wider than 40 characters."""
    value = _printable(value)
    if type(value) is int and not -10**40 < value < 10**40:  # a 400-digit seed
        value = str(value)
    if isinstance(value, str) and len(value) > 40:
        return value[:37] + "..."
    return value


def _numbers_alike(values: list[Any]) -> list[Any]:
    """A column's numbers in one format (comparison/numbers.py); other values as they are."""
    from .comparison.numbers import number_format

    fmt = number_format(values)
    if fmt is None:
        return values
    return [fmt(v) if type(v) in (int, float) and v == v else v for v in values]


def _unique_prefixes(ids: list[str], shortest: int = 8) -> list[str]:
    """Ids cut as short as they stay distinct among those shown (as `git log --oneline`
    abbreviates): each one can be given back to `show` or `export`."""
    width = shortest
    while width < max(map(len, ids), default=0) and len({i[:width] for i in ids}) < len(set(ids)):
        width += 1
    return [i[:width] for i in ids]


def _short_value(value: Any) -> str:
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()  # numpy scalars read as plain Python values
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def cmd_show(args: argparse.Namespace) -> int:
    from .lineage import resolve_value_refs
    from .records import run_view
    from .store.reader import StoreReader

    reader = StoreReader(_home(args))
    target = reader.resolve(args.run_id)
    # The lineage from the index's direct deps: only the run's own segment is parsed.
    lineage, counts = reader.lineage(target)
    run = run_view(target, lineage)
    if args.format == "json":
        run["params"] = resolve_value_refs(run["params"], reader.blobs)
        run["cell_params"] = resolve_value_refs(run["cell_params"], reader.blobs)
        print(json.dumps(json_ready(run), indent=1, default=str))
        return EXIT_OK
    code = reader.blobs.get_text(run["code"])
    for key in ("id", "experiment", "name", "notebook", "session", "execution_count",
                "started_at", "duration_s", "status", "error"):
        if run.get(key) is not None:
            print(f"{key:16} {_printable(str(run[key]))}")
    for section in ("params", "metrics", "data", "estimators"):
        values = run.get(section) or {}
        if values:
            print(f"{section}:")
            for k, v in values.items():
                print(f"  {_printable(k)} = {_printable(json.dumps(v, default=str)[:200])}")
    cells = ", ".join(f"In[{counts[i]}]" if counts.get(i) is not None else i[:12]
                      for i in run["lineage"])
    print(f"lineage:         {len(run['lineage'])} earlier cell run(s)"
          + (f": {cells}" if cells else ""))
    for w in run.get("warnings") or []:
        print(f"warning:         {_printable(w)}")
    if code:
        print("code:")
        for line in code.splitlines():
            print(f"  {_printable(line)}")
    for problem in reader.blobs.problems:
        print(f"mlops-nb: warning: {_printable(problem)}", file=sys.stderr)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from .comparison.model import load_comparison
    from .comparison.report import save_report

    goal = "min" if args.min else "max" if args.max else None
    if args.source == "mlflow":
        from .sync.command import tracking_uri

        cmp, store = load_comparison(args.experiment, metric=args.metric, goal=goal,
                                     home=args.home, source="mlflow",
                                     tracking_uri=tracking_uri(args))
    else:
        cmp, store = load_comparison(args.experiment, metric=args.metric, goal=goal,
                                     home=_home(args))
        if args.metric is None and len(cmp.df):
            _default_metric(cmp, store, args.experiment, goal)
    path = save_report(args.output, cmp, experiment=args.experiment, store=store)
    if not len(cmp.df):
        print("mlops-nb: warning: no runs to compare: `%track on` in a notebook records them",
              file=sys.stderr)
    print(path)
    return _report_problems(cmp.df.attrs.get("problems", []), args.strict)


def _default_metric(cmp: Any, store: Path, experiment: str | None, goal: str | None) -> None:
    """The metric last chosen in the widget for this experiment, else the one most runs have
    (as the widget and the lab panel pick it: the first logged may be one run's `accuracy`
    beside three runs' `cv_auc`); say which, since it decides the best run."""
    from .comparison.model import default_metric, metric_columns
    from .comparison.widget import remembered_metric

    metrics = metric_columns(cmp.df)
    if not metrics:
        return
    chosen = remembered_metric(store, experiment)
    if chosen is not None and f"metrics.{chosen[0]}" in metrics:
        cmp.set_metric(chosen[0], goal or chosen[1] or None)
        why = "the metric last chosen" + (f" for experiment {experiment!r}" if experiment else "")
    else:
        cmp.set_metric(default_metric(cmp.df) or metrics[0], goal)
        why = "the one most runs have; none chosen yet"
    cmp.set_sort(cmp.metric)
    print(f"mlops-nb: best by {cmp.metric.removeprefix('metrics.')} ({why}; --metric to "
          "change)", file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> int:
    from .errors import ExportExists, ExportRefused, UnsafeExport
    from .exporting import best_run_id, export_run, sole_metric
    from .exporting.build import DataChanged

    if args.source == "mlflow":
        from .sync.command import cmd_pull_export

        return cmd_pull_export(args)
    home = _home(args)
    if args.best:
        metric = args.metric
        if not metric:  # one metric among the runs: that one, said so
            metric = sole_metric(args.experiment, home)
            print(f"mlops-nb: best by {metric!r}, the runs' only metric", file=sys.stderr)
        goal = "min" if args.min else "max" if args.max else None
        run_id = best_run_id(metric, goal=goal, experiment=args.experiment, home=home)
    elif args.run_id:
        run_id = args.run_id
    else:
        raise MlopsNbError("give a RUN_ID or --best --metric M")
    try:
        with warnings.catch_warnings():  # said below with the export's other warnings
            warnings.simplefilter("ignore", DataChanged)
            out = export_run(run_id, args.output, home=home, force=args.force)
    except (ExportRefused, UnsafeExport, ExportExists) as exc:  # nothing written: one code
        sys.stdout.flush()
        print(f"mlops-nb: export refused: {_printable(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    for message in _export_warnings(out):
        print(f"mlops-nb: warning: {_printable(message)}", file=sys.stderr)
    print(f"mlops-nb: exported run {run_id[:12]}; check it with `mlops-nb reproduce "
          f"{_printable(str(out))}`",
          file=sys.stderr)
    print(out)
    return EXIT_OK


def _export_warnings(out: Path) -> list[str]:
    """What the export could not do as recorded (run.json's `warnings`): a changed data file,
    a cell that raised, a module the script imports in another version than a cell ran."""
    try:
        found = json.loads((out / "run.json").read_text(encoding="utf-8")).get("warnings")
    except (OSError, ValueError, AttributeError):
        return []
    return [str(w.get("message")) for w in found or () if isinstance(w, dict)]


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .cli_mlops import reproduce_gates, reproduce_seeds
    from .reproduction import reproduce

    gates = reproduce_gates(args)  # parsed before anything runs: a bad gate is bad input
    if args.run is not None and not Path(args.target).is_dir():
        raise MlopsNbError(f"--run checks which run an export folder holds; "
                           f"{_printable(args.target)!r} is not a folder")
    if args.seeds is not None:  # the noise of the run's random draw (cli_mlops.py)
        return reproduce_seeds(args, gates)

    verdict = reproduce(args.target, home=_home_or_none(args), rtol=args.rtol, atol=args.atol,
                        timeout=args.timeout, stable=args.stable, run=args.run)
    if args.format == "json":
        print(json.dumps(json_ready(verdict.to_dict()), indent=1, default=str))
    else:
        for line in verdict.summary().splitlines():  # each line escaped, not the newlines
            print(_printable(line))
        if verdict.stderr_tail and not verdict.ok:
            print("stderr (tail):", file=sys.stderr)
            print(verdict.stderr_tail, file=sys.stderr)
    if not verdict.ok:
        return EXIT_FAILED
    return gates.check({k: m.get("reproduced") for k, m in verdict.metrics.items()},
                       verdict.run_id) if gates else EXIT_OK


def _home_or_none(args: argparse.Namespace) -> Path | None:
    try:
        return _home(args)
    except MlopsNbError:
        return None


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=("local", "mlflow"), default="local",
                   help="the local store, or the team's runs on an MLflow server")
    p.add_argument("--tracking-uri", metavar="URI", help="with --source mlflow (default: "
                                                         "$MLFLOW_TRACKING_URI)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-nb", description="Inspect and use the runs your notebooks recorded."
    )
    parser.add_argument("--home", help="the store folder (default: nearest .mlops_nb/ or "
                                       "$MLOPS_NB_HOME)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("runs", help="list runs")
    p.add_argument("-e", "--experiment")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--sort", metavar="METRIC", help="best first by this metric")
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--max", action="store_true", help="higher is better (default for scores)")
    goal.add_argument("--min", action="store_true", help="lower is better (default for losses)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("-n", "--limit", type=_non_negative_int, metavar="N",
                       help=f"show N runs: the newest, or the best N with --sort (default for "
                            f"the table: {PAGE}; csv and json: every run)")
    shown.add_argument("--all", action="store_true", help="show every run")
    p.add_argument("--filter", metavar="QUERY",
                   help="only runs matching QUERY, e.g. 'model=RandomForest max_depth>=5 "
                        "f1>0.9 name~forest' (None, \"quoted text\", ranges lo..hi)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any store file could not be read")
    _source_options(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="show one run (id or unique prefix)")
    p.add_argument("run_id")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("compare", help="write the comparison of runs as a self-contained HTML "
                                       "report; prints its path")
    p.add_argument("-e", "--experiment")
    p.add_argument("--metric", help="the metric that decides the best run (default: the one "
                                    "last chosen in the widget for this experiment, else the "
                                    "one most runs have)")
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--max", action="store_true", help="higher is better (default for scores)")
    goal.add_argument("--min", action="store_true", help="lower is better (default for losses)")
    p.add_argument("-o", "--output", default="mlops-nb-report.html",
                   help="where to write the report (default: %(default)s)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any store file could not be read")
    _source_options(p)
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("export", help="write a run as a standalone train.py, requirements.txt "
                                      "and run.json; prints the folder")
    p.add_argument("run_id", nargs="?", help="run id or unique prefix")
    p.add_argument("--best", action="store_true", help="export the best run by --metric")
    p.add_argument("--metric", help="with --best: the metric that decides (default: the runs' "
                                    "only metric, when they have one)")
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--max", action="store_true", help="higher is better (default for scores)")
    goal.add_argument("--min", action="store_true", help="lower is better (default for losses)")
    p.add_argument("-e", "--experiment", help="with --best: only runs of this experiment")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="the export folder, inside the project")
    p.add_argument("--force", action="store_true", help="overwrite an existing export")
    _source_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("reproduce", help="run an export (folder or run id) in a fresh process "
                                         "and compare its metrics; exit 0 reproduced, 1 not")
    p.add_argument("target", metavar="RUN_ID|DIR")
    p.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default exact)")
    p.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default exact)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds the script may run (default: %(default)s)")
    p.add_argument("--stable", action="store_true",
                   help="L3: run twice more with other PYTHONHASHSEED values")
    p.add_argument("--gate", action="append", metavar="EXPR",
                   help="quality gate on the reproduced metrics, e.g. 'f1>=0.90'; exit 3 "
                        "when one fails")
    p.add_argument("--no-worse-than", type=float, metavar="X",
                   help="no metric worse than the promoted model's by more than X (exit 3)")
    p.add_argument("--model", metavar="NAME",
                   help="with --no-worse-than: the promoted model to compare with, when "
                        "several are promoted")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="re-run N times with fresh RNG states and report each metric's spread")
    p.add_argument("--run", metavar="RUN_ID",
                   help="with a folder: verify it only if it holds the export of this run (id "
                        "or unique prefix); a folder holding another run's export is refused "
                        "(exit 2), never verified in its place")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_reproduce)
    from .cli_mlops import register  # validate, models, retrain

    register(sub)

    from .sync.command import add_parser as add_sync_parser

    add_sync_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except MlopsNbError as exc:
        print(f"mlops-nb: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        # What reaches here from MLflow's client is its refusal of the tracking URI (a
        # scheme it has no store for, a file store it no longer writes): network faults are
        # retried and reported by the sync itself. Its own words, without the traceback.
        if type(exc).__module__.split(".")[0] != "mlflow":
            raise
        print(f"mlops-nb: MLflow: {str(exc).strip()}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
