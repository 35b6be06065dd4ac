"""The splice that keeps the notebook's text in train.py (exporting/source.py): the cases it
handles, and the fallback when a splice does not check (ARCHITECTURE.md, "Why not LibCST")."""

from __future__ import annotations

import ast

from mlops_nb.exporting.interact import strip_interact
from mlops_nb.exporting.source import remember, render_body


def body_of(code: str) -> list[ast.stmt]:
    body = ast.parse(code).body
    remember(body, code)
    return body


def test_untouched_statements_keep_comments_blank_lines_and_number_formatting():
    code = "# the data\nrows = 50_001  # enough\n\n\nx = [1,2,   3]\n"
    assert render_body(body_of(code)) == "# the data\nrows = 50_001  # enough\n\nx = [1,2,   3]\n"


def test_an_edited_sub_expression_is_spliced_into_the_original_line():
    code = ("model = Forest(\n    n_estimators=100,  # more is slower\n"
            "    max_depth=8,\n)  # the model\n")
    body = body_of(code)
    call = body[0].value  # type: ignore[attr-defined]
    call.keywords[1].value = ast.Name("max_depth", ast.Load())
    assert render_body(body) == ("model = Forest(\n    n_estimators=100,  # more is slower\n"
                                 "    max_depth=max_depth,\n)  # the model\n")


def test_a_removed_decorator_goes_with_its_line_and_the_body_keeps_its_comments():
    code = ("@interact(depth=(1, 8))  # a slider\n@functools.cache\ndef train(depth=2):\n"
            "    # deeper fits more\n    return depth * 1_000\n")
    body = body_of(code)
    strip_interact([body])
    assert render_body(body) == ("@functools.cache\ndef train(depth=2):\n"
                                 "    # deeper fits more\n    return depth * 1_000\n")


def test_a_statement_whose_splice_does_not_check_is_generated_from_the_tree():
    code = "x = 1  # one\ny = x + 2  # kept\n"
    body = body_of(code)
    body[0] = ast.fix_missing_locations(ast.copy_location(
        ast.AugAssign(ast.Name("x", ast.Store()), ast.Add(), ast.Constant(1)), body[0]))
    out = render_body(body)
    assert out.splitlines()[0] == "x += 1"  # a new statement kind: no original text fits
    assert "y = x + 2  # kept" in out
    assert ast.dump(ast.parse(out)) == ast.dump(ast.Module(body, []))
