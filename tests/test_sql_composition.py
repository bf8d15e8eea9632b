"""No value is formatted into SQL text under ``api/`` and ``store/`` (a lint over the syntax trees).

SQL text is built only from string constants, ``psycopg.sql`` composition (``sql.SQL(...).format``
with ``sql.Identifier``/``sql.Placeholder``) and bound parameters. The checks:

* what reaches ``sql.SQL(...)``, ``execute``/``executemany``/``copy`` as SQL text contains no
  f-string, ``%``-formatting, ``str.format`` or ``+`` of text with a value, neither directly
  nor through a local variable assigned such an expression;
* every ``sql.Literal(...)`` (a value written into the text, quoted by psycopg) is one of the
  server constants listed in :data:`LITERALS`: names from the entity model and from
  ``schemas/quality.yaml``, never anything a request carries;
* every ``sql.SQL(...)`` of something other than a string constant is one of the choices among
  the code's constants listed in :data:`SQL_TEXT` (operator tables, casts, templates).

A new entry in either list needs the reason it is a server constant.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "store")
SQL_SINKS = {"SQL"}  # sql.SQL / SQL
EXECUTE_SINKS = {"execute", "executemany", "copy"}

# (file, enclosing function, argument source) -> count: the only sql.Literal uses, each a server constant
LITERALS: Counter[tuple[str, str, str]] = Counter(
    {
        # quality flag names and bits, from schemas/quality.yaml
        ("api/sta/entities.py", "_result_quality", "names"): 1,
        ("api/sta/entities.py", "_result_quality", "[bits[n] for n in names]"): 1,
        # jsonb_typeof names for the wanted type (a dict of constants)
        ("api/sta/expressions.py", "as_type", "jtype"): 1,
        # JSON keys, link suffixes and punctuation from the entity model (api/sta/entities.py);
        # pieces holding a request's values are bound instead (_JsonText.const(bound=True))
        ("api/sta/translate.py", "compose", "part[0]"): 1,
        # aggregate function names, checked against the extension's list
        ("store/aggregates.py", "aggregate_json", "f"): 1,
        # the benchmark's table names (constants of the loader)
        ("store/bench_data.py", "load", "table"): 1,
        # the statement timeout, an int from the code
        ("store/sta.py", "configure_connection", "int(statement_timeout_ms)"): 1,
    }
)

# (file, enclosing function, argument source) -> count: sql.SQL(...) of something other than a string
# constant; each is a choice among constants of the code (operator and function tables, casts)
SQL_TEXT: Counter[tuple[str, str, str]] = Counter(
    {
        ("api/sta/expressions.py", "add", "cast"): 1,  # a cast the translator names (text, bigint ...)
        ("api/sta/expressions.py", "as_type", "cast"): 1,  # from a dict of casts
        ("api/sta/expressions.py", "as_type", "_SQL_TYPE[want]"): 1,
        ("api/sta/expressions.py", "arith", "_ARITH[node.op]"): 3,  # operator table
        ("api/sta/expressions.py", "boolean", "node.op.upper()"): 1,  # "and"/"or", checked just above
        ("api/sta/expressions.py", "_two_valued_compare", "_CMP[op]"): 1,  # operator table
        ("api/sta/expressions.py", "handler", "variant"): 1,  # _FUNCTIONS templates
        ("api/sta/expressions.py", "handler", "template"): 2,
        ("api/sta/expressions.py", "_geo_function", "binary[name]"): 1,  # PostGIS function table
        ("api/sta/routes.py", "plan_request", "query.statement.as_string(None)"): 1,  # composed, rendered once
        ("store/aggregates.py", "_bucket_expr", "template"): 1,  # bucket templates per backend
        ("store/aggregates.py", "_raw_aggregate", "name"): 1,  # aggregate names checked by the request parser
        ("store/aggregates.py", "_hourly_aggregate", "name"): 2,
    }
)


def _is_text_formatting(node: ast.AST) -> bool:
    """An expression that builds text from values in Python."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return isinstance(node.left, ast.Constant | ast.JoinedStr) and isinstance(node.left.value, str)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return any(_is_text(side) for side in (node.left, node.right)) and not all(
            isinstance(side, ast.Constant) for side in (node.left, node.right)
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)
    return False


def _is_text(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr)


def _formatted(node: ast.AST, tainted: set[str]) -> ast.AST | None:
    """The first sub-expression of ``node`` that formats text, or a local assigned one."""
    for sub in ast.walk(node):
        if _is_text_formatting(sub):
            return sub
        if isinstance(sub, ast.Name) and sub.id in tainted:
            return sub
    return None


