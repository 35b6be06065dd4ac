from __future__ import annotations

import pytest

from mlops_nb.capture.analysis import analyze, is_plain_literal


def test_defs_uses_in_execution_order():
    a = analyze("x = y + 1\nz = x * 2\nw = q")
    assert a.defs == ["x", "z", "w"]
    # x is used only after this cell defined it: not an input of the cell
    assert a.uses == ["y", "q"]


def test_self_referencing_assignment_is_a_use():
    a = analyze("n = n + 1")
    assert a.uses == ["n"] and a.defs == ["n"]


@pytest.mark.parametrize(
    ("code", "mutated"),
    [
        ("df.dropna(inplace=True)", "df"),
        ("hist.append(x)", "hist"),
        ("d['k'] = 1", "d"),
        ("obj.attr = 2", "obj"),
        ("total += 1", "total"),
        ("del z", "z"),
        ("del d['k']", "d"),
        ("a.b.c.method()", "a"),
        ("a[0].x = 1", "a"),
        ("model.fit(X, y)", "model"),
    ],
)
def test_mutations(code, mutated):
    a = analyze(code)
    assert mutated in a.mutations
    assert mutated in a.uses


def test_pure_calls_are_not_mutations():
    a = analyze("y = f(x)\nprint(y)")
    assert a.mutations == []
    assert set(a.uses) == {"f", "x", "print"}


def test_index_names_are_uses_not_mutations():
    a = analyze("d[key] = value")
    assert a.mutations == ["d"]
    assert {"key", "value", "d"} <= set(a.uses)


def test_imports_define_names():
    a = analyze("import numpy as np\nimport os.path\nfrom sklearn.ensemble import RandomForestClassifier as RF\nfrom m import *")
    assert a.defs == ["np", "os", "RF"]
    assert a.imports == ["numpy", "os.path", "sklearn.ensemble", "m"]
    assert a.star_imports == ["m"]


def test_literal_params():
    a = analyze(
        "lr = 0.1\nname = 'rf'\nflag = True\nnothing = None\nlayers = [64, 32]\n"
        "cfg = {'a': 1, 'b': (2, 3)}\nneg = -1e-3\na, b = 1, 2\nc: int = 5\n"
        "computed = lr * 2\n_private = 3\nobj = object()\nbig = 10**5000\n"
        "s = {1, 2}\nraw = b'x'\n"
    )
    assert a.params == {
        "lr": 0.1, "name": "rf", "flag": True, "nothing": None, "layers": [64, 32],
        "cfg": {"a": 1, "b": [2, 3]}, "neg": -1e-3, "a": 1, "b": 2, "c": 5,
    }


def test_params_only_at_top_level():
    a = analyze("if cond:\n    depth = 3\nfor i in range(2):\n    k = 1\n")
    assert a.params == {}
    assert {"depth", "k", "i"} <= set(a.defs)


def test_function_effects_follow_globals():
    a = analyze(
        "def add(v):\n    acc.append(v)\n    return v * k\n"
        "def bump():\n    global counter\n    counter += 1\n"
    )
    assert a.defs == ["add", "bump"]
    assert a.uses == []  # bodies run later, not now
    add = a.functions["add"]
    assert add.reads >= {"acc", "k"} and "v" not in add.reads
    assert add.mutates == {"acc"}
    bump = a.functions["bump"]
    assert bump.writes == {"counter"}


def test_function_locals_and_defaults():
    a = analyze("def f(x, y=default):\n    z = x + y\n    import math\n    return math.sqrt(z) + g\n")
    assert a.uses == ["default"]
    fx = a.functions["f"]
    assert fx.reads == {"g"}


def test_comprehension_and_lambda_free_names_are_uses():
    a = analyze("out = [x * k for x in items]\nf = lambda v: v + offset")
    assert set(a.uses) == {"k", "items", "offset"}
    assert "x" not in a.uses and "v" not in a.uses


def test_class_body_reads_are_uses():
    a = analyze("class M(Base):\n    scale = factor\n    def go(self):\n        return helper(self)\n")
    assert a.defs == ["M"]
    assert {"Base", "factor", "helper"} <= set(a.uses)


