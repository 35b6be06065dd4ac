"""One exception root so callers can catch everything mlops-nb raises on purpose.

Every message says what to do next: these errors reach data scientists in a notebook and
engineers in CI logs, and neither should have to read our source to recover.
"""

from __future__ import annotations


class MlopsNbError(Exception):
    """Root of every error mlops-nb raises deliberately."""


class StoreNotFound(MlopsNbError):
    """No `.mlops_nb/` folder above the working directory and no MLOPS_NB_HOME."""


class NotInIPython(MlopsNbError):
    """`mnb.start()` and friends were called where no IPython shell runs (a plain script):
    there are no cells to record."""


class StoreCorrupt(MlopsNbError):
    """A store file cannot be parsed; other files are still readable."""


class RunNotFound(MlopsNbError):
    """No run matches the id or prefix given."""


class AmbiguousRunId(MlopsNbError):
    """A run id prefix matches more than one run."""


class SchemaTooNew(MlopsNbError):
    """A record was written by a newer mlops-nb than the one reading it."""


class UnsafeExport(MlopsNbError):
    """A name, value or path cannot be written into an export safely; nothing was written."""


class UnsafeOutputPath(UnsafeExport):
    """An export directory outside the project, through `..`, a symlink, or with a NUL."""


class ExportExists(MlopsNbError):
    """The export directory already holds files; pass --force (force=True) to overwrite."""


class ExportRefused(MlopsNbError):
    """The run's slice cannot be claimed reproducible (verdict L0 refused); `problems` say why."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class HiddenState(ExportRefused):
    """The run used names that no recorded cell run defined (pushed in, or run untracked)."""


class UntranslatableMagic(ExportRefused):
    """The slice uses IPython syntax that has no faithful plain-Python translation."""