def _static(node: ast.AST) -> bool:
    """A string constant, or a choice between them."""
    if isinstance(node, ast.IfExp):
        return _static(node.body) and _static(node.orelse)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_sql_call(call: ast.Call, name: str) -> bool:
    """``sql.<name>(...)``."""
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == name
        and isinstance(func.value, ast.Name)
        and (func.value.id == "sql")
    )


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.source = source
        self.scopes: list[str] = ["<module>"]
        self.tainted: list[set[str]] = [set()]
        self.problems: list[str] = []
        self.literals: Counter[tuple[str, str, str]] = Counter()
        self.sql_text: Counter[tuple[str, str, str]] = Counter()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append(node.name)
        # locals assigned text built in Python (whatever later use they have)
        tainted = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign | ast.AnnAssign | ast.AugAssign) and sub.value is not None:
                targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                extended = isinstance(sub, ast.AugAssign) and not (
                    isinstance(sub.value, ast.Constant) and isinstance(sub.value.value, str)
                )
                if _is_text_formatting(sub.value) or extended:
                    tainted |= {t.id for t in targets if isinstance(t, ast.Name)}
        self.tainted.append(tainted)
        self.generic_visit(node)
        self.tainted.pop()
        self.scopes.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee(node)
        where = f"{self.path}:{node.lineno} ({self.scopes[-1]})"
        if name in SQL_SINKS | EXECUTE_SINKS and node.args:
            found = _formatted(node.args[0], self.tainted[-1])
            if found is not None:
                self.problems.append(f"{where}: SQL text built in Python: {ast.get_source_segment(self.source, found)}")
        if _is_sql_call(node, "SQL") and node.args and not _static(node.args[0]):
            self.sql_text[(self.path, self.scopes[-1], ast.get_source_segment(self.source, node.args[0]) or "")] += 1
        if _is_sql_call(node, "Literal") and node.args:
            argument = ast.get_source_segment(self.source, node.args[0]) or ""
            self.literals[(self.path, self.scopes[-1], argument)] += 1
        self.generic_visit(node)


def _check(path: Path) -> _Checker:
    source = path.read_text(encoding="utf-8")
    checker = _Checker(path.relative_to(ROOT).as_posix(), source)
    checker.visit(ast.parse(source, filename=str(path)))
    return checker


def _files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_sql_text_is_formatted_in_python() -> None:
    problems = [p for path in _files() for p in _check(path).problems]
    assert problems == []


def test_sql_literals_are_only_the_listed_server_constants() -> None:
    found: Counter[tuple[str, str, str]] = Counter()
    for path in _files():
        found += _check(path).literals
    unlisted = found - LITERALS
    assert not unlisted, f"sql.Literal of something not known to be a server constant: {sorted(unlisted)}"
    assert not LITERALS - found, f"listed but gone (update the list): {sorted(LITERALS - found)}"


def test_sql_text_is_constant_or_a_listed_choice_of_constants() -> None:
    found: Counter[tuple[str, str, str]] = Counter()
    for path in _files():
        found += _check(path).sql_text
    unlisted = found - SQL_TEXT
    assert not unlisted, f"sql.SQL of something that is not a string constant: {sorted(unlisted)}"
    assert not SQL_TEXT - found, f"listed but gone (update the list): {sorted(SQL_TEXT - found)}"


def test_the_checker_catches_what_it_is_for(tmp_path: Path) -> None:
    """Each way of formatting a value into SQL text is reported (the lint can fail)."""
    bad = {
        'sql.SQL(f"SELECT {x}")': "f-string",
        'sql.SQL("SELECT %s" % x)': "percent",
        'sql.SQL("SELECT {}".format(x))': "str.format",
        'sql.SQL("SELECT " + x)': "concatenation",
        'conn.execute(f"SELECT {x}")': "execute f-string",
        'cur.executemany("INSERT " + x, rows)': "executemany concatenation",
        'text = f"SELECT {x}"\n    conn.execute(text)': "through a local",
        'text = "SELECT "\n    text += x\n    cur.execute(sql.SQL(text))': "augmented",
    }
    for code, label in bad.items():
        path = tmp_path / "api" / "case.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"def f(conn, cur, x, rows):\n    {code}\n", encoding="utf-8")
        checker = _Checker("api/case.py", path.read_text(encoding="utf-8"))
        checker.visit(ast.parse(path.read_text(encoding="utf-8")))
        assert checker.problems, label
    good = (
        'def f(conn, x):\n    conn.execute(sql.SQL("SELECT {} FROM t WHERE a = %s").format(sql.Identifier(x)), (x,))\n'
    )
    checker = _Checker("api/case.py", good)
    checker.visit(ast.parse(good))
    assert checker.problems == []
    literal = "def f(x):\n    return sql.SQL(x).format(sql.Literal(x))\n"
    checker = _Checker("api/case.py", literal)
    checker.visit(ast.parse(literal))
    assert checker.literals == Counter({("api/case.py", "f", "x"): 1})
    assert checker.sql_text == Counter({("api/case.py", "f", "x"): 1})
    assert checker.literals - LITERALS and checker.sql_text - SQL_TEXT  # not listed: reported
