"""One exception root so callers can catch everything mlops-nb raises on purpose.

Every message says what to do next: these errors reach data scientists in a notebook and
engineers in CI logs, and neither should have to read our source to recover.
"""

from __future__ import annotations


class MlopsNbError(Exception):
    """Root of every error mlops-nb raises deliberately."""


class StoreNotFound(MlopsNbError):
    """No `.mlops_nb/` folder above the working directory and no MLOPS_NB_HOME."""


class StoreCorrupt(MlopsNbError):
    """A store file cannot be parsed; other files are still readable."""


class RunNotFound(MlopsNbError):
    """No run matches the id or prefix given."""


class AmbiguousRunId(MlopsNbError):
    """A run id prefix matches more than one run."""


class SchemaTooNew(MlopsNbError):
    """A record was written by a newer mlops-nb than the one reading it."""
