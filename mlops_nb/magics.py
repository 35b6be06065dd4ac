"""`%track` and `%%track`: argument parsing over the tracker; no logic of their own."""

from __future__ import annotations

import ast
import os
import shlex
import sys
import time
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .capture.recorder import Tracker
from .errors import ExportExists, MlopsNbError

ACTIONS = ("on", "off", "status", "runs", "flush", "compare", "export", "reproduce")


@magics_class
class TrackMagics(Magics):
    def __init__(self, shell: Any, tracker: Tracker) -> None:
        super().__init__(shell)
        self.tracker = tracker

    @no_var_expand
    @magic_arguments()
    @argument("action", nargs="?", choices=ACTIONS,
              help="on: record every cell run; off: stop; status: show where and what; "
                   "runs: table of runs; flush: write pending records now; "
                   "compare: the comparison widget (--metric, --min/--max). "
                   "As a cell magic (%%%%track) give no action: the cell is tracked on its own.")
    @argument("-e", "--experiment", help="group runs under this name (default: notebook name)")
    @argument("-m", "--metric", action="append", default=[],
              help="a variable to record as a metric (repeatable)")
    @argument("-n", "--name", help="%%%%track only: a name for this run")
    @argument("--sort", help="runs: sort by this metric, best first")
    @argument("--limit", type=int, help="runs: show at most this many")
    @argument("--all", action="store_true", help="runs: every column (the full DataFrame)")
    @argument("-f", "--filter", help="runs: only runs matching this query, e.g. "
                                     "\"model=RandomForest f1>0.9\"")
    @argument("--min", action="store_true", help="compare: lower --metric is better")
    @argument("--max", action="store_true", help="compare: higher --metric is better")
    @argument("target", nargs="?",
              help="export: the run id (or --best); reproduce: a run id or an export folder")
    @argument("-o", "--output", help="export: the export folder")
    @argument("--best", action="store_true", help="export: the best run by --metric")
    @argument("--force", action="store_true", help="export: overwrite an existing export")
    @argument("--stable", action="store_true", help="reproduce: also check level L3")
    @argument("--save-models", action="store_true",
              help="on: save the fitted models of every run as versions (skops)")
    @argument("--allow-param", action="append", default=[], metavar="NAME",
              help="on: record the parameter NAME as is even though its name or value looks "
                   "like a credential (repeatable)")
    @line_cell_magic
    def track(self, line: str, cell: str | None = None) -> Any:
        """Record cell runs of this notebook: parameters, data, metrics, models, figures."""
        try:
            args = self.track.parser.parse_args(split_line(strip_comment(line)))
            if cell is not None:
                if args.action is not None:
                    raise MlopsNbError(
                        "%%track takes options only (--name, --metric, --experiment); "
                        f"use the line magic for `{args.action}`"
                    )
                return self._track_cell(args, cell)
            return self._track_line(args)
        except MlopsNbError as exc:
            print(f"mlops-nb: {exc}", file=sys.stderr)
            return None

    def _track_line(self, args: Any) -> Any:
        t = self.tracker
        action = args.action or "status"
        if action == "on":
            t.start(experiment=args.experiment, metrics=args.metric,
                    allow_params=args.allow_param)
            from .models import save_models_after_runs

            save_models_after_runs(t, args.save_models)
            print(f"mlops-nb: tracking every cell into {t.home} "
                  f"(experiment {t.experiment!r}, session {t.session})")
        elif action == "off":
            t.stop()
            print("mlops-nb: tracking off")
        elif action == "flush":
            t.flush()
        elif action == "status":
            t.flush(5)  # so "written" counts what is on disk, not what is still queued
            print(status_text(t))
        # compare: the widget, shown as the cell's result
        elif action == "compare":
            if args.min and args.max:
                raise MlopsNbError("give --min or --max, not both")
            from .comparison import compare

            t.flush()
            return compare(args.experiment, metric=args.metric[-1] if args.metric else None,
                           goal="min" if args.min else "max" if args.max else None,
                           home=t.home)
        elif action == "export":
            return self._export(args)
        elif action == "reproduce":
            from .reproduction import reproduce

            if not args.target:
                raise MlopsNbError("%track reproduce RUN_ID|DIR")
            t.flush()
            return reproduce(args.target, home=t.home, stable=args.stable)  # shows its summary
        elif action == "runs":
            return self._runs(args)
        return None

    def _runs(self, args: Any) -> Any:
        """A compact table (short id, name, model, metrics, varying parameters, when);
        `--all` for the full DataFrame of `mnb.runs()`."""
        from .comparison.model import load_comparison
        from .table import compact_runs, constants_line

        t = self.tracker
        t.flush()
        query = (args.filter or "").strip().strip("\"'")
        cmp, _ = load_comparison(args.experiment, metric=args.sort, home=t.home)
        if query:
            cmp.set_filter(query)
        if not args.sort:
            cmp.set_sort("started_at", True)  # in the order they ran, like mnb.runs()
        if args.all:
            df = cmp.raw.loc[cmp.view.index]
            return df.head(args.limit) if args.limit is not None else df
        line = constants_line(cmp.plan.constant)
        if line:
            print(line)
        return compact_runs(cmp, limit=args.limit)

    def _export(self, args: Any) -> Any:
        """`%track export RUN_ID -o DIR` or `%track export --best --metric f1 [--min] -o DIR`."""
        from .exporting import best_run_id, export_run

        t = self.tracker
        t.flush()
        if args.best:
            if not args.metric:
                raise MlopsNbError("%track export --best needs --metric M")
            run_id = best_run_id(args.metric[-1], experiment=args.experiment, home=t.home,
                                 goal="min" if args.min else "max" if args.max else None)
        elif args.target:
            run_id = args.target
        else:
            raise MlopsNbError("%track export RUN_ID -o DIR, or --best --metric M -o DIR")
        if not args.output:
            raise MlopsNbError("%track export needs -o DIR (the export folder)")
        try:
            out = export_run(run_id, args.output, home=t.home, force=args.force)
        except ExportExists as exc:
            from pathlib import Path

            from .comparison.widget import describe_export

            there = describe_export(Path(args.output))
            same = f"[{run_id[:8]}]" in there
            raise MlopsNbError(
                f"{args.output} already holds {there}"
                + ("; add --force to export it again" if same else
                   f", not run {run_id[:8]}: add --force to replace it (until then, "
                   "reproduce on that folder verifies the old run)")) from exc
        print(f"mlops-nb: exported run {run_id[:12]} to {out}")
        return out

    def _track_cell(self, args: Any, cell: str) -> Any:
        """Run the body in the user namespace as this cell, recording it like `%track on` would."""
        t = self.tracker
        if args.experiment:
            t.experiment = args.experiment
        t.allowed_params.update(args.allow_param)
        ctx = t._ctx
        shell = self.shell
        transformed = shell.transform_cell(cell)
        tree = ast.parse(transformed)
        tree = shell.transform_ast(tree)
        if ctx is not None:
            ctx.name = args.name
            ctx.metric_names = list(args.metric)
            ctx.body = cell
            ctx.transformed = transformed
            ctx.body_tree = tree
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        filename = shell.compile.cache(transformed)
        exec(compile(tree, filename, "exec"), shell.user_ns)
        if last is not None:
            return eval(compile(last, filename, "eval"), shell.user_ns)
        return None