def test_env_magic_expansion_reads_its_names():
    a = analyze("get_ipython().run_line_magic('env', 'DATA=$root/v{n + 1}:$$HOME')\n"
                "get_ipython().run_line_magic('env', 'PLAIN=abc')")
    assert sorted(a.uses) == ["n", "root"]


def test_magics_and_python_bodies():
    code = (
        "get_ipython().run_line_magic('matplotlib', 'inline')\n"
        "get_ipython().run_cell_magic('time', '', 'y = x + 1\\n')\n"
        "get_ipython().system('pip install foo')\n"
    )
    a = analyze(code)
    assert a.magics == ["matplotlib", "time", "!"]
    assert "y" in a.defs and "x" in a.uses
    assert "get_ipython" not in a.uses and "get_ipython" not in a.mutations


def test_a_timed_or_captured_cells_literals_are_its_parameters():
    """`%%time` over a training cell, as real notebooks have it: its `lr = 0.1` is as much a
    parameter as without the magic (it was none, so runs of the cell showed no `lr`)."""
    for magic in ("time", "capture", "timeit"):
        a = analyze(f"get_ipython().run_cell_magic({magic!r}, '', "
                    "'lr = 0.1\\nname = \\'adam\\'\\nval_loss = train(lr)\\n')\n")
        assert a.params == {"lr": 0.1, "name": "adam"}, magic
    for magic in ("time", "timeit"):
        a = analyze(f"get_ipython().run_cell_magic({magic!r}, '', 'total = 0\\ntotal += 1\\n')\n")
        assert a.params == {}, magic  # an accumulator, as without the magic
    # `%%timeit` runs its body in a function: the cell reads `train` and binds nothing
    a = analyze("get_ipython().run_cell_magic('timeit', '', 'lr = 0.1\\nval_loss = train(lr)\\n')\n")
    assert a.defs == [] and "train" in a.uses and "lr" not in a.uses


def test_files_read_and_written():
    a = analyze(
        "df = pd.read_csv('data/train.csv')\ndf.to_csv('out.csv')\n"
        "with open('notes.txt', 'w') as fh:\n    fh.write('x')\n"
        "text = open('in.txt').read()\nplt.savefig('fig.png')\n"
    )
    assert a.files_read == ["data/train.csv", "in.txt"]
    assert a.files_written == ["out.csv", "notes.txt", "fig.png"]


def test_syntax_error_is_reported_not_raised():
    a = analyze("def broken(:\n")
    assert a.syntax_error and a.defs == []


def test_walrus_with_and_except():
    a = analyze("if (n := size) > 1:\n    pass\nwith ctx() as fh:\n    pass\ntry:\n    pass\nexcept E as err:\n    pass\n")
    assert {"n", "fh", "err"} <= set(a.defs)
    assert {"size", "ctx", "E"} <= set(a.uses)


def test_is_plain_literal():
    assert is_plain_literal({"a": [1, 2.0, None, "x", (True,)]})
    assert not is_plain_literal({1, 2})
    assert not is_plain_literal(b"x")
    assert not is_plain_literal([object()])


def test_mutating_what_the_cell_itself_bound_is_not_an_input():
    a = analyze("model = Model()\nmodel.fit(X)\nhist = []\nhist.append(1)\nother.append(2)")
    assert a.mutations == ["other"]
    assert "model" not in a.uses and "hist" not in a.uses
    assert set(a.defs) == {"model", "hist"}


def _reference_literal(source: str) -> tuple[bool, object]:
    """What a parameter literal is by definition: `ast.literal_eval` accepts it and the value
    is plain data; tuples read back as lists (JSON)."""
    import ast

    node = ast.parse(source, mode="eval").body
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if not is_plain_literal(value):
        return False, None

    def json_form(v: object) -> object:
        if isinstance(v, (list, tuple)):
            return [json_form(x) for x in v]
        if isinstance(v, dict):
            return {k: json_form(x) for k, x in v.items()}
        return v

    return True, json_form(value)


