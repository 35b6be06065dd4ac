"""Run any folder of notebooks unchanged with `%track on` and score what autologging found.

For each notebook (`.ipynb`, or a `# %%` script): a copy with `%load_ext mlops_nb` + `%track
on` prepended runs in a real kernel in the notebook's own folder (so its relative data paths
work), with its own store. Then, per notebook:

- ran: no cell raised (cells that raise in the untracked run too are the notebook's own);
- runs: cell runs that carry metrics (iterations and search candidates included);
- headline: the notebook's headline metric, given in a JSON file `{stem: metric}` (the metric
  the notebook prints or binds last in its final evaluation), else the last metric recorded;
- reproduced: the best run by that metric exports and `reproduce` says it matches exactly;
- model: the class `train.py --save-model` writes (`-` when no fitted model stands behind it);
- overhead (`--overhead`): sum of cell times tracked / untracked, each from its own kernel,
  and the kernel's CPU time over the notebook's cells (`time.process_time`, every thread:
  the store's writer too), which a busy machine inflates far less than wall time.

    python -m benchmarks.corpus DIR [--headline FILE] [--overhead] [--json FILE] [--only A,B]

This is the harness for the held-out check of issue 7; it never downloads anything.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

CONTROL = "%load_ext mlops_nb\n%track on"


def load_cells(path: Path) -> Any:
    """The notebook as nbformat, from an .ipynb or a `# %%` script (markdown cells kept)."""
    import nbformat

    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:  # outputs of the author's run are not ours to keep
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        return nb
    cells: list[Any] = []
    kind, lines = "code", []  # type: tuple[str, list[str]]

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if not text:
            return
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(
                "\n".join(ln.removeprefix("# ").removeprefix("#") for ln in lines).strip()))
        else:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    return nbformat.v4.new_notebook(cells=cells)


# The kernel's CPU seconds from before the notebook's first cell to after its last one (and
# after `%track off` has flushed the store, in the tracked run).
CPU_START = "import time as _mnb_time\n_mnb_cpu0 = _mnb_time.process_time()"
CPU_END = "print('MNB_CPU', _mnb_time.process_time() - _mnb_cpu0)"


def tracked_copy(nb: Any, timed: bool = False) -> Any:
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    out.cells.insert(0, nbformat.v4.new_code_cell(CONTROL))
    if timed:
        out.cells.insert(1, nbformat.v4.new_code_cell(CPU_START))
    out.cells.append(nbformat.v4.new_code_cell("%track off"))  # flushes the store
    if timed:
        out.cells.append(nbformat.v4.new_code_cell(CPU_END))
    return out


def timed_copy(nb: Any) -> Any:
    """The untracked run: the same timing cells around the notebook's own."""
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    out.cells.insert(0, nbformat.v4.new_code_cell(CPU_START))
    out.cells.append(nbformat.v4.new_code_cell(CPU_END))
    return out


def cpu_seconds(nb: Any) -> float | None:
    for cell in reversed([c for c in nb.cells if c.cell_type == "code"]):
        for o in cell.get("outputs", []):
            text = o.get("text", "")
            if o.get("output_type") == "stream" and "MNB_CPU" in text:
                return float(text.split("MNB_CPU", 1)[1].split()[0])
    return None


def cell_seconds(nb: Any, skip_first: int = 0, skip_last: int = 0) -> float:
    """Sum of the kernel's busy time per code cell, from nbclient's timing metadata."""
    total = 0.0
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code[skip_first:len(code) - skip_last]:
        ex = cell.get("metadata", {}).get("execution", {})
        start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        if start and end:
            total += (_ts(end) - _ts(start)).total_seconds()
    return total


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def errors(nb: Any, skip_first: int = 0) -> list[str]:
    out = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code[skip_first:]):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out.append(f"cell {i}: {o.get('ename')}: {str(o.get('evalue'))[:160]}")
    return out


def execute(nb: Any, path: Path, cwd: Path, timeout: int, env: dict[str, str]) -> Any:
    import nbformat

    from mlops_nb.execute import execute_notebook

    nbformat.write(nb, path)
    return execute_notebook(path, cwd=cwd, timeout=timeout, env=env, allow_errors=True)


