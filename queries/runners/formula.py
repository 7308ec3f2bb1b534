"""Trends formulas: arithmetic over series referred to by letters (A = first series, B = second...).

Evaluated element-wise over equally long lists of numbers; division by zero gives 0.
"""
import ast
import operator
from typing import Sequence

from rest_framework.exceptions import ValidationError

from ..sql.limits import ExpressionTooComplex, check_number, check_text, check_tree_depth, shorten

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: None}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _invalid(formula: str, reason: str) -> ValidationError:
    return ValidationError(f"Invalid formula {formula!r}: {reason}")


def parse_formula(formula: str, series_count: int) -> ast.Expression:
    try:
        check_text(formula, "The formula")
        tree = ast.parse(formula.strip(), mode="eval")
        check_tree_depth(tree, ast.iter_child_nodes, "The formula")
    except ExpressionTooComplex as error:
        raise ValidationError(str(error)) from None
    except (SyntaxError, ValueError):
        raise _invalid(shorten(formula, 200), "syntax error") from None
    except (RecursionError, MemoryError):
        raise ValidationError("The formula is nested too deeply.") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load, ast.operator, ast.unaryop)):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            continue
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            try:
                check_number(float(node.value), str(node.value))
            except (ExpressionTooComplex, OverflowError):
                raise ValidationError(f"The number {shorten(str(node.value))} is out of range.") from None
            continue
        if isinstance(node, ast.Name) and len(node.id) == 1 and node.id.isalpha():
            index = ord(node.id.upper()) - ord("A")
            if index >= series_count:
                raise _invalid(formula, f"there is no series {node.id.upper()}")
            continue
        raise _invalid(formula, "only series letters, numbers, + - * / and parentheses are allowed")
    return tree


def evaluate(tree: ast.Expression, series: Sequence[Sequence[float]]) -> list[float]:
    length = len(series[0]) if series else 0

    def value(node) -> list[float]:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant):
            return [float(node.value)] * length
        if isinstance(node, ast.Name):
            return [float(v) for v in series[ord(node.id.upper()) - ord("A")]]
        if isinstance(node, ast.UnaryOp):
            return [_UNARY[type(node.op)](v) for v in value(node.operand)]
        left, right = value(node.left), value(node.right)
        if isinstance(node.op, ast.Div):
            return [a / b if b else 0.0 for a, b in zip(left, right)]
        return [_BINARY[type(node.op)](a, b) for a, b in zip(left, right)]

    return value(tree)