@pytest.mark.parametrize("source", [
    "1", "-1", "+2.5", "-0.0", "-True", "-(-1)", "not 1", "~1", "1 + 2", "1 + 2j", "-1j",
    "[1, (2, 3), {'a': [1, None]}]", "{(1, 2): 3}", "{1: 2, 1.0: 3, True: 4}", "{[1]: 2}",
    "{**x}", "{'a': None, None: 1}", "b'x'", "(1, ...)", "{1, 2}", "set()", "[1 + 2j]",
    "[x]", "{'k': f(1)}", "('a', -5, [True, False])", "[[[[]]]]", "{}", "()", "-'a'",
    "x.value", "'' ", "10 ** 3", "[-1, +1]", "{'nested': {'deep': (1, [2.5, 'x'])}}",
    "{'a': 1, 'b': x}", "[1, [2, y]]", "{None: 1}", "{1: [x]}", "(1, (2, {3: -x}))",
    "{(1, [2]): 3}", "{'a': 1, **x}", "[1, 2, {'k': (3, 4j)}]",
])
def test_literal_parameters_match_literal_eval(source):
    """The fast literal reader decides exactly as `literal_eval` + `is_plain_literal`."""
    import ast

    from mlops_nb.capture.analysis import _literal

    assert _literal(ast.parse(source, mode="eval").body) == _reference_literal(source)
    got = analyze(f"p = {source}").params
    ok, value = _reference_literal(source)
    assert got == ({"p": value} if ok else {})


@pytest.mark.parametrize(("code", "key"), [
    # constructor calls where the cell's own walk does not go: the keyword walk must still run
    ("models = [Forest(depth=3, seed=s) for s in (1, 2)]", "Forest.depth"),
    ("x: Forest(depth=3) = 1", "Forest.depth"),
    ("f(Forest(depth=3)).count += 1", "Forest.depth"),
    ("get_ipython().run_line_magic('time', Forest(depth=3))", "Forest.depth"),
    ("model = Forest(depth=3)", "model.depth"),
    ("if ok:\n    m = [Forest(depth=3)]", "Forest.depth"),
])
def test_constructor_keywords_found_wherever_they_run(code, key):
    assert analyze(code).params[key] == 3


def test_constructor_keywords_skip_code_that_does_not_run_now():
    params = analyze("f = lambda: Forest(depth=3)\ndef g():\n    return Forest(depth=4)").params
    assert params == {}


def test_a_plain_plot_name_is_never_a_parameter_callee():
    """`_param_callee` leaves a plain callee's own name out of the plot-root test: that is
    sound only while no plot root is CapWords or a parameter function."""
    import ast

    from mlops_nb.capture.analysis import PLOT_ROOTS, _param_callee, call_param_target

    assert not any(_param_callee(root, None) for root in PLOT_ROOTS)
    assert call_param_target(ast.parse("RandomForestClassifier(n_estimators=5)").body[0].value)
    assert call_param_target(ast.parse("plt.Figure(figsize=3)").body[0].value) is None


