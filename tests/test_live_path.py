"""The kernel side of "File > Rename": the path the server extension writes beside the
kernel's connection file wins over the one the kernel started with, and is re-read only when
the file changes."""

from __future__ import annotations

import os

from mlops_nb.server.live_path import LivePath, marker_for, remove_marker, write_marker


def test_the_marker_wins_and_follows_each_rename(tmp_path):
    conn = tmp_path / "kernel-abc.json"
    conn.write_text("{}")
    live = LivePath("/root/first.ipynb", str(conn))
    assert live.get() == "/root/first.ipynb"  # no rename yet
    write_marker(conn, "/root/second.ipynb")
    assert marker_for(conn) == tmp_path / "kernel-abc.mlops-nb-path"
    assert live.get() == "/root/second.ipynb"
    write_marker(conn, "/root/sub/third.ipynb")
    st = marker_for(conn).stat()
    os.utime(marker_for(conn), ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert live.get() == "/root/sub/third.ipynb"
    remove_marker(conn)
    assert live.get() == "/root/sub/third.ipynb"  # the last known path, not the stale start


def test_a_broken_marker_never_breaks_the_kernel(tmp_path):
    conn = tmp_path / "kernel-x.json"
    marker_for(conn).write_text("{not json")
    assert LivePath("/root/a.ipynb", str(conn)).get() == "/root/a.ipynb"
    marker_for(conn).write_text('{"notebook": 3}')
    assert LivePath("/root/a.ipynb", str(conn)).get() == "/root/a.ipynb"
    assert LivePath(None).get() is None  # plain IPython: no kernel, no marker
