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
    follow_renames(server_app)
    setup_handlers(server_app.web_app, str(server_app.root_dir), jobs)
    server_app.log.info("mlops-nb: REST API under %smlops-nb/api/",
                        server_app.web_app.settings["base_url"])



def follow_renames(server_app: Any) -> None:
    """Tell a notebook's kernel its new path after File > Rename (see `live_path`).

    JupyterLab renames a notebook by PATCHing its session; jupyter_server has no event for
    that, so the session manager's `update_session` is wrapped on this server's instance.
    Any failure here is logged and ignored: the rename itself must always succeed.
    """
    import contextlib
    import os

    from .live_path import remove_marker, write_marker

    sm = getattr(server_app, "session_manager", None)
    if sm is None or getattr(sm, "_mlops_nb_follows_renames", False):
        return
    update, delete = sm.update_session, sm.delete_session

    async def update_session(session_id: Any, **kwargs: Any) -> Any:
        result = await update(session_id, **kwargs)
        if "path" in kwargs or "name" in kwargs:
            try:
                model = await sm.get_session(session_id=session_id)
                kernel = model.get("kernel") or {}
                path, name = model.get("path"), model.get("name")
                if kernel.get("id") and path:
                    try:
                        env = sm.get_kernel_env(path, name)
                        notebook = env["JPY_SESSION_NAME"]
                    except Exception:
                        notebook = os.path.join(str(server_app.root_dir), path)
                    conn = sm.kernel_manager.get_kernel(kernel["id"]).connection_file
                    if conn:
                        write_marker(conn, notebook)
            except Exception as exc:
                server_app.log.warning("mlops-nb: could not pass a rename to its kernel: %r",
                                       exc)
        return result

    async def delete_session(session_id: Any) -> Any:
        with contextlib.suppress(Exception):
            model = await sm.get_session(session_id=session_id)
            conn = sm.kernel_manager.get_kernel(model["kernel"]["id"]).connection_file
            if conn:
                remove_marker(conn)
        return await delete(session_id)

    sm.update_session = update_session
    sm.delete_session = delete_session
    sm._mlops_nb_follows_renames = True
