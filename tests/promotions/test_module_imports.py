"""The modules of promotions import one another without a circle; services never import the tasks."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def module_name(path: Path, root: Path) -> str:
    """Return the dotted module name of the file at `path` under `root`."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(tree: ast.Module):
    """Yield the import statements that run when the module is imported (not those inside functions)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If | ast.Try | ast.With):
            pending.extend(ast.iter_child_nodes(node))


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Return, for each module of `package` under `root`, the modules of `package` it imports at load time."""
    files = {module_name(path, root): path for path in (root / package).rglob("*.py")}
    files = {name: path for name, path in files.items() if ".migrations" not in name}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in top_level_imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            # `from package import module` imports the module itself.
            targets.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in files)
        graph[name] = {target for target in targets if target in files and target != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return each group of modules that import one another in a circle (names sorted), via Tarjan's SCC."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_check_finds_a_cycle_of_module_level_imports(tmp_path):
    package = tmp_path / "shop"
    (package / "services").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "services" / "__init__.py").write_text("")
    (package / "tasks.py").write_text("from shop.services import orders\n")
    (package / "services" / "orders.py").write_text(
        "from shop import tasks\n\ndef later():\n    from shop import views\n"
    )
    (package / "views.py").write_text("import shop.services.orders\n")
    assert import_cycles(import_graph(tmp_path, "shop")) == [["shop.services.orders", "shop.tasks"]]


def test_the_tasks_import_the_services_they_run_and_no_service_imports_the_tasks():
    graph = import_graph(ROOT, "promotions")
    assert "promotions.services.gate_execution" in graph["promotions.tasks"]
    assert [name for name, targets in graph.items() if "promotions.tasks" in targets] == []


def test_no_module_of_promotions_imports_itself_through_others():
    assert import_cycles(import_graph(ROOT, "promotions")) == []
