"""How much does a run's metric move with its random draw? `reproduce RUN --seeds N`.

The run's export is re-run N times with fresh RNG states (`MLOPS_NB_FRESH_RNG`, where the
notebook's states would have been restored); the spread of each metric (max - min over the
seeds) is stored in `.mlops_nb/noise/<run id>.json`. Other runs of the experiment whose gap to
this run is within that spread are "tied within noise": the ranking between them is the draw's.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from .errors import MlopsNbError
from .jsonvalues import read_metrics_file
from .store.storage import atomic_write_bytes

NOISE_DIR = "noise"


def _path(home: Path, run_id: str) -> Path:
    if not all(c in "0123456789abcdef" for c in run_id) or len(run_id) < 8:
        raise ValueError(f"not a run id: {run_id!r}")
    return Path(home) / NOISE_DIR / f"{run_id}.json"


def load_noise(home: str | os.PathLike[str], run_id: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(_path(Path(home), run_id).read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("metrics"), dict) else None


def measure_noise(run_id: str, seeds: int, *, home: str | os.PathLike[str] | None = None,
                  timeout: float = 600, progress: bool = True) -> dict[str, Any]:
    """Re-run the export of `run_id` with `seeds` fresh RNG states; the spread per metric."""
    from tqdm.auto import tqdm

    from .config import store_reader as _reader
    from .retraining import run_script

    if not isinstance(seeds, int) or seeds < 2:
        raise MlopsNbError("--seeds needs at least 2 runs to measure a spread")
    reader = _reader(home)
    run = reader.resolve(run_id)
    values: dict[str, list[float]] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlops-nb-noise-") as tmp:
        from .exporting import write_export
        from .exporting.build import build_export

        out = Path(tmp) / "export"
        out.mkdir()
        write_export(build_export(reader, run), out)
        for i in tqdm(range(seeds), desc="seeds", disable=not progress, leave=False):
            work = Path(tmp) / f"seed{i}"
            code, stderr, _ = run_script(out / "train.py", work,
                                         ["--output-dir", str(work / "out")], timeout,
                                         {"MLOPS_NB_FRESH_RNG": str(i + 1)})
            path = work / "out" / "metrics.json"
            if code != 0 or not path.is_file():
                failures.append(f"seed {i + 1}: exit {code}: {stderr[-300:]}")
                continue
            for name, v in read_metrics_file(path).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    values.setdefault(name, []).append(float(v))
    if failures and not values:
        raise MlopsNbError("every seeded run failed: " + failures[0])
    metrics = {
        name: {"values": vs, "mean": statistics.fmean(vs),
               "std": statistics.stdev(vs) if len(vs) > 1 else 0.0,
               "min": min(vs), "max": max(vs), "spread": max(vs) - min(vs),
               "recorded": run.metrics.get(name)}
        for name, vs in values.items()
    }
    doc = {"run_id": run.id, "seeds": seeds, "metrics": metrics, "failures": failures}
    atomic_write_bytes(_path(reader.home, run.id), json.dumps(doc, indent=1).encode("utf-8"))
    doc["ties"] = ties_within_noise(reader, run, metrics)
    return doc


def ties_within_noise(reader: Any, run: Any, metrics: dict[str, Any]) -> dict[str, list[str]]:
    """{metric: ids of other runs of the experiment within the spread of this run's value}."""
    cols = reader.run_columns(run.experiment).cols
    out: dict[str, list[str]] = {}
    for name, m in metrics.items():
        mine = run.metrics.get(name)
        col = cols.get(f"metrics.{name}")
        if not isinstance(mine, (int, float)) or col is None:
            continue
        out[name] = [cols["id"][i] for i, v in enumerate(col)
                     if cols["id"][i] != run.id and isinstance(v, (int, float))
                     and not isinstance(v, bool) and abs(v - mine) <= m["spread"]]
    return out


def noise_summary(doc: dict[str, Any]) -> str:
    lines = [f"noise of run {doc['run_id'][:12]} over {doc['seeds']} fresh RNG states:"]
    for name, m in doc["metrics"].items():
        lines.append(f"  {name}: recorded {m['recorded']!r}, mean {m['mean']:.6g}, "
                     f"std {m['std']:.3g}, spread {m['spread']:.3g} "
                     f"[{m['min']:.6g}, {m['max']:.6g}]")
        tied = doc.get("ties", {}).get(name) or []
        if tied:
            lines.append(f"    tied within noise: {', '.join(t[:12] for t in tied)}")
    lines += [f"  failed: {f}" for f in doc.get("failures", [])]
    return "\n".join(lines)


def load_all_noise(home: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """{run id: noise record} for every run measured with `reproduce --seeds`."""
    out: dict[str, dict[str, Any]] = {}
    folder = Path(home) / NOISE_DIR if home is not None else None
    if folder is None or not folder.is_dir():
        return out
    for entry in os.scandir(folder):
        if entry.name.endswith(".json"):
            doc = load_noise(Path(home), entry.name[:-5]) if home is not None else None
            if doc is not None:
                out[entry.name[:-5]] = doc
    return out


def tied_with_best(ids: list[str], values: list[Any], best: list[str], metric: str | None,
                   noise: dict[str, dict[str, Any]]) -> set[str]:
    """Runs whose gap to the best run is within the best run's measured noise (not the best
    itself); empty when the best run's noise was not measured. Pure."""
    if metric is None or not best or not noise:
        return set()
    name = metric.removeprefix("metrics.")
    by_id = dict(zip(ids, values, strict=True))
    tied: set[str] = set()
    for b in best:
        m = (noise.get(b) or {}).get("metrics", {}).get(name)
        top = by_id.get(b)
        if not m or not isinstance(top, (int, float)):
            continue
        tied |= {i for i, v in by_id.items()
                 if i not in best and isinstance(v, (int, float)) and not isinstance(v, bool)
                 and math.isfinite(v) and abs(v - top) <= m["spread"]}
    return tied