def split_line(line: str) -> list[str]:
    """The magic's words as a shell would split them: `-e "churn model"` is one word without
    its quotes. (IPython's `parse_argstring` splits in non-POSIX mode, which keeps them.)"""
    try:
        if os.name != "nt":
            return shlex.split(line, posix=True)
        # Windows paths keep their backslashes: split without escapes, then unquote.
        return [w[1:-1] if len(w) > 1 and w[0] == w[-1] and w[0] in "'\"" else w
                for w in shlex.split(line, posix=False)]
    except ValueError as exc:  # an unbalanced quote
        raise MlopsNbError(f"could not read the options ({exc}): {line!r}") from None


def strip_comment(line: str) -> str:
    """The magic line without a trailing `# comment` (a `#` outside quotes, at the start or
    after a space), so lines pasted from the README work."""
    quote = ""
    for i, c in enumerate(line):
        if quote:
            if c == "\\":
                continue
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def status_text(t: Tracker) -> str:
    writer = t.writer
    lines = [
        f"tracking: {'on' if t.auto else 'off (only %%track cells)'}",
        f"experiment: {t.experiment or t.default_experiment()}",
        f"session: {t.session}",
        f"store: {t.home or '(created on first recorded cell)'}",
        f"notebook: {t.notebook or '(unknown)'}",
        f"cell runs recorded: {t.recorded}; written: {writer.written if writer else 0}"
        + (f"; waiting to be written: {writer.waiting}" if writer and writer.waiting else "")
        + (f"; dropped: {writer.lost}" if writer and writer.lost else ""),
    ]
    if writer is not None and writer.error is not None:
        lines.append(f"write error (runs are NOT being saved; retried every "
                     f"{writer.retry_interval:g} s): {writer.error!r}")
    elif writer is not None and writer.last_error is not None:
        when, err = writer.last_error
        lines.append(f"last write error ({time.strftime('%H:%M:%S', time.localtime(when))}, "
                     f"writes succeed again since): {err!r}")
    return "\n".join(lines)