def score(stem: str, src: Path, work: Path, headline: str | None, timeout: int,
          overhead: bool) -> dict[str, Any]:
    from mlops_nb.exporting import best_run_id, export_run
    from mlops_nb.models import deserialize
    from mlops_nb.reproduction import reproduce
    from mlops_nb.store.reader import StoreReader

    row: dict[str, Any] = {"notebook": stem}
    work.mkdir(parents=True, exist_ok=True)
    store = work / ".mlops_nb"
    nb = load_cells(src)
    t0 = time.perf_counter()
    env = {"MLOPS_NB_HOME": str(store)}
    home = src.resolve().parent  # a link in a corpus folder runs beside its real data
    extra = 1 if overhead else 0  # the timing cells
    done = execute(tracked_copy(nb, timed=overhead), work / f"{stem}.ipynb", home, timeout, env)
    row["wall_s"] = round(time.perf_counter() - t0, 1)
    row["errors"] = errors(done, skip_first=1 + extra)
    tracked_s = cell_seconds(done, skip_first=1 + extra, skip_last=1 + extra)
    if overhead:
        plain = execute(timed_copy(nb), work / f"{stem}.plain.ipynb", home, timeout,
                        {"MLOPS_NB_HOME": str(work / "unused")})
        plain_errors = errors(plain, skip_first=1)
        row["errors"] = [e for e in row["errors"] if e not in plain_errors]
        row["own_errors"] = plain_errors
        base = cell_seconds(plain, skip_first=1, skip_last=1)
        row["tracked_s"], row["untracked_s"] = round(tracked_s, 3), round(base, 3)
        row["ratio"] = round(tracked_s / base, 3) if base > 0 else None
        cpu, cpu_base = cpu_seconds(done), cpu_seconds(plain)
        if cpu is not None and cpu_base:
            row["cpu_tracked_s"], row["cpu_untracked_s"] = round(cpu, 3), round(cpu_base, 3)
            row["cpu_ratio"] = round(cpu / cpu_base, 3)
    row["ran"] = not row["errors"]
    if not store.is_dir():
        row.update(runs=0, headline=None)
        return row
    reader = StoreReader(store)
    runs = [cr for cr in reader.iter_cell_runs() if cr.metrics]
    row["runs"] = len(runs)
    names: list[str] = []
    for cr in sorted(runs, key=lambda c: c.seq):
        names.extend(n for n in cr.metrics if n not in names)
    row["metrics"] = names
    own = [cr for cr in runs if cr.parent is None or cr.iteration is not None]  # not candidates
    name = headline or (list(own[-1].metrics)[-1] if own else None)
    row["headline"] = name
    row["headline_found"] = bool(name) and name in names
    if not row["headline_found"]:
        return row
    run_id = best_run_id(name, experiment=stem, home=store)
    row["best"] = {"id": run_id[:8], "value": reader.resolve(run_id).metrics.get(name)}
    try:
        out = export_run(run_id, work / "export", home=store, force=True)
        verdict = reproduce(out)
        row["reproduced"] = bool(verdict.ok)
        if not verdict.ok:
            row["why"] = (verdict.summary() + " " + verdict.stderr_tail[-400:]).strip()
    except Exception as exc:  # a refusal is a finding, not a crash of the harness
        row["reproduced"] = False
        row["why"] = f"{type(exc).__name__}: {exc}"[:400]
        return row
    saved = work / "model.pkl"
    proc = subprocess.run([sys.executable, str(out / "train.py"), "--save-model", str(saved),
                           "--output-dir", str(work / "again")], cwd=out, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode == 0:
        meta = json.loads(Path(str(saved) + ".json").read_text())
        try:
            model = deserialize(meta["format"], saved.read_bytes(), meta["sha256"], trusted=True)
            row["model"] = type(model).__name__
        except Exception as exc:  # a class the notebook defined itself cannot be imported here
            row["model"] = f"saved, not loadable here ({type(exc).__name__})"
    else:
        row["model"] = "-" if proc.returncode == 4 else f"failed ({proc.returncode})"
    return row


def notebooks(folder: Path, only: set[str] | None) -> list[Path]:
    found = sorted([*folder.rglob("*.ipynb"), *folder.glob("*.py")])
    found = [p for p in found if ".ipynb_checkpoints" not in p.parts
             and not p.name.startswith("_")]
    return [p for p in found if only is None or p.stem in only]


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| notebook | ran | runs | headline metric | found | reproduced | model | ratio "
            "| CPU ratio |")
    lines = [head, "|" + " --- |" * 9]
    for r in rows:
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["notebook"], "yes" if r.get("ran") else "no", r.get("runs", 0),
            r.get("headline") or "-", "yes" if r.get("headline_found") else "no",
            {True: "yes", False: "no"}.get(r.get("reproduced"), "-"), r.get("model", "-"),
            r.get("ratio", "-"), r.get("cpu_ratio", "-")))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--headline", type=Path, help="JSON {notebook stem: headline metric}")
    ap.add_argument("--overhead", action="store_true", help="also run untracked, for ratios")
    ap.add_argument("--only", help="comma-separated notebook stems")
    ap.add_argument("--timeout", type=int, default=600, help="per cell, seconds")
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    args = ap.parse_args(argv)
    heads = json.loads(args.headline.read_text()) if args.headline else {}
    only = set(args.only.split(",")) if args.only else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnb-corpus-") as tmp:
        for path in notebooks(args.folder, only):
            stem = path.stem
            try:
                row = score(stem, path, Path(tmp) / stem, heads.get(stem), args.timeout,
                            args.overhead)
            except Exception:
                row = {"notebook": stem, "ran": False, "why": traceback.format_exc()[-600:]}
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(table(rows))
    hits = sum(1 for r in rows if r.get("headline_found"))
    ok = sum(1 for r in rows if r.get("reproduced"))
    print(f"{hits}/{len(rows)} with a run carrying the headline metric; {ok} reproduced exactly")
    ratios = [(r["tracked_s"], r["untracked_s"]) for r in rows if r.get("untracked_s")]
    if ratios:
        print(f"sum of cell times tracked/untracked: "
              f"{sum(a for a, _ in ratios) / sum(b for _, b in ratios):.3f}")
    cpus = [(r["cpu_tracked_s"], r["cpu_untracked_s"]) for r in rows if r.get("cpu_untracked_s")]
    if cpus:
        print(f"kernel CPU over the notebooks' cells, tracked/untracked: "
              f"{sum(a for a, _ in cpus) / sum(b for _, b in cpus):.3f}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
    os._exit(130)
