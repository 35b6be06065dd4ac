"""What an export could not do as recorded, as small structured objects under one root.

run.json keeps them as `{"kind": ..., "message": ..., <fields>}`; callers test the class,
never the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class ExportWarning:
    """Something the export could not do as recorded; the export still claims to reproduce
    (or says why not in the verdict). `str()` is the sentence shown to the user."""

    message: str
    kind: ClassVar[str] = "export"

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "message": self.message}
        out.update({k: v for k, v in vars(self).items() if k != "message"})
        return out


@dataclass(frozen=True)
class DataFileWarning(ExportWarning):
    """A data file the run read is missing here or changed since the run."""

    path: str = ""
    problem: str = ""  # "missing" | "changed"
    kind: ClassVar[str] = "data_file"


@dataclass(frozen=True)
class ErroredCellWarning(ExportWarning):
    """A cell of the slice raised in the notebook; the script replays it up to the error."""

    seq: int = 0
    kind: ClassVar[str] = "errored_cell"


@dataclass(frozen=True)
class MissingRngState(ExportWarning):
    """A recorded RNG state is gone from the store: that restore is left out."""

    digest: str = ""
    kind: ClassVar[str] = "rng_state"


@dataclass(frozen=True)
class MissingModuleSource(ExportWarning):
    """A project module's recorded source is gone from the store: not copied."""

    module: str = ""
    kind: ClassVar[str] = "module"


@dataclass(frozen=True)
class EarlierModuleVersion(ExportWarning):
    """A slice cell ran under another version of a project module than the one copied."""

    module: str = ""
    seq: int = 0
    kind: ClassVar[str] = "module_version"
