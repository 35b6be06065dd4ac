"""`mlops-nb validate`, `models`, `retrain` and `reproduce --seeds`: registered by cli.py.

Exit codes: validate 0 clean, 1 drift or schema finding, 2 bad input; retrain 0 promoted or
accepted, 1 script failed, 2 bad input, 3 gate failed, 4 blocked by a schema violation
(or by drift with --block-on-drift),
5 skipped (--when drift, no drift), 130/143 stopped by SIGINT/SIGTERM; models 0 (1 with
--strict and a damaged record or mark); reproduce --gate/--no-worse-than: 3 when a gate fails
(after 0/1 for reproduced or not), 2 when a gate does not parse or names a metric the run does
not record (before anything runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .jsonvalues import json_ready


def _cli() -> Any:
    from . import cli

    return cli


def cmd_validate(args: argparse.Namespace) -> int:
    from .validation import validate

    cli = _cli()
    th = _thresholds(args.threshold)
    target = _promoted_target(args.run_id, args.model)
    report = validate(target, args.data, name=args.name, home=cli._home(args), **th)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=1, default=str))
    else:
        for line in report.summary().splitlines():
            print(cli._printable(line))
    return cli.EXIT_OK if report.ok else cli.EXIT_FAILED


def _promoted_target(target: str, model: str | None) -> str:
    """`promoted` with `--model NAME` is `promoted:NAME`: the one run reference every
    command resolves (validation.resolve_run refuses `--model` with a plain run id)."""
    from .models import promoted_ref

    if model is None:
        return target
    is_promoted, named = promoted_ref(target)
    if not is_promoted:
        from .errors import MlopsNbError

        raise MlopsNbError(f"--model {model!r} picks a promoted model: give `promoted` (or "
                           f"`promoted:{model}`) as the run, not {target!r}")
    if named is not None and named != model:
        from .errors import MlopsNbError

        raise MlopsNbError(f"{target!r} and --model {model!r} name different models; give one")
    return f"promoted:{model}"


def _thresholds(items: list[str] | None) -> dict[str, float]:
    from .validation import BadData

    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            key, value = "alpha", item
        if key not in ("alpha", "psi"):
            raise BadData(f"--threshold takes alpha=P or psi=X, not {item!r}")
        try:
            out[key] = float(value)
        except ValueError:
            raise BadData(f"--threshold {item!r}: {value!r} is not a number") from None
    return out


def cmd_models(args: argparse.Namespace) -> int:
    from .models import read_registry
    from .store.reader import StoreReader

    cli = _cli()
    if getattr(args, "models_cmd", None) == "promote":
        return _models_promote(args)
    if getattr(args, "models_cmd", None) == "demote":
        return _models_demote(args)
    home = cli._home(args)
    reg = read_registry(home)
    marks = {v["version"] for v in reg.marks.values()}
    versions = [v for v in reg.versions
                if args.experiment is None or v.get("experiment") == args.experiment]
    reader = StoreReader(home)
    cols = reader.run_columns().cols
    index = {rid: i for i, rid in enumerate(cols["id"])}
    rows = []
    for v in versions:
        i = index.get(v.get("run_id"))
        metrics = {k[8:]: cols[k][i] for k in cols if k.startswith("metrics.")
                   and i is not None and cols[k][i] is not None}
        data = cols.get("data", [None] * (len(cols["id"])))[i] if i is not None else None
        status = cols["status"][i] if i is not None and "status" in cols else None
        rows.append({**v, "promoted": v.get("version") in marks, "metrics": metrics,
                     "data": data, "run_status": status})
    if args.format == "json":
        print(json.dumps(json_ready(rows), indent=1, default=str))
        return cli._report_problems(reg.problems, args.strict)
    if not rows:
        print("no model versions yet: `mnb.log_model(model, name)`, `%track on --save-models` "
              "or `mlops-nb retrain` save them")
        return cli._report_problems(reg.problems, args.strict)
    for r in rows:
        mark = "*" if r["promoted"] else " "
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in r["metrics"].items())
        failed = "  (run raised an error)" if r["run_status"] == "error" else ""
        print(cli._printable(
            f"{mark} {r['name']!s:16} {str(r.get('version'))[:12]}  "
            f"run {str(r.get('run_id') or '-')[:12]}  {r.get('experiment') or '-'!s:12} "
            f"{r.get('format') or '-'!s:7} "
            f"{str(r.get('class') or '').rsplit('.', 1)[-1]:24} "
            f"{metrics}  data {str(r.get('data') or '-')[:12]}  {r.get('created_at') or '-'}"
            f"{failed}"))
    print("(* promoted; one model name is promoted once per store, whatever its experiment)")
    return cli._report_problems(reg.problems, args.strict)


def _models_promote(args: argparse.Namespace) -> int:
    import warnings

    from .models import PromotionReplaced, promote_run

    cli = _cli()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PromotionReplaced)
        version = promote_run(args.run_id, args.name, force=args.force, home=cli._home(args))
    for w in caught:
        if issubclass(w.category, PromotionReplaced):
            print(f"mlops-nb: warning: {cli._printable(str(w.message))}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    print(cli._printable(f"promoted {version['name']}: version {version['version'][:12]} of run "
                         f"{str(version['run_id'])[:12]} (experiment "
                         f"{version.get('experiment')})"))
    return cli.EXIT_OK


def _models_demote(args: argparse.Namespace) -> int:
    from .models import demote_run

    cli = _cli()
    old = demote_run(args.name, home=cli._home(args))
    where = (f": was version {old['version'][:12]} of run {str(old.get('run_id'))[:12]}"
             if old else " (its damaged mark removed)")
    print(cli._printable(f"demoted {args.name}{where}"))
    return cli.EXIT_OK


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it; SIGTERM 143, SIGHUP 129


def cmd_retrain(args: argparse.Namespace) -> int:
    from .retraining import Terminated, retrain, stop_on_signals

    cli = _cli()
    from .models import promoted_ref

    target, model = args.target, args.model
    is_promoted, named = promoted_ref(target)
    if is_promoted:  # `promoted --model lr` and `promoted:lr` both retrain lr's promoted run
        target = _promoted_target(target, model)
        model = model or named
    try:
        with stop_on_signals():
            result = retrain(target, args.data, gates=args.gate,
                             no_worse_than_margin=args.no_worse_than,
                             beat_noise=args.beat_noise, promote=args.promote, when=args.when,
                             model_name=model, home=cli._home(args), timeout=args.timeout,
                             progress=not args.no_progress and sys.stderr.isatty(),
                             trusted=args.trusted, block_on_drift=args.block_on_drift,
                             **_thresholds(args.threshold))
    except (KeyboardInterrupt, Terminated) as exc:
        import signal

        signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
        print(f"mlops-nb: retrain stopped by {signal.Signals(signum).name}: the training "
              "script was ended and nothing was recorded", file=sys.stderr)
        return 128 + int(signum)
    if args.format == "json":
        print(json.dumps(json_ready(result.to_dict()), indent=1, default=str))
    else:
        for line in result.summary().splitlines():
            print(cli._printable(line))
        if result.stderr_tail:
            print(result.stderr_tail, file=sys.stderr)
    return result.exit_code


EXIT_GATE_FAILED = 3


class ReproduceGates:
    """`reproduce --gate ... --no-worse-than X`: checked on the reproduced metrics."""

    def __init__(self, args: argparse.Namespace, gates: list[Any]) -> None:
        self.args = args
        self.gates = gates

    def __bool__(self) -> bool:
        return bool(self.gates) or self.args.no_worse_than is not None

    def check(self, metrics: dict[str, Any], run_id: str | None) -> int:
        from .gates import check_known, evaluate, no_worse_than
        from .models import promoted_version
        from .store.reader import StoreReader

        cli = _cli()
        check_known(self.gates, metrics, "the reproduced run")
        results = evaluate(self.gates, metrics)
        if self.args.no_worse_than is not None:
            home = cli._home(self.args)
            ref = promoted_version(home, getattr(self.args, "model", None))
            if ref is None:
                raise cli.MlopsNbError("--no-worse-than compares with the promoted model, and "
                                       "none is promoted yet")
            ref_metrics, against = _promoted_metrics(StoreReader(home), ref, run_id,
                                                     self.args.timeout)
            names = [g.metric for g in self.gates] or [m for m in metrics if m in ref_metrics]
            results += no_worse_than(metrics, ref_metrics, self.args.no_worse_than, names,
                                     against=against)
        for r in results:
            print(cli._printable(f"gate {'PASS' if r.passed else 'FAIL'}: {r.detail}"),
                  file=sys.stderr)
        return cli.EXIT_OK if all(r.passed for r in results) else EXIT_GATE_FAILED


def _promoted_metrics(reader: Any, ref: dict[str, Any], run_id: str | None, timeout: float
                     ) -> tuple[dict[str, Any], str]:
    """The promoted model's metrics from the reproduced run's own script and data (see
    champion.py), else its run's recorded metrics, said on stderr."""
    import tempfile
    import warnings
    from pathlib import Path

    from .champion import evaluate_promoted
    from .errors import MlopsNbError
    from .exporting import write_export
    from .exporting.build import build_export

    try:
        if run_id is None:
            raise MlopsNbError("the reproduced run is not in this store")
        with tempfile.TemporaryDirectory(prefix="mlops-nb-promoted-") as tmp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export = build_export(reader, reader.resolve(run_id))
            out = Path(tmp) / "export"
            out.mkdir()
            write_export(export, out)
            metrics = evaluate_promoted(reader.home, ref, out, [], Path(tmp) / "promoted",
                                        timeout)
        return metrics, "the promoted model, re-evaluated on the same data"
    except Exception as exc:  # any failure: the recorded metrics, and the output says so
        print(_cli()._printable(f"mlops-nb: the promoted model could not be re-evaluated on "
                                f"this run's data ({exc}); comparing with its run's recorded "
                                "metrics"), file=sys.stderr)
        return reader.resolve(ref["run_id"]).metrics, "the promoted run's recorded value"


