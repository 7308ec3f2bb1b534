"""Dependencies point down: the insights app never imports the apps that stand on it."""
import ast
from pathlib import Path

import insights

ABOVE_INSIGHTS = ("sharing", "alerts", "insights_api")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_insights_imports_no_app_above_it():
    root = Path(insights.__file__).parent
    offending = {
        str(path.relative_to(root)): sorted(m for m in imported_modules(path) if m.split(".")[0] in ABOVE_INSIGHTS)
        for path in root.rglob("*.py")
    }
    assert {path: modules for path, modules in offending.items() if modules} == {}
