"""The package layout: imports run one way (cli → web/preview → stages → core), no cycles.

Every ``import`` of every module under ``src/pressroom`` is read with ``ast`` (top-level and
function-local alike: a lazy import is still an arrow), and each arrow between two of our
packages must be in ``ALLOWED``. Module-level cycles are checked on the imports that run at
import time (top level, outside ``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pressroom"

CORE = "core"  # config, defaults, errors, models, registry (and the package __init__)
# settings: how config.yaml and every source's and provider's settings are read and checked
# (split out of config.py, which had grown past 750 lines; still the core, imports only core);
# textpolicy: the one text policy for all outside text (articles, imports, forms); answers:
# how any HTTP answer from outside is read (a size limit and a deadline)
CORE_MODULES = {
    "config",
    "defaults",
    "errors",
    "models",
    "registry",
    "settings",
    "textpolicy",
    "answers",
    "__init__",
}

# package → the packages it may import (besides itself). This table is the architecture.
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    "content": {CORE},
    # feed items may carry the digest's first support block (feeds.cta); digest never reads feeds
    "feeds": {CORE, "content", "digest"},
    "digest": {CORE, "content"},
    "audience": {CORE},
    "delivery": {CORE, "content", "digest", "audience"},
    "preview": {CORE, "content", "digest", "audience", "delivery"},
    "web": {CORE, "content", "digest", "audience", "delivery"},
    "cli": {CORE, "content", "feeds", "digest", "audience", "delivery", "preview", "web"},
}
# finer rules inside a package: module prefix → packages it must not import
FORBIDDEN_WITHIN: dict[str, set[str]] = {
    "delivery.providers": {"digest"},  # adapters fill parts through models.Personaliser
}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_of(module: str) -> str:
    head = module.split(".")[0] if module else "__init__"
    if head in CORE_MODULES or module == "":
        return CORE
    return head


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports_of(path: Path, module: str, *, runtime_only: bool) -> set[str]:
    """Our modules that ``module`` imports (``pressroom.x.y`` → ``x.y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def lazy(node: ast.AST) -> bool:
        """An import that does not run at import time: type-only, or inside a function."""
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
        return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if runtime_only and lazy(child):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == "pressroom" or alias.name.startswith("pressroom."):
                        found.add(alias.name.removeprefix("pressroom").lstrip("."))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    own = module.split(".") if is_pkg else module.split(".")[:-1]
                    own = own[: len(own) - (child.level - 1)]
                    base = ".".join([*own, base] if base else own)
                    full = "pressroom." + base if base else "pressroom"
                else:
                    full = base
                if full == "pressroom" or full.startswith("pressroom."):
                    target = full.removeprefix("pressroom").lstrip(".")
                    for alias in child.names:
                        sub = f"{target}.{alias.name}" if target else alias.name
                        found.add(sub if sub in ALL else target)
            visit(child)

    visit(tree)
    found.discard(module)
    return found


ALL = set(modules())


def test_the_tree_has_no_stage_module_at_the_top() -> None:
    top = {p.stem for p in SRC.glob("*.py")}
    assert top <= CORE_MODULES, f"only the core sits at the top of src/pressroom: {top}"
    for pkg in {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}:
        assert pkg in ALLOWED, f"package {pkg} is missing from the ALLOWED table"


def test_imports_run_one_way() -> None:
    wrong = []
    for module, path in modules().items():
        src_pkg = package_of(module)
        for target in imports_of(path, module, runtime_only=False):
            dst_pkg = package_of(target)
            if dst_pkg != src_pkg and dst_pkg not in ALLOWED[src_pkg]:
                wrong.append(
                    f"{module} → {target} ({src_pkg} may import {sorted(ALLOWED[src_pkg])})"
                )
            for prefix, banned in FORBIDDEN_WITHIN.items():
                if (module == prefix or module.startswith(prefix + ".")) and dst_pkg in banned:
                    wrong.append(f"{module} → {target} ({prefix} must not import {banned})")
    assert not wrong, "imports that run the wrong way:\n" + "\n".join(wrong)


def test_the_package_graph_is_acyclic() -> None:
    # the table itself must be a DAG, or "one way" means nothing
    seen: dict[str, int] = {}

    def dfs(pkg: str, stack: list[str]) -> None:
        if seen.get(pkg) == 1:
            pytest.fail("cycle in ALLOWED: " + " → ".join([*stack, pkg]))
        if seen.get(pkg) == 2:
            return
        seen[pkg] = 1
        for nxt in ALLOWED[pkg]:
            dfs(nxt, [*stack, pkg])
        seen[pkg] = 2

    for pkg in ALLOWED:
        dfs(pkg, [])


def test_no_import_cycle_between_modules() -> None:
    graph = {m: imports_of(p, m, runtime_only=True) & ALL for m, p in modules().items()}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def dfs(m: str, stack: list[str]) -> None:
        state[m] = 1
        for nxt in sorted(graph.get(m, ())):
            if nxt.startswith(m + "."):
                continue  # a package importing its own submodule is not a cycle
            if state.get(nxt) == 1:
                cycles.append(
                    " → ".join([*stack[stack.index(nxt) :], nxt]) if nxt in stack else nxt
                )
            elif state.get(nxt) is None:
                dfs(nxt, [*stack, nxt])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_a_wrong_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pressroom.cli import main\n")
    assert imports_of(bad, "content.bad", runtime_only=False) == {"cli"}
    assert "cli" not in ALLOWED["content"]
    rel = tmp_path / "x.py"
    rel.write_text("from ..delivery import ledger\n")
    assert imports_of(rel, "web.x", runtime_only=False) == {"delivery.ledger"}
    typed = tmp_path / "typed.py"
    typed.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pressroom.cli\n"
    )
    assert imports_of(typed, "digest.typed", runtime_only=False) == {"cli"}
    assert imports_of(typed, "digest.typed", runtime_only=True) == set()