def positive_seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def reproduce_gates(args: argparse.Namespace) -> ReproduceGates:
    """The gates, parsed, and checked against the metrics the run recorded (in its export's
    run.json, or the store): a gate on a metric it never had is bad input before anything
    runs, not after the whole reproduction."""
    from .gates import check_known, parse_gates

    gates = ReproduceGates(args, parse_gates(args.gate))
    if gates.gates:
        recorded = _recorded_metrics(args)
        if recorded is not None:
            check_known(gates.gates, recorded, "the run")
    return gates


def _recorded_metrics(args: argparse.Namespace) -> dict[str, Any] | None:
    """What `reproduce` will compare: the export folder's expected metrics, or the run's."""
    from pathlib import Path

    from .errors import MlopsNbError
    from .jsonvalues import from_tagged

    folder = Path(args.target)
    if folder.is_dir():
        try:
            doc = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # reproduce says what is wrong with the folder
        expected = doc.get("expected_metrics") if isinstance(doc, dict) else None
        return from_tagged(expected) if isinstance(expected, dict) else None
    try:
        from .store.reader import StoreReader

        return dict(StoreReader(_cli()._home(args)).resolve(args.target).metrics)
    except MlopsNbError:
        return None  # reproduce reports the unknown run or the missing store


def reproduce_seeds(args: argparse.Namespace, gates: ReproduceGates | None = None) -> int:
    """`reproduce RUN --seeds N`: the metric spread over fresh RNG states, and ties; gates
    apply to each metric's mean over the seeds."""
    from .noise import measure_noise, noise_summary

    cli = _cli()
    doc = measure_noise(args.target, args.seeds, home=cli._home(args), timeout=args.timeout,
                        progress=sys.stderr.isatty())
    if args.format == "json":
        print(json.dumps(json_ready(doc), indent=1, default=str))
    else:
        for line in noise_summary(doc).splitlines():
            print(cli._printable(line))
    if gates:
        return gates.check({k: m["mean"] for k, m in doc["metrics"].items()}, doc["run_id"])
    return cli.EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="check new data against a run's data profile: schema "
                                        "and drift; exit 0 clean, 1 drift/violation, 2 bad input")
    p.add_argument("run_id", metavar="RUN_ID|promoted[:NAME]")
    p.add_argument("--data", required=True, metavar="FILE", help="the new data (csv, tsv, "
                                                                 "parquet, json)")
    p.add_argument("--model", metavar="NAME", help="with `promoted`: which promoted model, "
                                                   "when several are (= promoted:NAME)")
    p.add_argument("--name", help="which of the run's data (variable or file), when several")
    p.add_argument("--threshold", action="append", metavar="alpha=P|psi=X",
                   help="drift needs p < alpha (default 0.01) and PSI >= psi (default 0.1)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("models", help="saved model versions, their metrics and data, and "
                                      "which is promoted; `models promote|demote`")
    p.add_argument("-e", "--experiment")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a version record or promoted mark is damaged")
    p.set_defaults(func=cmd_models, models_cmd=None)
    models = p.add_subparsers(dest="models_cmd", metavar="{promote,demote}")
    q = models.add_parser("promote", help="mark a run's model as the promoted version of its "
                                          "name")
    q.add_argument("run_id", metavar="RUN_ID")
    q.add_argument("name", nargs="?", metavar="NAME", help="which model of the run (default: "
                                                           "its only one)")
    q.add_argument("--force", action="store_true",
                   help="promote even though the run's cell raised an error")
    q.set_defaults(func=cmd_models)
    q = models.add_parser("demote", help="take the promoted mark off a model name")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_models)

    p = sub.add_parser("retrain", help="retrain a run on new data, gate, record, promote; exit "
                                       "0 promoted/accepted, 1 script failed, 2 bad input, "
                                       "3 gate failed, 4 blocked, 5 skipped")
    p.add_argument("target", metavar="RUN_ID|promoted[:NAME]")
    p.add_argument("--data", action="append", required=True, metavar="[NAME=]FILE",
                   help="new data for a file the run read (NAME only when it read several)")
    p.add_argument("--gate", action="append", metavar="EXPR", help="e.g. 'f1>=0.90'")
    p.add_argument("--no-worse-than", type=float, metavar="X",
                   help="no metric worse than the promoted model's by more than X, the "
                        "promoted model evaluated by the same script on the same new data")
    p.add_argument("--beat-noise", action="store_true",
                   help="beat the promoted model by more than its noise (reproduce --seeds)")
    p.add_argument("--trusted", action="store_true",
                   help="allow loading a promoted model stored with pickle (or skops types "
                        "outside scikit-learn) to re-evaluate it")
    p.add_argument("--promote", action="store_true", help="move the promoted mark if every "
                                                          "gate passes")
    p.add_argument("--when", choices=("always", "drift"), default="always",
                   help="drift: retrain only when the new data drifted (else exit 5)")
    p.add_argument("--block-on-drift", action="store_true",
                   help="stop (exit 4) when the new data drifted, as on a schema violation")
    p.add_argument("--model", metavar="NAME", help="the model name to version under; with "
                                                   "`promoted`, which promoted model to retrain")
    p.add_argument("--threshold", action="append", metavar="alpha=P|psi=X")
    p.add_argument("--timeout", type=positive_seconds, default=3600.0, metavar="S")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_retrain)
