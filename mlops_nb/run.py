"""`Run`: one run as `mnb.get_run` returns it, typed for attribute access and IDE completion.

It holds the same values as `mlops-nb show --format json` (`records.run_view`) plus the run's
tags and its metric history by step. It is still the dict `get_run` used to return, so code
written against that keeps running.
"""

from __future__ import annotations

from typing import Any


class Run(dict[str, Any]):
    """One run: what it was, what it set and measured, and where it came from.

    `params` and `data` are the effective ones (inherited through the lineage); `cell_params`
    and `cell_data` what this cell itself set. `metric_history` maps each metric to its
    `(step, value)` pairs, steps as given to `log_metric(..., step=)` or else 0, 1, 2...

    Every field is an attribute (`run.metrics`), typed below for IDEs and type checkers; it
    is also the plain dict it always was (`run["metrics"]`, `json.dumps(run)`).
    """

    id: str
    experiment: str
    session: str
    name: str | None
    notebook: str | None
    cell_id: str | None
    execution_count: int | None
    seq: int
    started_at: str | None
    duration_s: float
    status: str
    error: dict[str, str] | None
    mode: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    metric_steps: dict[str, list[Any]]
    metric_history: dict[str, list[tuple[int, Any]]]
    tags: dict[str, str]
    data: dict[str, dict[str, Any]]
    estimators: dict[str, dict[str, Any]]
    lineage: list[str]
    deps: list[str]
    cell_params: dict[str, Any]
    cell_data: dict[str, dict[str, Any]]
    defs: list[str]
    uses: list[str]
    mutations: list[str]
    imports: list[str]
    magics: list[str]
    files_read: list[str]
    files_written: list[str]
    figures: list[str]
    rng: dict[str, str] | None
    code: str | None
    python: str | None
    warnings: list[str]
    parent: str | None
    iteration: int | None
    widget_values: dict[str, Any]
    metric_models: dict[str, str]
    schema: int

    @property
    def run_id(self) -> str:
        """The id under MLflow's name for it (`run.info.run_id` there)."""
        return str(self["id"])

    @classmethod
    def from_view(cls, view: dict[str, Any], *, tags: dict[str, str] | None = None,
                  steps: dict[str, list[int]] | None = None) -> Run:
        """Build from `records.run_view` output, adding the run's tags and metric history."""
        run = cls(view)
        run["tags"] = dict(tags or {})
        run["metric_history"] = metric_history(view.get("metrics") or {},
                                               view.get("metric_steps") or {}, steps or {})
        return run

    def to_dict(self) -> dict[str, Any]:
        """A plain dict copy."""
        return dict(self)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"a Run has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Run is a record of what happened: its fields are read-only "
                             "as attributes (`run[key] = ...` changes this copy only)")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self})


def metric_history(metrics: dict[str, Any], metric_steps: dict[str, list[Any]],
                   steps: dict[str, list[int]]) -> dict[str, list[tuple[int, Any]]]:
    """(step, value) pairs of each metric: explicit step numbers where they were given for
    every value, else the values' positions."""
    out: dict[str, list[tuple[int, Any]]] = {}
    for name, last in metrics.items():
        values = list(metric_steps.get(name) or [last])
        given = steps.get(name) or []
        numbers = given if len(given) == len(values) else list(range(len(values)))
        out[name] = list(zip(numbers, values, strict=True))
    return out
