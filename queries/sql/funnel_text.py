"""SQL text helpers of the funnel statements (queries.sql.funnels and its array form)."""
import sqlglot
from sqlglot import exp

# Events are ordered by `pos = microseconds * ORDER_SLOTS + slot` (see queries.sql.funnels).
ORDER_SLOTS = 32


class Text:
    """SQL text with embedded sqlglot subtrees: `part()` names a subtree, `tree()` parses and splices."""

    def __init__(self):
        self.parts: dict[str, exp.Expression] = {}

    def part(self, node: exp.Expression) -> str:
        name = f"__part{len(self.parts)}"
        self.parts[name] = node
        return name

    def tree(self, text: str) -> exp.Expression:
        parsed = sqlglot.parse_one(text)
        for node in parsed.find_all(exp.Div):
            # Every division in these templates divides integers and means integer division.
            node.set("typed", True)

        def splice(node):
            if isinstance(node, (exp.Column, exp.Table)) and not node.args.get("table") and node.name in self.parts:
                return self.parts[node.name].copy()
            return node

        return parsed.transform(splice)


def flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def any_of(conditions: list[str]) -> str:
    return "(" + " OR ".join(conditions) + ")" if conditions else "(1 = 0)"


def comma_list(items: list[str]) -> str:
    return ", ".join(items)
