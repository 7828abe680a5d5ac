"""The package's import graph: no cycles, and arrows point down (docs/architecture.md).

Every `import`/`from ... import` in jaxserve counts, function-level (lazy) ones included: a
lazy import is still a dependency. `from package import name` points at the submodule when
`name` is one, else at the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jaxserve"
# Lower layers never import these (the library below the application and the CLI).
TOP = ("commands", "cli")  # argument handling
ABOVE = {
    "sim": ("policies", "rl", "serving", "evaluation", "gym", "research", *TOP),
    "policies": ("rl", "serving", "evaluation", "gym", "research", *TOP),
    "rl": ("serving", "evaluation", "gym", "research", *TOP),
    "models": ("sim", "policies", "rl", "serving", "evaluation", "gym", "research", *TOP),
    "evaluation": ("serving", "gym", "research", *TOP),
    "gym": ("rl", "serving", "evaluation", "research", *TOP),
    "research": ("serving", "gym", *TOP),  # experiments' helpers, above evaluation
}


def _modules() -> dict[str, Path]:
    def name(path: Path) -> str:
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    return {name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the jaxserve modules it imports (anywhere in its code)."""
    modules, graph = _modules(), {}
    for module, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                subs = {f"{node.module}.{a.name}" for a in node.names}
                found = subs & modules.keys()
                targets |= found | ({node.module} if len(found) < len(subs) else set())
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_checker_finds_a_cycle_and_an_upward_arrow():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_imports_point_down():
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if (layer := module.split(".")[1] if "." in module else "") in ABOVE
        and target.split(".")[1] in ABOVE[layer]
    ]
    assert not upward, upward
