"""The HogQL dialect (ClickHouse with `$` identifiers, `=~`, `{placeholders}`) and parsing of queries and expressions."""
import re
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import SqlglotError
from sqlglot.generators.clickhouse import ClickHouseGenerator
from sqlglot.parsers.clickhouse import ClickHouseParser
from sqlglot.tokens import TokenType

from ..limits import MAX_EXPRESSION_DEPTH, ExpressionTooComplex, bracket_depth, check_text, shorten
from .values import SandboxError


class InCohort(exp.Expression):
    """HogQL's `person_id IN COHORT 5` / `IN COHORT 'name'` (NOT IN COHORT wraps it in NOT)."""

    arg_types = {"this": True, "expression": True}


class HogQLDialect(ClickHouse):
    """ClickHouse as HogQL writes it: `$` in identifiers, `=~`/`!~` regex operators, `{placeholders}`.

    Function names are not normalised (every call parses to an anonymous function) so that the
    compiler sees the name the user wrote and maps it through its own table.
    """

    class Tokenizer(ClickHouse.Tokenizer):
        HEREDOC_STRINGS: list = []
        SINGLE_TOKENS = {key: value for key, value in ClickHouse.Tokenizer.SINGLE_TOKENS.items() if key != "$"}
        VAR_SINGLE_TOKENS = {"$"}
        # GLOB and SIMILAR TO do not exist in HogQL: their token types carry `!~` and `!~*`.
        KEYWORDS = {
            **{key: value for key, value in ClickHouse.Tokenizer.KEYWORDS.items()
               if value not in (TokenType.GLOB, TokenType.SIMILAR_TO)},
            "=~": TokenType.RLIKE,
            "=~*": TokenType.IRLIKE,
            "!~": TokenType.GLOB,
            "!~*": TokenType.SIMILAR_TO,
        }

    class Parser(ClickHouseParser):
        FUNCTIONS: dict = {}
        FUNCTION_PARSERS = {key: value for key, value in ClickHouseParser.FUNCTION_PARSERS.items() if key == "CAST"}
        NO_PAREN_FUNCTIONS: dict = {}
        RANGE_PARSERS = {
            **ClickHouseParser.RANGE_PARSERS,
            TokenType.GLOB: lambda self, this: self.expression(
                exp.Not(this=self.expression(exp.RegexpLike(this=this, expression=self._parse_bitwise())))
            ),
            TokenType.SIMILAR_TO: lambda self, this: self.expression(
                exp.Not(this=self.expression(exp.RegexpILike(this=this, expression=self._parse_bitwise())))
            ),
        }

        def _parse_in(self, this, alias=False):
            nxt = self._next
            if (self._curr and self._curr.text.upper() == "COHORT" and nxt is not None
                    and nxt.token_type in (TokenType.NUMBER, TokenType.STRING)):
                self._advance()
                return self.expression(InCohort(this=this, expression=self._parse_primary()))
            return super()._parse_in(this, alias)

        def _parse_query_parameter(self):
            """`{filters}`, `{variables.name}`, `{name}`: HogQL placeholders."""
            index = self._index
            parts = [self._parse_id_var(any_token=False)]
            while parts[-1] is not None and self._match(TokenType.DOT):
                parts.append(self._parse_id_var(any_token=True))
            if all(part is not None for part in parts) and self._match(TokenType.R_BRACE):
                return self.expression(exp.Placeholder(this=".".join(part.name for part in parts)))
            self._retreat(index)
            return super()._parse_query_parameter()

    class Generator(ClickHouseGenerator):
        TRANSFORMS = {
            **ClickHouseGenerator.TRANSFORMS,
            InCohort: lambda self, node: f"{self.sql(node, 'this')} IN COHORT {self.sql(node, 'expression')}",
        }

        def placeholder_sql(self, expression):
            if not expression.args.get("kind"):
                return "{" + expression.name + "}"
            return super().placeholder_sql(expression)

        def if_sql(self, expression):
            args = [expression.this, expression.args.get("true"), expression.args.get("false")]
            return self.func("if", *[arg for arg in args if arg is not None])


def parse_select(sql: Any) -> exp.Expression:
    """The one SELECT (or UNION of SELECTs) of a HogQL query, or SandboxError."""
    if not isinstance(sql, str) or not sql.strip():
        raise SandboxError("The query is empty.")
    if bracket_depth(sql) > MAX_EXPRESSION_DEPTH:
        raise SandboxError("The query is nested too deeply.")
    try:
        statements = [statement for statement in sqlglot.parse(sql, dialect=HogQLDialect) if statement is not None]
    except SqlglotError as error:
        raise SandboxError(f"Syntax error in SQL query: {_first_line(error)}") from None
    if len(statements) != 1:
        raise SandboxError("Only one statement is allowed: a single SELECT query." if statements else "The query is empty.")
    statement = statements[0]
    if isinstance(statement, exp.Subquery) and not statement.args.get("alias"):
        statement = statement.this
    if not isinstance(statement, (exp.Select, exp.SetOperation)):
        raise SandboxError(f"Only SELECT queries are allowed, not {_describe(statement)}.")
    return statement


def parse_expression(sql: str) -> exp.Expression:
    """One HogQL expression (EventsQuery `select`, `where` and `orderBy` items)."""
    if not isinstance(sql, str) or not sql.strip():
        raise SandboxError("An empty expression is not allowed.")
    try:
        check_text(sql, f"The expression {shorten(sql)!r}")
        expressions = [node for node in sqlglot.parse(f"SELECT {sql}", dialect=HogQLDialect) if node is not None]
    except ExpressionTooComplex as error:
        raise SandboxError(str(error)) from None
    except SqlglotError as error:
        raise SandboxError(f"Syntax error in expression {sql!r}: {_first_line(error)}") from None
    except RecursionError:
        raise SandboxError(f"The expression {shorten(sql)!r} is nested too deeply.") from None
    select = expressions[0] if len(expressions) == 1 else None
    if not isinstance(select, exp.Select) or len(select.expressions) != 1 or set(_set_args(select)) != {"expressions"}:
        raise SandboxError(f"Not a single expression: {sql!r}")
    return select.expressions[0]


def to_hogql(node: exp.Expression) -> str:
    return node.sql(dialect=HogQLDialect, comments=False)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _set_args(node: exp.Expression) -> list[str]:
    return [key for key, value in node.args.items() if value not in (None, False, [], "")]


def _describe(node: exp.Expression) -> str:
    text = node.sql(dialect=HogQLDialect, comments=False)
    text = re.sub(r"\s+", " ", text)
    return f"`{text[:80]}{'...' if len(text) > 80 else ''}`"
