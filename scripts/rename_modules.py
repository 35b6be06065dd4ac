"""Merge aid (delete once every branch is merged): rename mlops_nb's verb-named modules to nouns
so `mnb.export` etc. are plain functions, on a tree that still uses the old names.

Run from the repository root: `python scripts/rename_modules.py`. Idempotent.
git mv's the modules, then rewrites module references (imports, dotted `mlops_nb.X.` paths,
module-name strings, file paths) in every tracked text file; calls like `mnb.export(` and
`mlops_nb.export(` are functions and stay.
"""
import re
import subprocess
from pathlib import Path

MOVES = {
    "mlops_nb/compare": "mlops_nb/comparison",
    "mlops_nb/export": "mlops_nb/exporting",
    "mlops_nb/validate": "mlops_nb/validation",
    "mlops_nb/reproduce.py": "mlops_nb/reproduction.py",
    "mlops_nb/retrain.py": "mlops_nb/retraining.py",
}
NAMES = {"compare": "comparison", "export": "exporting", "validate": "validation",
         "reproduce": "reproduction", "retrain": "retraining"}
M = "(" + "|".join(NAMES) + ")"
RULES = [
    # from .compare.model import / from ..export import / from mlops_nb.reproduce import
    (re.compile(rf"(\bfrom\s+)(\.+|mlops_nb\.){M}\b(?=[\s.])"),
     lambda m: m[1] + m[2] + NAMES[m[3]]),
    # import mlops_nb.compare.widget
    (re.compile(rf"(\bimport\s+mlops_nb\.){M}\b"), lambda m: m[1] + NAMES[m[2]]),
    # "mlops_nb.compare.widget.CompareWidget" (monkeypatch targets, python -m, docs)
    (re.compile(rf"\bmlops_nb\.{M}\.(?=[A-Za-z_])"),
     lambda m: "mlops_nb." + NAMES[m[1]] + "."),
    # "mlops_nb.export" as a module name in a string
    (re.compile(rf"(['\"])mlops_nb\.{M}(['\"])"),
     lambda m: m[1] + "mlops_nb." + NAMES[m[2]] + m[3]),
    # file paths
    (re.compile(rf"\bmlops_nb/{M}(/|\.py\b)"), lambda m: "mlops_nb/" + NAMES[m[1]] + m[2]),
]


def main() -> None:
    for old, new in MOVES.items():
        if Path(old).exists() and not Path(new).exists():
            subprocess.run(["git", "mv", old, new], check=True)
    files = subprocess.run(["git", "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        path = Path(name)
        if path.suffix not in (".py", ".md", ".toml", ".sh", ".ipynb", ".json", ".js", ".ts",
                               ".cfg", ".txt", ".yml", ".yaml") or not path.is_file():
            continue
        if name.startswith(("labextension/node_modules", "tests/corpus/")) or "lock" in name:
            continue
        text = path.read_text(encoding="utf-8")
        new = text
        for rule, repl in RULES:
            new = rule.sub(repl, new)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print("rewrote", name)


if __name__ == "__main__":
    main()
