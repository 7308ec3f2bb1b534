"""A HogQL expression subset, compiled to sqlglot for any engine.

Used where PostHog queries accept HogQL expressions: `hogql` property filters, `hogql`
breakdowns and `math_hogql` aggregations. Supported: literals, fields of the events table
(`event`, `timestamp`, `distinct_id`, `person_id`, `$session_id`, `uuid`, `properties.<key>`,
`person.properties.<key>`, `person.created_at`), arithmetic, comparisons, `LIKE/ILIKE`, `=~`,
`IN (...)`, `IS [NOT] NULL`, `AND/OR/NOT`, and a set of ClickHouse-named functions. Comparisons
follow HogQL's NULL rules: `=` and the like are false on NULL, `!=` and negations true.
"""
import re
from dataclasses import dataclass, field
from typing import Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from .context import EVENT_FIELDS, SQLContext
from .engine import case, is_not_false, is_true, paren
from .limits import ExpressionTooComplex, check_text, check_tree_depth, parse_number
from .regex import regex_problem

STRING, NUMBER, BOOL, DATETIME, UNKNOWN = "string", "number", "bool", "datetime", "unknown"


class HogQLError(ValidationError):
    pass


# --- Tokens -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<quoted>`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>==|!=|<>|<=|>=|=~|!~|\|\||[-+*/%=<>(),.\[\]])
    """,
    re.VERBOSE,
)
KEYWORDS = {"AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "IS", "NULL", "TRUE", "FALSE", "DISTINCT"}


@dataclass
class Token:
    kind: str
    value: str


def _unescape(text: str) -> str:
    body = text[1:-1]
    if text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


def tokenize(source: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if not match:
            raise HogQLError(f"Syntax error in HogQL expression at position {position}: {source[position:position + 20]!r}")
        position = match.end()
        kind = match.lastgroup
        text = match.group()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(Token("string", _unescape(text)))
        elif kind == "quoted":
            tokens.append(Token("ident", _unescape(text)))
        elif kind == "ident" and text.upper() in KEYWORDS:
            tokens.append(Token("kw", text.upper()))
        else:
            tokens.append(Token(kind, text))
    tokens.append(Token("end", ""))
    return tokens


# --- AST ----------------------------------------------------------------------------------------


@dataclass
class Node:
    kind: str  # const | field | call | binop | unary | in | isnull
    value: object = None
    args: list = field(default_factory=list)
    distinct: bool = False
    negated: bool = False


class Parser:
    COMPARISONS = {"=", "==", "!=", "<>", "<", "<=", ">", ">=", "=~", "!~"}

    def __init__(self, source: str):
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0

    def peek(self, offset=0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, kind: str, value: Optional[str] = None) -> bool:
        token = self.peek()
        if token.kind == kind and (value is None or token.value == value):
            self.index += 1
            return True
        return False

    def expect(self, kind: str, value: str) -> None:
        if not self.accept(kind, value):
            found = self.peek().value or "end of expression"
            raise HogQLError(f"Syntax error in HogQL expression {self.source!r}: expected {value!r}, found {found!r}")

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "end":
            raise HogQLError(f"Syntax error in HogQL expression {self.source!r}: unexpected {self.peek().value!r}")
        return node

    def expr(self) -> Node:
        node = self.and_()
        while self.accept("kw", "OR"):
            node = Node("binop", "OR", [node, self.and_()])
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.accept("kw", "AND"):
            node = Node("binop", "AND", [node, self.not_()])
        return node

    def not_(self) -> Node:
        if self.accept("kw", "NOT"):
            return Node("unary", "NOT", [self.not_()])
        return self.comparison()

    def comparison(self) -> Node:
        left = self.additive()
        token = self.peek()
        if token.kind == "op" and token.value in self.COMPARISONS:
            self.take()
            return Node("binop", token.value, [left, self.additive()])
        negated = False
        if token.kind == "kw" and token.value == "NOT" and self.peek(1).kind == "kw" and self.peek(1).value in ("LIKE", "ILIKE", "IN"):
            self.take()
            negated = True
            token = self.peek()
        if token.kind == "kw" and token.value in ("LIKE", "ILIKE"):
            self.take()
            return Node("binop", token.value, [left, self.additive()], negated=negated)
        if token.kind == "kw" and token.value == "IN":
            self.take()
            self.expect("op", "(")
            items = [self.expr()]
            while self.accept("op", ","):
                items.append(self.expr())
            self.expect("op", ")")
            return Node("in", None, [left, *items], negated=negated)
        if token.kind == "kw" and token.value == "IS":
            self.take()
            negated = self.accept("kw", "NOT")
            self.expect("kw", "NULL")
            return Node("isnull", None, [left], negated=negated)
        return left

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.peek().kind == "op" and self.peek().value in ("+", "-", "||"):
            node = Node("binop", self.take().value, [node, self.multiplicative()])
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().value in ("*", "/", "%"):
            node = Node("binop", self.take().value, [node, self.unary()])
        return node

    def unary(self) -> Node:
        if self.accept("op", "-"):
            return Node("unary", "-", [self.unary()])
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            try:
                return Node("const", parse_number(token.value))
            except ExpressionTooComplex as error:
                raise HogQLError(str(error)) from None
        if token.kind == "string":
            return Node("const", token.value)
        if token.kind == "kw" and token.value in ("TRUE", "FALSE"):
            return Node("const", token.value == "TRUE")
        if token.kind == "kw" and token.value == "NULL":
            return Node("const", None)
        if token.kind == "op" and token.value == "(":
            node = self.expr()
            self.expect("op", ")")
            return node
        if token.kind == "ident":
            if self.peek().kind == "op" and self.peek().value == "(":
                return self.call(token.value)
            chain = [token.value]
            while True:
                if self.accept("op", "."):
                    part = self.take()
                    if part.kind not in ("ident", "kw", "number"):
                        raise HogQLError(f"Syntax error in HogQL expression {self.source!r}: bad field name after '.'")
                    chain.append(part.value)
                elif self.accept("op", "["):
                    key = self.take()
                    if key.kind != "string":
                        raise HogQLError(f"Syntax error in HogQL expression {self.source!r}: expected a string key in [...]")
                    self.expect("op", "]")
                    chain.append(key.value)
                else:
                    return Node("field", chain)
        found = token.value or "end of expression"
        raise HogQLError(f"Syntax error in HogQL expression {self.source!r}: unexpected {found!r}")

    def call(self, name: str) -> Node:
        self.expect("op", "(")
        distinct = self.accept("kw", "DISTINCT")
        args = []
        if not self.accept("op", ")"):
            args.append(self.expr())
            while self.accept("op", ","):
                args.append(self.expr())
            self.expect("op", ")")
        node = Node("call", name, args, distinct=distinct)
        if self.peek().kind == "op" and self.peek().value == "(":  # parametric aggregate: quantile(0.9)(x)
            params = node.args
            inner = self.call(name)
            inner.value = (name, params)
            return inner
        return node


# --- Compilation --------------------------------------------------------------------------------


@dataclass
class Typed:
    sql: exp.Expression
    type: str


AGGREGATES = {"count", "uniq", "uniqexact", "sum", "avg", "min", "max", "countif", "sumif", "avgif"}


class Compiler:
    def __init__(self, context: SQLContext, *, allow_aggregates: bool = False):
        self.context = context
        self.engine = context.engine
        self.allow_aggregates = allow_aggregates
        self.in_aggregate = False

    def compile(self, node: Node) -> Typed:
        handler = getattr(self, f"_{node.kind}")
        return handler(node)

    # Fields and constants

    def _const(self, node: Node) -> Typed:
        value = node.value
        if value is None:
            return Typed(exp.null(), UNKNOWN)
        if isinstance(value, bool):
            return Typed(exp.true() if value else exp.false(), BOOL)
        if isinstance(value, (int, float)):
            return Typed(exp.Literal.number(value), NUMBER)
        return Typed(self.context.param(value), STRING)

    def _field(self, node: Node) -> Typed:
        chain = list(node.value)
        if chain[0] in ("e", "events") and len(chain) > 1:
            chain = chain[1:]
        head = chain[0]
        if head == "properties" and len(chain) == 2:
            return Typed(self.context.event_property(chain[1]), STRING)
        if head == "person" and len(chain) == 3 and chain[1] == "properties":
            return Typed(self.context.person_property(chain[2]), STRING)
        if head == "person" and len(chain) == 2 and chain[1] in ("id", "created_at"):
            return Typed(self.context.person_column(chain[1]), DATETIME if chain[1] == "created_at" else NUMBER)
        if len(chain) == 1 and head in EVENT_FIELDS and head != "properties":
            kind = {"timestamp": DATETIME, "created_at": DATETIME, "person_id": NUMBER}.get(head, STRING)
            return Typed(self.context.event_column(EVENT_FIELDS[head]), kind)
        raise HogQLError(f"Unknown field in HogQL expression: {'.'.join(str(part) for part in node.value)}")

    # Operators

    def _number(self, typed: Typed) -> exp.Expression:
        if typed.type == STRING:
            return self.engine.text_to_number(typed.sql, self.context.params)
        if typed.type == BOOL:
            return case([(typed.sql, exp.Literal.number(1))], exp.Literal.number(0))
        return typed.sql

    def _text(self, typed: Typed) -> exp.Expression:
        return typed.sql if typed.type == STRING else self.engine.to_text(typed.sql)

    def _condition(self, typed: Typed) -> exp.Expression:
        if typed.type == BOOL:
            return typed.sql
        if typed.type == NUMBER:
            return is_true(exp.NEQ(this=typed.sql, expression=exp.Literal.number(0)))
        raise HogQLError("A HogQL condition must be a comparison or a boolean expression.")

    def _binop(self, node: Node) -> Typed:
        op = node.value
        if op in ("=~", "!~") and node.args[1].kind == "const" and isinstance(node.args[1].value, str):
            problem = regex_problem(node.args[1].value)
            if problem:
                raise HogQLError(f"Invalid regular expression {node.args[1].value!r}: {problem}")
        left, right = (self.compile(arg) for arg in node.args)
        if op in ("AND", "OR"):
            cls = exp.And if op == "AND" else exp.Or
            return Typed(paren(cls(this=self._condition(left), expression=self._condition(right))), BOOL)
        if op == "%":
            raise HogQLError("The % operator is not supported in HogQL expressions.")
        if op in ("+", "-", "*", "/"):
            a, b = self._number(left), self._number(right)
            if op == "/":
                b = exp.Nullif(this=b, expression=exp.Literal.number(0))
                a = exp.Cast(this=a, to=exp.DataType.build("double"))
            cls = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}[op]
            return Typed(paren(cls(this=a, expression=b)), NUMBER)
        if op == "||":
            return Typed(paren(exp.DPipe(this=self._text(left), expression=self._text(right))), STRING)
        if op in ("LIKE", "ILIKE"):
            value = self._text(left)
            condition = (self.engine.icontains(value, right.sql) if op == "ILIKE"
                         else exp.Like(this=value, expression=right.sql))
            return Typed(is_not_false(exp.Not(this=condition)) if node.negated else is_true(condition), BOOL)
        if op in ("=~", "!~"):
            condition = self.engine.regex(self._text(left), right.sql)
            return Typed(is_not_false(exp.Not(this=condition)) if op == "!~" else is_true(condition), BOOL)
        a, b = self._comparable(left, right)
        cls = {"=": exp.EQ, "==": exp.EQ, "!=": exp.NEQ, "<>": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}[op]
        comparison = cls(this=a, expression=b)
        return Typed(is_not_false(comparison) if cls is exp.NEQ else is_true(comparison), BOOL)

    def _comparable(self, left: Typed, right: Typed) -> tuple[exp.Expression, exp.Expression]:
        if NUMBER in (left.type, right.type):
            return self._number(left), self._number(right)
        if left.type == STRING or right.type == STRING:
            return self._text(left), self._text(right)
        return left.sql, right.sql

    def _unary(self, node: Node) -> Typed:
        inner = self.compile(node.args[0])
        if node.value == "NOT":
            return Typed(paren(exp.Not(this=self._condition(inner))), BOOL)
        return Typed(paren(exp.Neg(this=self._number(inner))), NUMBER)

    def _in(self, node: Node) -> Typed:
        left, *items = (self.compile(arg) for arg in node.args)
        numeric = left.type == NUMBER or all(item.type == NUMBER for item in items)
        value = self._number(left) if numeric else self._text(left)
        values = [self._number(item) if numeric else self._text(item) for item in items]
        condition = exp.In(this=value, expressions=values)
        return Typed(is_not_false(exp.Not(this=condition)) if node.negated else is_true(condition), BOOL)

    def _isnull(self, node: Node) -> Typed:
        inner = self.compile(node.args[0])
        condition = exp.Is(this=inner.sql, expression=exp.null())
        return Typed(paren(exp.Not(this=condition) if node.negated else condition), BOOL)

    # Functions

    def _call(self, node: Node) -> Typed:
        name, parameters = node.value if isinstance(node.value, tuple) else (node.value, [])
        lowered = name.lower()
        if lowered in AGGREGATES or lowered in ("quantile", "median"):
            return self._aggregate(lowered, node, parameters)
        args = [self.compile(arg) for arg in node.args]
        handler = FUNCTIONS.get(lowered)
        if handler is None:
            raise HogQLError(f"Unsupported function in HogQL expression: {name}")
        arity = handler[1]
        if arity is not None and len(args) not in (arity if isinstance(arity, tuple) else (arity,)):
            raise HogQLError(f"Function {name} takes {arity} argument(s), got {len(args)}")
        return handler[0](self, args)

    def _aggregate(self, name: str, node: Node, parameters: list) -> Typed:
        if not self.allow_aggregates:
            raise HogQLError(f"Aggregate function {node.value if isinstance(node.value, str) else name} is not allowed here")
        if self.in_aggregate:
            raise HogQLError("Aggregate functions cannot be nested")
        self.in_aggregate = True
        try:
            args = [self.compile(arg) for arg in node.args]
        finally:
            self.in_aggregate = False
        if name == "count" and not args:
            return Typed(exp.Count(this=exp.Star()), NUMBER)
        if name in ("countif", "sumif", "avgif"):
            if len(args) != (1 if name == "countif" else 2):
                raise HogQLError(f"Wrong number of arguments for {name}")
            condition = self._condition(args[-1])
            if name == "countif":
                return Typed(exp.Sum(this=case([(condition, exp.Literal.number(1))], exp.Literal.number(0))), NUMBER)
            value = case([(condition, self._number(args[0]))])
            return Typed((exp.Sum if name == "sumif" else exp.Avg)(this=value), NUMBER)
        if len(args) != 1:
            raise HogQLError(f"{name} takes one argument")
        value = args[0]
        if name in ("uniq", "uniqexact") or (name == "count" and node.distinct):
            return Typed(exp.Count(this=exp.Distinct(expressions=[value.sql])), NUMBER)
        if name == "count":
            return Typed(exp.Count(this=value.sql), NUMBER)
        if name in ("quantile", "median"):
            raise HogQLError("quantile() and median() are not supported in HogQL aggregations; use the pXX math types")
        cls = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[name]
        inner = self._number(value) if name in ("sum", "avg") else value.sql
        return Typed(cls(this=inner), NUMBER if name in ("sum", "avg") else value.type)


def _if(compiler: Compiler, args: list[Typed]) -> Typed:
    return Typed(case([(compiler._condition(args[0]), args[1].sql)], args[2].sql), args[1].type)


def _multi_if(compiler: Compiler, args: list[Typed]) -> Typed:
    if len(args) < 3 or len(args) % 2 == 0:
        raise HogQLError("multiIf takes an odd number (3 or more) of arguments")
    pairs = [(compiler._condition(args[i]), args[i + 1].sql) for i in range(0, len(args) - 1, 2)]
    return Typed(case(pairs, args[-1].sql), args[1].type)


def _coalesce(compiler: Compiler, args: list[Typed]) -> Typed:
    kinds = {arg.type for arg in args if arg.type != UNKNOWN}
    if len(kinds) > 1:
        values = [compiler._text(arg) for arg in args]
        return Typed(exp.Coalesce(this=values[0], expressions=values[1:]), STRING)
    return Typed(exp.Coalesce(this=args[0].sql, expressions=[arg.sql for arg in args[1:]]), kinds.pop() if kinds else UNKNOWN)


def _round(compiler: Compiler, args: list[Typed]) -> Typed:
    value = compiler._number(args[0])
    digits = args[1].sql if len(args) > 1 else exp.Literal.number(0)
    return Typed(compiler.engine.round(value, digits), NUMBER)


def _substring(compiler: Compiler, args: list[Typed]) -> Typed:
    return Typed(exp.Substring(this=compiler._text(args[0]), start=compiler._number(args[1]),
                               length=compiler._number(args[2]) if len(args) > 2 else None), STRING)


def _starts(compiler: Compiler, args: list[Typed], *, ends=False) -> Typed:
    text, prefix = compiler._text(args[0]), compiler._text(args[1])
    length = exp.Length(this=prefix)
    start = (exp.Add(this=exp.Sub(this=exp.Length(this=text), expression=length), expression=exp.Literal.number(1))
             if ends else exp.Literal.number(1))
    return Typed(is_true(exp.EQ(this=exp.Substring(this=text, start=start, length=length), expression=prefix)), BOOL)


FUNCTIONS = {
    "tostring": (lambda c, a: Typed(c._text(a[0]), STRING), 1),
    "tofloat": (lambda c, a: Typed(c._number(a[0]), NUMBER), 1),
    "tofloat64": (lambda c, a: Typed(c._number(a[0]), NUMBER), 1),
    "tofloatornull": (lambda c, a: Typed(c._number(a[0]), NUMBER), 1),
    "toint": (lambda c, a: Typed(exp.Cast(this=c._number(a[0]), to=exp.DataType.build("bigint")), NUMBER), 1),
    "toint64": (lambda c, a: Typed(exp.Cast(this=c._number(a[0]), to=exp.DataType.build("bigint")), NUMBER), 1),
    "lower": (lambda c, a: Typed(exp.Lower(this=c._text(a[0])), STRING), 1),
    "upper": (lambda c, a: Typed(exp.Upper(this=c._text(a[0])), STRING), 1),
    "length": (lambda c, a: Typed(exp.Length(this=c._text(a[0])), NUMBER), 1),
    "trim": (lambda c, a: Typed(exp.Trim(this=c._text(a[0])), STRING), 1),
    "concat": (lambda c, a: Typed(_concat([c._text(arg) for arg in a]), STRING), None),
    "coalesce": (_coalesce, None),
    "ifnull": (_coalesce, 2),
    "if": (_if, 3),
    "multiif": (_multi_if, None),
    "abs": (lambda c, a: Typed(exp.Abs(this=c._number(a[0])), NUMBER), 1),
    "round": (_round, (1, 2)),
    "substring": (_substring, (2, 3)),
    "replaceall": (lambda c, a: Typed(exp.Anonymous(this="REPLACE", expressions=[c._text(x) for x in a]), STRING), 3),
    "startswith": (_starts, 2),
    "endswith": (lambda c, a: _starts(c, a, ends=True), 2),
    "empty": (lambda c, a: Typed(paren(exp.Or(this=exp.Is(this=a[0].sql, expression=exp.null()),
                                              expression=exp.EQ(this=c._text(a[0]), expression=exp.Literal.string("")))), BOOL), 1),
    "notempty": (lambda c, a: Typed(is_true(exp.NEQ(this=c._text(a[0]), expression=exp.Literal.string(""))), BOOL), 1),
    "isnull": (lambda c, a: Typed(paren(exp.Is(this=a[0].sql, expression=exp.null())), BOOL), 1),
    "isnotnull": (lambda c, a: Typed(paren(exp.Not(this=exp.Is(this=a[0].sql, expression=exp.null()))), BOOL), 1),
}


def _concat(values: list[exp.Expression]) -> exp.Expression:
    node = values[0] if values else exp.Literal.string("")
    for value in values[1:]:
        node = exp.DPipe(this=node, expression=value)
    return paren(node)


def parse(source: str) -> Node:
    """A HogQL expression's tree, within the length and depth limits (HogQLError otherwise)."""
    what = "The HogQL expression"
    try:
        check_text(source, what)
        node = Parser(source).parse()
        check_tree_depth(node, lambda item: item.args if isinstance(item, Node) else (), what)
    except ExpressionTooComplex as error:
        raise HogQLError(str(error)) from None
    except RecursionError:
        raise HogQLError(f"{what} is nested too deeply.") from None
    return node


def compile_expression(source: str, context: SQLContext, *, allow_aggregates: bool = False) -> Typed:
    if not isinstance(source, str) or not source.strip():
        raise HogQLError("The HogQL expression is empty.")
    return Compiler(context, allow_aggregates=allow_aggregates).compile(parse(source))


def compile_condition(source: str, context: SQLContext) -> exp.Expression:
    compiler = Compiler(context)
    return compiler._condition(compiler.compile(parse(source)))
