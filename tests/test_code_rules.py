"""Code rules of the package, read from its source (issue 15).

- No function over 80 lines: from its ``def`` line to the end of its body, docstring, blank lines,
  comments and nested functions included (the lines of the definition as an editor shows them).
- Imports at the top of modules: an import inside a function is allowed only for the optional
  and heavy dependencies listed in ``LAZY_IMPORTS`` (and in docs/architecture.md).

``PENDING_LONG``, ``PENDING_SPLIT`` and ``PENDING_LAZY`` name modules and functions being
rewritten (issue 15): they shrink to empty as those rewrites land. Each rule is also checked on
code built here, so it can fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 80

#: Modules being rewritten: their long functions are split then. Remove a module once it passes.
PENDING_LONG: frozenset[str] = frozenset()
#: Functions ("module.name") being split: removed from here once they pass.
PENDING_SPLIT: frozenset[str] = frozenset()
#: Modules being rewritten: their imports inside functions move to the top then.
PENDING_LAZY: frozenset[str] = frozenset()

#: (module, top-level package imported inside a function): optional dependencies (ImportError
#: becomes a message naming the extra to install) and heavy ones loaded only when used.
LAZY_IMPORTS: frozenset[tuple[str, str]] = frozenset({
    ("db", "sqlalchemy"),  # optional: the [db] extra
    ("db", "geoalchemy2"),  # optional: the [db] extra
    ("db", "psycopg"),  # optional: the [db] extra
    ("batch", "distributed"),  # optional: the [dask] extra (--dask, --scheduler)
    ("classes", "mapclassify"),  # heavy (imports scipy.stats, pandas io); only for choropleths
    ("classes", "sklearn"),  # heavy; only for the k-means classification scheme
    ("streets", "osmnx"),  # heavy (~1 s); only for .graphml files and downloads
    ("target", "matplotlib"),  # heavy (~0.5 s); only for the choropleth PNG
})


def _modules() -> dict[str, Path]:
    found = {p.stem: p for p in (ROOT / "knockin_geo").glob("*.py")}
    found |= {f"cli/{p.stem}": p for p in (ROOT / "cli").glob("*.py")}
    return found


def _lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the ``def`` line to the last line of the body (decorators not counted)."""
    return fn.end_lineno - fn.lineno + 1  # type: ignore[operator]


def long_functions(source: str) -> list[tuple[str, int]]:
    """(name, lines) of every function, method or nested function longer than MAX_LINES."""
    return [
        (node.name, _lines(node))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _lines(node) > MAX_LINES
    ]


def inner_imports(source: str) -> list[tuple[str, int]]:
    """(top-level package, line) of every import inside a function."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True)
            elif in_function and isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], child.lineno) for a in child.names)
            elif in_function and isinstance(child, ast.ImportFrom):
                module = "." * child.level + (child.module or "")
                found.append((module.split(".")[0] or module, child.lineno))
            else:
                visit(child, in_function)

    visit(ast.parse(source), False)
    return found


def test_no_function_over_80_lines() -> None:
    too_long = {
        f"{m}.{name}": n
        for m, p in _modules().items()
        if m not in PENDING_LONG
        for name, n in long_functions(p.read_text(encoding="utf-8"))
        if f"{m}.{name}" not in PENDING_SPLIT
    }
    assert too_long == {}


def test_imports_at_the_top_except_listed_lazy_ones() -> None:
    misplaced = [
        f"{p.relative_to(ROOT)}:{line} imports {package}"
        for m, p in _modules().items()
        if m not in PENDING_LAZY
        for package, line in inner_imports(p.read_text(encoding="utf-8"))
        if (m, package) not in LAZY_IMPORTS
    ]
    assert misplaced == []


def test_every_listed_lazy_import_is_used_and_documented() -> None:
    modules = _modules()
    used = {
        (m, package)
        for m, p in modules.items()
        for package, _ in inner_imports(p.read_text(encoding="utf-8"))
    }
    assert used >= LAZY_IMPORTS, "stale entries: remove them from LAZY_IMPORTS and the docs"
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## Imports inside functions", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(\w+)\.py`: `(\w+)`", section))
    assert documented == set(LAZY_IMPORTS)


def test_pending_lists_name_existing_modules() -> None:
    modules = _modules()
    assert set(modules) >= (PENDING_LONG | PENDING_LAZY)
    functions = {
        f"{m}.{node.name}"
        for m, p in modules.items()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert functions >= PENDING_SPLIT


def test_the_rules_find_what_they_forbid() -> None:
    def lines(n: int, indent: str) -> str:
        return "".join(f"{indent}x{i} = {i}\n" for i in range(n))

    src = (  # long: def, 4 docstring lines, a blank line and a comment count; outer: its inner def
        f'def long():\n    """Doc.\n\n    More.\n    """\n{lines(MAX_LINES - 7, "    ")}'
        "\n    # a comment\n    return 1\n"
        f'def fine():\n    """Doc."""\n{lines(MAX_LINES - 2, "    ")}'
        "class K:\n    def outer(self):\n        def inner():\n            return 1\n\n"
        f"{lines(MAX_LINES - 4, '        ')}        return inner\n"
        "import os\n"
        "def f():\n    import json\n    from knockin_geo.io import read_addresses\n"
        "    from . import schema\n    return json, os\n"
        "class C:\n    def m(self):\n        import numpy\n        return numpy\n"
    )
    assert long_functions(src) == [("long", MAX_LINES + 1), ("outer", MAX_LINES + 1)]
    found = inner_imports(src)
    assert [package for package, _ in found] == ["json", "knockin_geo", ".", "numpy"]
    assert all(" import " in src.splitlines()[line - 1] for _, line in found)


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = next(ln for ln in readme.splitlines() if '-e ".[test]"' in ln)
    ci_command = next(ln for ln in ci.splitlines() if '-e ".[test]"' in ln)
    assert "mypy knockin_geo" in ci_command
    assert command == f"python3 -m venv .venv && {ci_command}"


def private_imports(source: str) -> list[tuple[str, str]]:
    """(module, name) of every private name imported from a module of the package.

    ``from knockin_geo.io import _decode`` is one; the package's private modules themselves
    (``from knockin_geo import _atomic``, ``from knockin_geo._errors import InputError``) are not.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("knockin_geo"):
            found += [(str(node.module), a.name) for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")
                      and node.module != "knockin_geo"]
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    used = {name: private_imports(path.read_text(encoding="utf-8"))
            for name, path in sorted(_modules().items())}
    assert {k: v for k, v in used.items() if v} == {}
    # the rule on code built here
    src = ("from knockin_geo.io import _decode, read_text\nfrom knockin_geo import _atomic\n"
           "from knockin_geo._errors import InputError\nfrom knockin_geo import __version__\n")
    assert private_imports(src) == [("knockin_geo.io", "_decode")]
