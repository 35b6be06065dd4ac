"""The Jupyter server extension: the REST API the JupyterLab panel talks to.

Enabled by `etc/jupyter/jupyter_server_config.d/mlops_nb.json`, shipped in the wheel.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_nb.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from .handlers import setup_handlers
    from .jobs import JobManager

    jobs = JobManager()
    setup_handlers(server_app.web_app, str(server_app.root_dir), jobs)
    server_app.log.info("mlops-nb: REST API under %smlops-nb/api/",
                        server_app.web_app.settings["base_url"])

