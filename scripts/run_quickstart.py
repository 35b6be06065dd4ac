"""Execute notebooks/quickstart.ipynb in a real kernel and print what it showed."""

from __future__ import annotations

import sys
from pathlib import Path

from mlops_nb.execute import execute_notebook, text_outputs

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def main() -> int:
    print(f"== running {NOTEBOOK.relative_to(ROOT)} in a fresh kernel")
    nb = execute_notebook(NOTEBOOK, timeout=900)
    for text in text_outputs(nb):
        print(text.rstrip())
    store = NOTEBOOK.parent / ".mlops_nb"
    print(f"== done; the store is {store}")
    print("   list it again with: .venv/bin/mlops-nb --home notebooks/.mlops_nb runs")

    from mlops_nb.comparison import write_report

    report = write_report(NOTEBOOK.parent / "quickstart-report.html", "quickstart",
                          metric="f1", home=store)
    print(f"== comparison report (open in a browser): {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
