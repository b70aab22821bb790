"""The package's layout: families in folders, no import cycles, rendering free of Redis and
the client, the Redis side free of drawing code, and no giant module or class."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "itam_tgstats"
FAMILIES = ("telegram", "render", "store", "commands")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """Every module a module imports (ours by full name, others by top-level name), at its
    top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("itam_tgstats"):
                # `from itam_tgstats.render import cards` imports the module `cards`, and the
                # package only when it names something else
                named = {f"{node.module}.{a.name}" for a in node.names}
                found |= named & MODULES.keys()
                if named - MODULES.keys():
                    found.add(node.module)
            else:
                found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {
                a.name if a.name.startswith("itam_tgstats") else a.name.split(".")[0]
                for a in node.names
            }
    return found - {""}


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def test_each_family_has_a_folder_with_a_one_line_job() -> None:
    for family in FAMILIES:
        init = PACKAGE / family / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, family
        assert len(doc.splitlines()[0]) <= 100
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == sorted(
        ["__init__", "__main__", "cli", "collect", "config", "errors", "escapes", "models",
         "runner"]
    )  # fmt: skip


def test_no_two_modules_import_each_other() -> None:
    graph = {m: {i for i in imports if i in MODULES} for m, imports in GRAPH.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, set()) - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    # A package's __init__ importing its own modules is how it hands them on, not a cycle.
    cycles = [m for m in graph if MODULES[m].name != "__init__.py" and reaches(m, m, set())]
    assert cycles == []


def family_imports(family: str) -> set[str]:
    return {
        i for m, imports in GRAPH.items() if m.startswith(f"itam_tgstats.{family}") for i in imports
    }


def test_rendering_imports_neither_redis_nor_the_client() -> None:
    imports = family_imports("render")
    assert "redis" not in imports
    assert not {i for i in imports if i.startswith(("itam_tgstats.telegram", "itam_tgstats.store"))}
    assert not {
        i for i in imports if i.startswith(("itam_tgstats.commands", "itam_tgstats.collect"))
    }


def test_the_data_side_never_imports_the_drawing_side() -> None:
    for family in ("store", "telegram", "render"):
        imports = family_imports(family)
        assert not {"rich", "typer"} & imports, family
        assert not {i for i in imports if i.startswith("itam_tgstats.commands")}, family
    assert "itam_tgstats.commands.dashboard" not in GRAPH["itam_tgstats.commands.show"]
    assert "itam_tgstats.commands.show" in GRAPH["itam_tgstats.commands.dashboard"]


def test_no_module_over_400_lines_nor_class_over_250() -> None:
    for name, path in MODULES.items():
        source = path.read_text()
        assert len(source.splitlines()) <= 400, name
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                length = (node.end_lineno or 0) - node.lineno + 1
                assert length <= 250, f"{name}.{node.name}: {length} lines"