# Where constructor calls sit in real cells, and where capture's own visit and the export's
# walk (`constructor_keywords`) could part: headers and bodies that do not run now, magics,
# targets visited after their values, `a[i][j]` chains, keys found twice, nested owners.
CONSTRUCTOR_CELLS = [
    '@deco(Model(a=1))\ndef f(x=Model(b=2)) -> Model(c=3):\n    return Model(d=4)\n',
    'class A(Base(d=1), metaclass=Meta(e=2)):\n    m = Model(f=3)\n',
    'f = lambda x=Model(a=1): Model(b=2)\n',
    '%%time\nm = Model(a=1)\n',
    '%timeit Model(a=1)\nm = Model(b=2)\n',
    'd[Model(a=1)] = Model(a=2)\n',
    'd[Model(a=1)] = Model(b=2)\n',
    'x[Foo(a=1)][Bar(b=2)] = 3\n',
    'a[Foo(a=1)].b[Bar(b=2)].m(c=Baz(z=3))\n',
    'x[Foo(a=1)] += Bar(a=2)\n',
    'x[Foo(a=1)] += Bar(b=2)\n',
    'for d[Foo(a=1)] in [Bar(b=2)]:\n    pass\n',
    'model = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=1.0))\n',
    'scores = cross_val_score(RandomForestClassifier(n_estimators=10), X, y, cv=5)\n',
    "grid = GridSearchCV(SVC(kernel='rbf'), {'C': [1, 10]}, cv=3).fit(X, y)\n",
    'Model(a=1)\nModel(a=2)\n',
    'a = b = Model(x=1)\n',
    'x: int = Model(a=1)\nm = Model(b=2)\n',
    '[Model(a=i) for i in range(3)]\nm = Model(a=5)\n',
    'with Ctx(a=1) as c[Foo(b=2)]:\n    Model(c=3)\n',
    'try:\n    m = Model(a=1)\nexcept Err(b=2):\n    pass\n',
    'if cond(Model(a=1)):\n    x = Model(a=2)\n',
    "plt.plot(x, color='r')\nax.set(xlim=1)\nsns.Foo(a=1)\nplt.Figure(figsize=(3, 4))\n",
    'print(f"{Model(a=1).score(X, y)}")\n',
    'm = Model(**kw, a=1)\n',
    'del d[Foo(a=1)][Bar(b=2)]\n',
    'm = np.Foo(a=1)\nn = _Private(a=1)\no = ABC(a=1)\n',
    'x = (y := Model(a=1))\n',
    'm = Model(a=Model(b=1))\nn = Model(b=2)\n',
    'm = train_test_split(X, test_size=0.2)\nn = train_test_split(X, test_size=0.3)\n',
    'm = Model(a=1).fit(X).set_params(b=2)\n',
    "model = Pipeline([('s', Scaler(with_mean=False)), ('m', LR(C=2))])\n",
    'match x:\n    case Point(x=0):\n        Model(a=1)\n',
    'm = Model(a=1) if c else Other(b=2)\n',
    "m = {'a': Model(a=1), Foo(b=2): 3}\n",
    'obj.attr = Model(a=1)\n',
    'obj.x[Foo(a=1)], y = Bar(b=2), 3\n',
    'm.fit(X)[Foo(a=1)] = Model(a=2)\n',
    'print(Model(a=1))\nm = Model(a=2)\n',
    'm = Model(a=1)\nm.a = 3\nlr = 0.1\nModel(lr=lr, a=2)\n',
    'x = f(Model(a=1), g(Model(a=2)))\n',
    "x = Model(a=-1, b=[1, 2], c={'k': 1}, d=(1, 'x'), e=None, f=True, g=x)\n",
    "x = get_ipython().run_line_magic('time', 'Model(a=1)')\ny = Model(a=2)\n",
    'x, y = Model(a=1), Model(a=2)\n',
    'for i in range(3):\n    m = Model(a=i, b=1)\n',
    'x = Model(a=1)[Foo(b=2)]\n',
    'x = Model(a=1).y[Foo(a=2)].z(Bar(a=3))\n',
]


def _cells_of_notebooks() -> list[str]:
    from pathlib import Path

    import nbformat

    root = Path(__file__).resolve().parent.parent
    return [cell.source
            for nb in sorted([*root.glob("notebooks/*.ipynb"), *root.glob("tests/**/*.ipynb")])
            for cell in nbformat.read(nb, as_version=4).cells if cell.cell_type == "code"]


@pytest.mark.parametrize("cell", CONSTRUCTOR_CELLS + _cells_of_notebooks())
def test_capture_records_the_constructor_keywords_the_export_walk_finds(cell):
    """Capture finds constructor keywords in its one visit of the cell, falling back to the
    walk the export uses only where that visit cannot see them or sees them in another
    order; both must give the same parameters, in the same order (the first of a key wins)."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    from mlops_nb.capture.analysis import constructor_params

    tree = ast.parse(TransformerManager().transform_cell(cell))
    got = analyze(tree).params
    expected = {k: v for k, v in got.items() if "." not in k}  # the literal parameters
    for key, value in constructor_params(tree).items():
        expected.setdefault(key, value)
    assert list(got.items()) == list(expected.items())


def test_an_accumulator_the_cell_fills_is_not_a_parameter():
    """`results = {}` then `results[name] = ...` in a loop: every run showed `results={}`
    as a setting shared by all runs. A container literal the cell itself fills is not the
    run's setting, nor a number it adds to (`total = 0` then `total += score`: the runs
    showed `total=0`); one it leaves alone still is."""
    a = analyze("results = {}\nhistory = []\ncols = ['a', 'b']\nlr = 0.1\ntotal = 0\n"
                "for name in names:\n    results[name] = fit(name)\n    total += 1\n"
                "history.append(1)\n")
    assert a.params == {"cols": ["a", "b"], "lr": 0.1}
    assert {"results", "history", "total"} <= set(a.mutated_any)
