"""A model's SQL conditions compiled to Python: `ConditionCompiler.compile(sql)` parses a boolean expression over
`<col>_l` / `<col>_r` (or `l.<col>` / `r.<col>`) once with sqlglot and returns f(left record, right row) with SQL's
three-valued logic (None is unknown): equality and comparisons, NULL tests, AND/OR/NOT, casts to a number,
arithmetic, and the functions of `metrics.FUNCTIONS`. Anything else is a CompileError (the Splink scorer is used).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import sqlglot
from sqlglot import exp

from c360.entity_resolution.online.metrics import FUNCTIONS


class CompileError(ValueError):
    """A model construct the compiled scorer does not evaluate (the Splink scorer is used instead)."""



def _to_float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None



# comparisons and arithmetic: the operator of each
_BINARY = {exp.EQ: operator.eq, exp.NEQ: operator.ne, exp.GT: operator.gt, exp.GTE: operator.ge, exp.LT: operator.lt,
           exp.LTE: operator.le, exp.Add: operator.add, exp.Sub: operator.sub, exp.Mul: operator.mul,
           exp.Div: operator.truediv}

Pair = Callable[[dict, int], Any]   # f(left record, index of the right record) -> value


class ConditionCompiler:
    """SQL boolean expressions over `<col>_l` / `<col>_r` (or `l.<col>` / `r.<col>`) → f(left, right index), with
    SQL's NULL semantics (None is unknown). `right(col)` gives the column list of the indexed records."""

    def __init__(self, dialect: str, right: Callable[[str], list], columns: set[str]):
        self.dialect, self.right, self.columns = dialect, right, columns

    def compile(self, sql: str) -> Pair:
        try:
            tree = sqlglot.parse_one(sql, read=self.dialect)
        except sqlglot.errors.ParseError as exc:
            raise CompileError(f"cannot parse {sql!r}: {exc}") from None
        return self._node(tree)

    def column_of(self, node: exp.Column) -> tuple[str, str]:
        """('l' | 'r', column) of a column reference."""
        name, table = node.name, node.table
        if table in ("l", "r"):
            side, col = table, name
        elif name.endswith(("_l", "_r")):
            side, col = name[-1], name[:-2]
        else:
            raise CompileError(f"column {name!r} names no side (_l / _r)")
        if col not in self.columns:
            raise CompileError(f"column {col!r} is not a standardized column")
        return side, col

    def _node(self, node: exp.Expression) -> Pair:
        """The compiled function of one SQL node: the handler of its construct (the first of _HANDLERS whose class
        it is an instance of)."""
        for kind, handler in _HANDLERS:
            if isinstance(node, kind):
                return handler(self, node)
        raise CompileError(f"SQL construct {type(node).__name__} ({node.sql()!r}) is not supported")

    def _paren(self, node: exp.Paren) -> Pair:
        return self._node(node.this)

    def _column(self, node: exp.Column) -> Pair:
        side, col = self.column_of(node)
        if side == "l":
            return lambda left, i, c=col: left.get(c)
        values = self.right(col)
        return lambda left, i, v=values: v[i]

    def _literal(self, node: exp.Expression) -> Pair:
        if isinstance(node, exp.Null):
            value = None
        elif isinstance(node, exp.Boolean):
            value = node.this
        else:
            value = node.this if node.is_string else float(node.this)
        return lambda left, i: value

    def _is(self, node: exp.Is) -> Pair:
        if not isinstance(node.expression, exp.Null):
            raise CompileError(f"{node.sql()!r}: only IS NULL is supported")
        inner = self._node(node.this)
        return lambda left, i: inner(left, i) is None

    def _not(self, node: exp.Not) -> Pair:
        inner = self._node(node.this)

        def negate(left, i):
            v = inner(left, i)
            return None if v is None else not v
        return negate

    def _logic(self, node: exp.Connector) -> Pair:
        parts = [self._node(p) for p in node.flatten()]
        decisive = isinstance(node, exp.Or)  # OR stops at the first TRUE, AND at the first FALSE

        def logic(left, i):
            unknown = False
            for p in parts:
                v = p(left, i)
                if v is None:
                    unknown = True
                elif bool(v) is decisive:
                    return decisive
            return None if unknown else not decisive
        return logic

    def _binary(self, node: exp.Binary) -> Pair:
        op = next(op for kind, op in _BINARY.items() if isinstance(node, kind))
        a, b = self._node(node.this), self._node(node.expression)

        def binary(left, i):
            x, y = a(left, i), b(left, i)
            if x is None or y is None:
                return None
            try:
                return op(x, y)
            except (TypeError, ZeroDivisionError):
                return None
        return binary

    def _cast(self, node: exp.Cast) -> Pair:
        to = node.to.this
        if to not in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL):
            raise CompileError(f"cast to {to} is not supported")
        inner = self._node(node.this)
        return lambda left, i: None if (v := inner(left, i)) is None else _to_float(v)

    def _function(self, node: exp.Func) -> Pair:
        name = (node.name if isinstance(node, exp.Anonymous) else node.key).lower()
        if name not in FUNCTIONS:
            raise CompileError(f"function {name!r} is not supported")
        arity, fn = FUNCTIONS[name]
        args = node.expressions if isinstance(node, exp.Anonymous) else \
            [a for a in (node.this, node.args.get("expression")) if a is not None]
        if len(args) != arity:
            raise CompileError(f"{name} takes {arity} argument(s)")
        compiled = [self._node(a) for a in args]

        def call(left, i):
            values = [c(left, i) for c in compiled]
            return None if any(v is None for v in values) else fn(*values)
        return call


# SQL construct -> its handler, in order (Cast before Func: a cast is a function node to sqlglot)
_HANDLERS: list[tuple[type | tuple[type, ...], Callable[[ConditionCompiler, Any], Pair]]] = [
    (exp.Paren, ConditionCompiler._paren), (exp.Column, ConditionCompiler._column),
    ((exp.Null, exp.Boolean, exp.Literal), ConditionCompiler._literal), (exp.Is, ConditionCompiler._is),
    (exp.Not, ConditionCompiler._not), ((exp.And, exp.Or), ConditionCompiler._logic),
    (tuple(_BINARY), ConditionCompiler._binary), ((exp.Cast, exp.TryCast), ConditionCompiler._cast),
    (exp.Func, ConditionCompiler._function),
]


def equality_columns(sql: str, dialect: str) -> tuple[str, ...] | None:
    """The columns of a blocking rule `l.a = r.a AND l.b = r.b ...`; None for any other rule."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return None
    parts = tree.flatten() if isinstance(tree, exp.And) else [tree]
    cols = []
    for p in parts:
        while isinstance(p, exp.Paren):
            p = p.this
        if not (isinstance(p, exp.EQ) and isinstance(p.this, exp.Column) and isinstance(p.expression, exp.Column)):
            return None
        a, b = p.this, p.expression
        if {a.table, b.table} != {"l", "r"} or a.name != b.name:
            return None
        cols.append(a.name)
    return tuple(cols)


def is_exact_on(sql: str, column: str, dialect: str) -> bool:
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return False
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if not isinstance(tree, exp.EQ) or not all(isinstance(x, exp.Column) for x in (tree.this, tree.expression)):
        return False
    return {tree.this.name.lower(), tree.expression.name.lower()} == {f"{column}_l".lower(), f"{column}_r".lower()}
