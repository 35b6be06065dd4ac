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


def _notebook(path, cell_ids, tag=None):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1") for _ in cell_ids]
    for cell, cid in zip(nb.cells, cell_ids, strict=True):
        cell["id"] = cid
    if tag is not None:  # an id that appears elsewhere than as a cell's id is not the cell's
        nb.cells[0]["metadata"]["tags"] = [tag]
    nbformat.write(nb, path)


def test_without_the_server_extension_a_renamed_notebook_is_found_by_its_cell_id(tmp_path):
    conn = tmp_path / "runtime" / "kernel-abc.json"  # a kernel, but no marker is ever written
    conn.parent.mkdir()
    conn.write_text("{}")
    first = tmp_path / "first.ipynb"
    _notebook(first, ["c-1", "c-2"])
    _notebook(tmp_path / "other.ipynb", ["c-9"], tag="c-2")
    os.utime(tmp_path / "other.ipynb", ns=(2 * 10**18, 2 * 10**18))  # the newest file
    live = LivePath(str(first), str(conn))
    assert live.get("c-2") == str(first)  # still there: no search
    first.rename(tmp_path / "renamed.ipynb")  # File > Rename with the extension disabled
    assert live.get("c-2") == str(tmp_path / "renamed.ipynb")
    assert live.get() == str(tmp_path / "renamed.ipynb")  # remembered for calls without an id
    # a second rename is followed the same way
    (tmp_path / "renamed.ipynb").rename(tmp_path / "again.ipynb")
    assert live.get("c-1") == str(tmp_path / "again.ipynb")


def test_a_cell_not_saved_yet_is_searched_again_after_a_save(tmp_path):
    first = tmp_path / "first.ipynb"
    _notebook(first, ["c-1"])
    live = LivePath(str(first))
    first.rename(tmp_path / "renamed.ipynb")
    assert live.get("c-new") == str(first)  # not on disk anywhere: the known path stays
    _notebook(tmp_path / "renamed.ipynb", ["c-1", "c-new"])  # the notebook is saved
    st = os.stat(tmp_path)
    os.utime(tmp_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert live.get("c-new") == str(tmp_path / "renamed.ipynb")


def test_of_two_copies_holding_the_cell_the_newest_wins(tmp_path):
    first = tmp_path / "first.ipynb"
    _notebook(first, ["c-1"])
    live = LivePath(str(first))
    first.unlink()
    _notebook(tmp_path / "old-copy.ipynb", ["c-1"])
    _notebook(tmp_path / "new-name.ipynb", ["c-1"])
    st = os.stat(tmp_path / "old-copy.ipynb")
    os.utime(tmp_path / "old-copy.ipynb", ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))
    assert live.get("c-1") == str(tmp_path / "new-name.ipynb")
