"""The policy expression language: a small, safe subset of Python expressions, compiled once.

Policies say *when* a rule applies with conditions such as::

    ticket.priority == "urgent" and account.mrr > 1000 and contains_any(ticket.subject, ["outage"])

The language
    Names: ``DEFAULT_NAMES`` (``ticket account event signals now``) or the set the caller
    declares. Values are plain data: dicts, lists, tuples, str, int, float, bool, None,
    datetime, date, timedelta. ``ticket.priority`` and ``ticket["priority"]`` both read the key
    ``priority``; ``ticket.tags[0]`` reads an index. Operators: ``and or not``, ``== != < <= >
    >= in not in`` (chained too), ``+ - * / %``, unary minus, ``a if c else b``, list and tuple
    literals, and calls to ``FUNCTION_NAMES`` (described where ``_FUNCTIONS`` is built).

Missing data is None, and None propagates
    A missing key, an index out of range and any read from None give None, so
    ``account.plan == "enterprise"`` is False, not an error, without an account. Operands are
    evaluated left to right, and an operation stops at the first None: arithmetic gives None,
    ``< <= > >=`` give False, ``in`` gives False and ``not in`` True (None holds nothing);
    ``==`` and ``!=`` compare None like any value. Functions given None return None, except
    the tests (``contains*``, ``has_*word``, ``matches``), which return False.

Safety
    Every node of the ``ast`` is checked against a whitelist before any code exists: only
    declared names; no attribute starting with ``_``; attributes and indexes only on data,
    never on literals or results, so no method is reachable; calls only to listed functions,
    without keyword or star arguments; limits on length, node count, nesting, string literals
    and regular expressions; ``*`` and ``%`` refuse strings and lists (no ``"x" * 10**9``, no
    formatting). A refusal is an ``ExpressionError`` at ``line:col`` (1-based characters).

Speed
    The checked tree is rewritten into one Python function, compiled once and run with empty
    ``__builtins__``: reads are inlined as ``d.get("k") if d.__class__ is dict else _get(d,
    "k")``, None tests bind temporaries with ``:=``, and literal arguments (keyword lists,
    patterns, ``duration("2h")``) are prepared at load.

Errors at run time
    Comparing a str with an int or dividing by zero makes ``evaluate`` raise ``ExpressionError``
    at the failing operation; ``evaluate_bool_safe`` returns ``(False, message)`` instead, so
    one bad rule never stops the engine.
"""

from __future__ import annotations

import ast
import copy
import json
import keyword
import math
import re
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache, partial
from typing import Final, cast

from baton.errors import ExpressionError

__all__ = [
    "DEFAULT_NAMES",
    "FUNCTION_NAMES",
    "MAX_DEPTH",
    "MAX_MATCH_TEXT_CHARS",
    "MAX_NODES",
    "MAX_PATTERN_CHARS",
    "MAX_SOURCE_CHARS",
    "MAX_STRING_CHARS",
    "CompiledExpression",
    "ExpressionError",
    "compile_expression",
]

DEFAULT_NAMES: Final = frozenset({"ticket", "account", "event", "signals", "now"})
MAX_SOURCE_CHARS: Final = 2_000
MAX_NODES: Final = 200
MAX_DEPTH: Final = 32
MAX_STRING_CHARS: Final = 500
MAX_PATTERN_CHARS: Final = 200
# matches() reads at most this much text: `re` backtracks, so a pattern's cost grows with a
# power of the text length, and only a bounded text bounds it.
MAX_MATCH_TEXT_CHARS: Final = 2_000
# The most backtracking steps a pattern may need, as estimated by _regex_cost: about 10 ms.
_REGEX_BUDGET: Final = 10_000_000


# --- run-time helpers: what compiled code calls; they raise TypeError or ValueError on bad input ---


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _text(function: str, value: object) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"{function}() needs a string, not {_kind(value)}")


def _get(container: object, key: object) -> object:
    """Read ``container[key]`` null-safely: the slow path of every attribute and index."""
    if container is None:
        return None
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, list | tuple | str):
        if isinstance(key, int) and not isinstance(key, bool):
            return container[key] if -len(container) <= key < len(container) else None
        if not isinstance(key, str):
            raise TypeError(f"a {_kind(container)} index must be a whole number, not {_kind(key)}")
    raise TypeError(f"cannot read {key!r} of {_kind(container)}")


def _mul(left: object, right: object) -> object:
    """``*`` for operands that are not both int or float; never None, the compiled guard saw to that."""
    if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
        raise TypeError("'*' multiplies numbers and durations, not strings or lists")
    return left * right  # type: ignore[operator]  # any other mismatch is a reported run-time error


def _mod(left: object, right: object) -> object:
    if isinstance(left, str):
        raise TypeError("'%' is arithmetic only; strings cannot be formatted")
    return left % right  # type: ignore[operator]  # any other mismatch is a reported run-time error


def _in(item: object, container: object) -> bool:
    return container is not None and item in container  # type: ignore[operator]  # reported at run time


def _not_in(item: object, container: object) -> bool:
    return container is None or item not in container  # type: ignore[operator]  # reported at run time


def _case(method: str) -> Callable[[object], object]:
    def change(text: object) -> object:
        return None if text is None else getattr(_text(method, text), method)()

    return change


def _len(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise TypeError(f"len() needs a string, list or mapping, not {_kind(value)}")


def _abs(value: object) -> object:
    return None if value is None else abs(value)  # type: ignore[arg-type]  # reported at run time


def _extreme(name: str, pick: Callable[..., object]) -> Callable[..., object]:
    def extreme(*args: object) -> object:
        values = args[0] if len(args) == 1 else args
        if not isinstance(values, list | tuple):
            raise TypeError(f"{name}() of one argument needs a list, not {_kind(values)}")
        return None if not values or None in values else pick(tuple(values))

    return extreme


_DURATION_PART: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([wdhms])\s*")
_UNITS: Final = {
    unit: timedelta(seconds=s) for unit, s in zip("wdhms", (604_800, 86_400, 3_600, 60, 1), strict=True)
}


def _duration(text: object) -> object:
    """``duration("1d 4h")``: weeks, days, hours, minutes and seconds (w d h m s), summed."""
    if text is None:
        return None
    spec, total, position = _text("duration", text), timedelta(), 0
    while position < len(spec) or position == 0:
        part = _DURATION_PART.match(spec, position)
        if part is None:
            raise ValueError(f"cannot read {spec!r} as a duration; write e.g. '30m', '2h' or '1d 4h'")
        total += float(part[1]) * _UNITS[part[2]]
        position = part.end()
    return total


def _instants(function: str, value: object, now: object) -> tuple[date, datetime]:
    """The date or datetime ``value`` and ``now``; ISO-8601 strings are read, as JSON carries them."""
    if not isinstance(now, datetime):
        raise TypeError(f"{function}() needs 'now' to be a datetime, not {_kind(now)}")
    if isinstance(value, date):
        return value, now
    if isinstance(value, str):
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value), now
    raise TypeError(f"{function}() needs a date or datetime, not {_kind(value)}")


def _days_until(value: object, now: object) -> object:
    """Days from ``now`` to a date (whole days) or a datetime (fractional); negative once past."""
    if value is None:
        return None
    if value.__class__ is date and now.__class__ is datetime:  # the common case, without a call
        return (value - now.date()).days
    when, current = _instants("days_until", value, now)
    if isinstance(when, datetime):
        return (when - current) / timedelta(days=1)
    return (when - current.date()).days


def _hours_since(value: object, now: object) -> object:
    """Hours from a datetime (or from midnight of a date, in ``now``'s zone) to ``now``."""
    if value is None:
        return None
    when, current = _instants("hours_since", value, now)
    if not isinstance(when, datetime):
        when = datetime.combine(when, time(), tzinfo=current.tzinfo)
    return (current - when) / timedelta(hours=1)


def _needles(function: str, value: object, *, many: bool) -> tuple[str, ...]:
    if not many:
        return (_text(function, value).casefold(),)
    if isinstance(value, list | tuple):
        return tuple(_text(function, word).casefold() for word in value)
    raise TypeError(f"{function}() needs a list of strings, not {_kind(value)}")


def _substrings(function: str, *, many: bool) -> Callable[[object], Callable[[object], bool]]:
    """``contains``/``contains_any``: case-insensitive substrings, so "down" is found in "Download"."""

    def bind(needles: object) -> Callable[[object], bool]:
        words = _needles(function, needles, many=many)

        def contains(text: object) -> bool:
            if text is None:
                return False
            folded = (text if text.__class__ is str else _text(function, text)).casefold()
            for word in words:  # noqa: SIM110 -- a plain loop is twice as fast as any() over a generator
                if word in folded:
                    return True
            return False

        return contains

    return bind


def _whole_words(function: str, *, many: bool) -> Callable[[object], Callable[[object], bool]]:
    """``has_word``/``has_any_word``: case-insensitive whole words, so "down" is not in "Download"."""

    def bind(needles: object) -> Callable[[object], bool]:
        words = _needles(function, needles, many=many)
        contains = _substrings(function, many=True)(words)
        # Lookarounds rather than \b, so words that begin or end with punctuation ("c++") work.
        pattern = re.compile("(?<!\\w)(?:" + "|".join(map(re.escape, words)) + ")(?!\\w)")

        def has_word(text: object) -> bool:
            # The substring test rules most texts out cheaply; only then does the regex run.
            return contains(text) and pattern.search(_text(function, text).casefold()) is not None

        return has_word

    return bind


def _bind_matches(pattern: object) -> Callable[[object], bool]:
    """``matches``: ``re.search`` over the first MAX_MATCH_TEXT_CHARS characters; (?i) ignores case."""
    regex = _safe_regex(_text("matches", pattern))

    def matches(text: object) -> bool:
        return text is not None and regex.search(_text("matches", text)[:MAX_MATCH_TEXT_CHARS]) is not None

    return matches


@lru_cache(maxsize=256)
def _safe_regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"the pattern has {len(pattern)} characters; the limit is {MAX_PATTERN_CHARS}")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    if MAX_MATCH_TEXT_CHARS * _regex_cost(pattern) > _REGEX_BUDGET:
        raise ValueError(
            "the pattern could backtrack too much: use at most one unbounded repeat (*, +, {n,}), "
            "keep {m,n} small, and do not repeat a group that holds a repeat or '|'"
        )
    return regex


_UNBOUNDED: Final = MAX_MATCH_TEXT_CHARS  # the most an unbounded repeat can match in the text read
# One token of a pattern, for _regex_cost. The pattern has compiled already, so it is well formed.
_REGEX_TOKEN: Final = re.compile(
    r"""
      (?P<forbidden> \\[1-9] | \(\?P= | \(\?\( | \(\?[aiLmsu-]*x )  # backreferences, conditionals, (?x)
    | \(\?\#[^)]*\) | \(\?[aiLmsu-]*\)                          # comments and global flags: atoms
    | (?P<open> \( (?: \?(?: P<\w+> | <= | <! | [:=!>] | [aiLmsu-]+: ) )? )
    | (?P<close> \) ) | (?P<bar> \| )
    | (?P<repeat> [*+?] | \{ (?P<least>\d*) (?P<comma>,?) (?P<most>\d*) \} ) [?+]?
    | \\. | \[ \^? \]? (?: \\. | [^\]] )* \] | .                 # escapes, classes, characters
    """,
    re.VERBOSE | re.DOTALL,
)


def _regex_cost(pattern: str) -> float:
    """A conservative estimate of how many ways ``re`` may try to match ``pattern`` at one position.

    A sequence multiplies its parts' costs and alternatives add up. From m to n repeats of a
    simple atom cost n - m + 1, the counts that may be tried (unbounded means the text cap);
    of anything costlier, its cost to the power n times that, which is how ``(a+)+`` and
    ``(a|aa)*`` explode.
    """
    # One frame per open group: the alternatives so far, the current one's cost, its last atom's.
    stack = [[0.0, 1.0, 1.0]]
    for token in _REGEX_TOKEN.finditer(pattern):
        frame, kind, cost = stack[-1], token.lastgroup, 1.0
        if kind == "forbidden":
            raise ValueError("backreferences, conditionals and verbose (?x) patterns are not allowed")
        if kind == "open":
            stack.append([0.0, 1.0, 1.0])
            continue
        if kind == "bar":
            frame[:] = [frame[0] + frame[1] * frame[2], 1.0, 1.0]
            continue
        if kind == "repeat":
            if token["least"] is None:  # *, + or ?
                least, most = int(token["repeat"] == "+"), 1 if token["repeat"] == "?" else _UNBOUNDED
            else:
                least = int(token["least"] or 0)
                most = int(token["most"]) if token["most"] else _UNBOUNDED if token["comma"] else least
            least, most, last = min(least, _UNBOUNDED), min(most, _UNBOUNDED), frame[2]
            choices = most - least + 1.0  # how many counts of repeats may be tried
            if last <= 1.0:
                frame[2] = choices
            else:
                frame[2] = math.inf if most * math.log(last) > 700 else last**most * choices
            continue
        if kind == "close":
            group = stack.pop()
            frame, cost = stack[-1], group[0] + group[1] * group[2]
        frame[1:] = [frame[1] * frame[2], cost]
    return stack[0][0] + stack[0][1] * stack[0][2]


@dataclass(frozen=True, slots=True)
class _Function:
    run: Callable[..., object]
    arity: tuple[int, int]  # least and most arguments; -1 for any number
    fold: bool = False  # a call whose arguments are all literals is evaluated once, at load
    bind: Callable[[object], Callable[[object], bool]] | None = None  # prepares a literal last argument
    needs_now: bool = False  # ``now`` is passed as an extra last argument


def _predicate(bind: Callable[[object], Callable[[object], bool]]) -> _Function:
    """A two-argument test whose last argument is usually a literal, prepared once at load."""

    def run(text: object, needle: object) -> object:
        return False if needle is None else bind(needle)(text)

    return _Function(run, (2, 2), bind=bind)


# lower(s), upper(s), len(x), abs(x); min and max of several values or of one list;
# coalesce(a, b, ...): the first that is not None; duration("1d 4h"); days_until(d) and
# hours_since(d), counted from now; contains(text, s) and contains_any(text, [s, ...]):
# case-insensitive substrings; has_word(text, w) and has_any_word(text, [w, ...]):
# case-insensitive whole words; matches(text, pattern): re.search on the text's start.
_FUNCTIONS: Final[Mapping[str, _Function]] = {
    "lower": _Function(_case("lower"), (1, 1), fold=True),
    "upper": _Function(_case("upper"), (1, 1), fold=True),
    "len": _Function(_len, (1, 1), fold=True),
    "abs": _Function(_abs, (1, 1), fold=True),
    "min": _Function(_extreme("min", min), (1, -1), fold=True),
    "max": _Function(_extreme("max", max), (1, -1), fold=True),
    "coalesce": _Function(lambda *args: next((a for a in args if a is not None), None), (1, -1)),
    "duration": _Function(_duration, (1, 1), fold=True),
    "days_until": _Function(_days_until, (1, 1), needs_now=True),
    "hours_since": _Function(_hours_since, (1, 1), needs_now=True),
    "contains": _predicate(_substrings("contains", many=False)),
    "contains_any": _predicate(_substrings("contains_any", many=True)),
    "has_word": _predicate(_whole_words("has_word", many=False)),
    "has_any_word": _predicate(_whole_words("has_any_word", many=True)),
    "matches": _predicate(_bind_matches),
}
FUNCTION_NAMES: Final = frozenset(_FUNCTIONS)

_RUNTIME: Final[Mapping[str, object]] = {
    "_dict": dict,
    "_numbers": frozenset({int, float}),
    "_get": _get,
    "_mul": _mul,
    "_mod": _mod,
    "_in": _in,
    "_not_in": _not_in,
    **{f"_fn_{name}": function.run for name, function in _FUNCTIONS.items()},
}
_RUNTIME_ERRORS: Final = (TypeError, ValueError, ArithmeticError, LookupError)


# --- the compiler: checks each node against the whitelist and rewrites it into plain Python ---

_FORBIDDEN: Final[Mapping[type[ast.AST], str]] = {
    ast.Lambda: "lambda is not allowed",
    ast.NamedExpr: "':=' is not allowed",
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp), "comprehensions are not allowed"),
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    **dict.fromkeys((ast.Await, ast.Yield, ast.YieldFrom), "await and yield are not allowed"),
}
_OPERATOR_TEXT: Final = dict(
    zip(
        ["Pow", "FloorDiv", "LShift", "RShift", "BitAnd", "BitOr", "BitXor", "MatMult", "Invert"],
        ["**", "//", "<<", ">>", "&", "|", "^", "@", "~"],
        strict=True,
    )
)
_ORDERING: Final = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_NOT_LITERAL: Final = object()
_Operand = tuple[ast.expr, bool]  # compiled code, and whether it may be None


def _name(identifier: str) -> ast.Name:
    return ast.Name(identifier, ast.Load())


def _bind_to(name: str, value: ast.expr) -> ast.NamedExpr:
    return ast.NamedExpr(ast.Name(name, ast.Store()), value)


def _comparison(op: ast.cmpop, left: ast.expr, right: ast.expr) -> ast.expr:
    return ast.Compare(left, [op], [right])


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return _NOT_LITERAL


def _maybe_none(node: ast.expr) -> bool:
    """Whether a user node needs a None test: all but literals, whose value is known and safe to read."""
    value = _literal(node)
    return value is _NOT_LITERAL or value is None


def _arithmetic(op: ast.Mult | ast.Mod, left: ast.expr, right: ast.expr) -> ast.expr:
    """``a * b`` inline when both are int or float; otherwise ``_mul``/``_mod``, which refuse strings."""
    tests: list[ast.expr] = [
        ast.Compare(ast.Attribute(side, "__class__", ast.Load()), [ast.In()], [_name("_numbers")])
        for side in (left, right)
        if not isinstance(side, ast.Constant)
    ]
    helper = ast.Call(_name("_mul" if isinstance(op, ast.Mult) else "_mod"), [left, right], [])
    if not tests:
        return helper
    test = tests[0] if len(tests) == 1 else ast.BoolOp(ast.And(), tests)
    return copy.deepcopy(ast.IfExp(test, ast.BinOp(left, op, right), helper))  # no node in two places


def _about(function: str, exc: Exception) -> str:
    return str(exc) if str(exc).startswith(f"{function}()") else f"{function}(): {exc}"


def _error(lines: tuple[str, ...], line: int, byte_col: int, message: str, where: str) -> ExpressionError:
    """Locate an error; ``ast`` counts columns in UTF-8 bytes, people count characters."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    col = len(text.encode()[:byte_col].decode(errors="ignore")) + 1
    return ExpressionError(message, line=line, col=col, where=where)


class _Compiler:
    def __init__(self, lines: tuple[str, ...], names: frozenset[str], where: str) -> None:
        self._lines, self._names, self._where = lines, names, where
        self.names_used: set[str] = set()
        self.paths_used: set[str] = set()
        self.namespace: dict[str, object] = {"__builtins__": {}, **_RUNTIME}
        self._count = 0

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        if isinstance(node, ast.Attribute) and node.end_lineno and node.end_col_offset:
            # Point at the attribute's name, not at the start of what it is read from.
            line, col = node.end_lineno, node.end_col_offset - len(node.attr.encode())
        return _error(self._lines, line, col, message, self._where)

    def _fresh(self, prefix: str) -> str:
        self._count += 1
        return f"_{prefix}{self._count}"

    def _prepared(self, value: object) -> ast.Name:
        """A value prepared at load (a timedelta, a bound matcher) lives in the function's globals."""
        name = self._fresh("k")
        self.namespace[name] = value
        return _name(name)

    def expr(self, node: ast.expr, depth: int) -> ast.expr:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"the expression is nested more than {MAX_DEPTH} levels deep")
        # Generated code keeps the user node's position, so run-time errors can point at it.
        return ast.copy_location(self._rewrite(node, depth + 1), node)

    def _rewrite(self, node: ast.expr, depth: int) -> ast.expr:
        match node:
            case ast.Constant(value=value):
                if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
                    raise self.fail(node, f"string literals are limited to {MAX_STRING_CHARS} characters")
                if value is not None and not isinstance(value, bool | int | float | str):
                    raise self.fail(node, f"{type(value).__name__} literals are not allowed")
                return ast.Constant(value)
            case ast.Name() | ast.Attribute() | ast.Subscript():
                code, path, _ = self._data(node, depth)
                self.paths_used.add(path)
                return code
            case ast.BoolOp(op=op, values=values):
                return ast.BoolOp(op, [self.expr(value, depth) for value in values])
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return ast.UnaryOp(ast.Not(), self.expr(operand, depth))
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() as sign, operand=operand):
                return self._guard([self._operand(operand, depth)], partial(ast.UnaryOp, sign))
            case ast.BinOp(left=left, op=ast.Add() | ast.Sub() | ast.Div() as arithmetic, right=right):
                pair = [self._operand(left, depth), self._operand(right, depth)]
                return self._guard(pair, lambda a, b: ast.BinOp(a, arithmetic, b))
            case ast.BinOp(left=left, op=ast.Mult() | ast.Mod() as op, right=right):
                if any(isinstance(_literal(side), str | list | tuple) for side in (left, right)):
                    raise self.fail(node, "'*' and '%' are arithmetic only, not for strings or lists")
                pair = [self._operand(left, depth), self._operand(right, depth)]
                return self._guard(pair, partial(_arithmetic, op))
            case ast.Compare():
                return self._compare(node, depth)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return ast.IfExp(self.expr(test, depth), self.expr(body, depth), self.expr(orelse, depth))
            case ast.List(elts=items):
                return ast.List([self.expr(item, depth) for item in items], ast.Load())
            case ast.Tuple(elts=items):
                return ast.Tuple([self.expr(item, depth) for item in items], ast.Load())
            case ast.Call():
                return self._call(node, depth)
            case ast.BinOp(op=op) | ast.UnaryOp(op=op) if type(op).__name__ in _OPERATOR_TEXT:
                raise self.fail(node, f"the operator '{_OPERATOR_TEXT[type(op).__name__]}' is not allowed")
        raise self.fail(node, _FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed"))

    def _data(self, node: ast.expr, depth: int) -> tuple[ast.expr, str, bool]:
        """Compile a read of data; also return its path and whether that path names the whole read."""
        if depth > MAX_DEPTH:
            raise self.fail(node, f"the expression is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Name):
            if node.id not in self._names:
                if node.id in _FUNCTIONS:
                    raise self.fail(node, f"{node.id!r} is a function; call it as {node.id}(...)")
                known = ", ".join(sorted(self._names))
                raise self.fail(node, f"unknown name {node.id!r}; use one of {known}")
            self.names_used.add(node.id)
            return _name(node.id), node.id, True
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise self.fail(node, f"attribute {node.attr!r} is not allowed")
            key: ast.expr = ast.Constant(node.attr)
            literal: object = node.attr
        elif isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                raise self.fail(node.slice, "slices are not allowed")
            key, literal = self.expr(node.slice, depth), _literal(node.slice)
        else:
            source = "a literal" if _literal(node) is not _NOT_LITERAL else "a call or operation"
            raise self.fail(node, f"attributes and indexes can only be read from data, not from {source}")
        base, path, whole = self._data(node.value, depth + 1)
        if whole and isinstance(literal, str):
            path += f".{literal}" if literal.isidentifier() else f"[{json.dumps(literal)}]"
        elif whole and isinstance(literal, int) and not isinstance(literal, bool):
            path += f"[{literal}]"
        else:
            whole = False
        return ast.copy_location(self._read(base, key), node), path, whole

    def _read(self, base: ast.expr, key: ast.expr) -> ast.expr:
        """``base[key]`` as ``b.get(k) if b.__class__ is dict else _get(b, k)``: exact dicts skip a call."""
        later = base.id if isinstance(base, ast.Name) else self._fresh("t")
        first = base if isinstance(base, ast.Name) else _bind_to(later, base)
        is_dict = ast.Compare(ast.Attribute(first, "__class__", ast.Load()), [ast.Is()], [_name("_dict")])
        fast = ast.Call(ast.Attribute(_name(later), "get", ast.Load()), [key], [])
        return ast.IfExp(is_dict, fast, ast.Call(_name("_get"), [_name(later), copy.deepcopy(key)], []))

    def _operand(self, node: ast.expr, depth: int) -> _Operand:
        return self.expr(node, depth), _maybe_none(node)

    def _guard(
        self, operands: list[_Operand], build: Callable[..., ast.expr], if_none: object = None
    ) -> ast.expr:
        """``build(*operands)``, or ``if_none`` as soon as an operand is None, left to right.

        Each operand is (code, may be None). One that may be None is bound to a temporary with
        ``:=`` inside the test, so it is evaluated once, in order, and the rest are skipped.
        """
        tests: list[ast.expr] = []
        args: list[ast.expr] = []
        for code, maybe_none in operands:
            if not maybe_none:  # a literal: reading it early or late makes no difference
                args.append(code)
                continue
            if isinstance(code, ast.Name):
                target = code.id
            elif isinstance(code, ast.NamedExpr):
                target = code.target.id
            else:
                target = self._fresh("t")
                code = _bind_to(target, code)
            tests.append(ast.Compare(code, [ast.Is()], [ast.Constant(None)]))
            args.append(_name(target))
        result = build(*args)
        if not tests:
            return result
        test = tests[0] if len(tests) == 1 else ast.BoolOp(ast.Or(), tests)
        return ast.IfExp(test, ast.Constant(cast(bool | None, if_none)), result)

    def _compare(self, node: ast.Compare, depth: int) -> ast.expr:
        users = [node.left, *node.comparators]
        codes = [self.expr(user, depth) for user in users]
        # In a chain a middle operand is read by two comparisons, but must be evaluated once.
        for index in range(1, len(codes) - 1):
            if not isinstance(codes[index], ast.Name | ast.Constant):
                codes[index] = _bind_to(self._fresh("t"), codes[index])
        parts: list[ast.expr] = []
        for index, op in enumerate(node.ops):
            if isinstance(op, ast.Is | ast.IsNot):
                raise self.fail(node, "'is' is not allowed; use '==' or '!='")
            left, right = codes[index], codes[index + 1]
            if isinstance(left, ast.NamedExpr):  # the previous comparison has evaluated it
                left = _name(left.target.id)
            maybe_none = _maybe_none(users[index]), _maybe_none(users[index + 1])
            if isinstance(op, _ORDERING):
                operands = [(left, maybe_none[0]), (right, maybe_none[1])]
                part = self._guard(operands, partial(_comparison, op), False)
            elif isinstance(op, ast.In | ast.NotIn) and not isinstance(left, ast.Name | ast.Constant):
                # The item is evaluated before the container, so this case goes through a helper.
                part = ast.Call(_name("_in" if isinstance(op, ast.In) else "_not_in"), [left, right], [])
            elif isinstance(op, ast.In | ast.NotIn):
                container = [(right, maybe_none[1])]
                part = self._guard(container, partial(_comparison, op, left), isinstance(op, ast.NotIn))
            else:
                part = _comparison(op, left, right)
            parts.append(ast.copy_location(part, node))
        return parts[0] if len(parts) == 1 else ast.BoolOp(ast.And(), parts)

    def _call(self, node: ast.Call, depth: int) -> ast.expr:
        if not isinstance(node.func, ast.Name):
            if not isinstance(node.func, ast.Attribute):
                raise self.fail(node.func, "only the listed functions can be called")
            hint = f"; write {node.func.attr}(...) instead" if node.func.attr in _FUNCTIONS else ""
            raise self.fail(node.func, f"method calls are not allowed{hint}")
        name = node.func.id
        function = _FUNCTIONS.get(name)
        if function is None:
            problem = "is data, not a function" if name in self._names else "is not allowed"
            raise self.fail(node, f"function {name!r} {problem}")
        if node.keywords:
            raise self.fail(node.keywords[0], "keyword arguments are not allowed")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, "'*' unpacking is not allowed")
        least, most = function.arity
        if len(node.args) < least or len(node.args) > most >= 0:
            expected = f"{least}" if least == most else f"at least {least}"
            raise self.fail(node, f"{name}() takes {expected} argument(s), not {len(node.args)}")
        args = [self.expr(arg, depth) for arg in node.args]
        if name == "coalesce":  # inlined, so later arguments are evaluated only when needed
            result = args[-1]
            for code in reversed(args[:-1]):
                temp = self._fresh("t")
                is_set = ast.Compare(_bind_to(temp, code), [ast.IsNot()], [ast.Constant(None)])
                result = ast.IfExp(is_set, _name(temp), result)
            return result
        # Literal arguments are prepared now, so their mistakes are load-time errors.
        literals = [_literal(arg) for arg in node.args]
        if function.fold and _NOT_LITERAL not in literals:
            try:
                return self._prepared(function.run(*literals))
            except _RUNTIME_ERRORS as exc:
                raise self.fail(node, _about(name, exc)) from None
        if function.bind is not None and literals[-1] is not _NOT_LITERAL:
            try:
                return ast.Call(self._prepared(function.bind(literals[-1])), args[:-1], [])
            except _RUNTIME_ERRORS as exc:
                raise self.fail(node.args[-1], _about(name, exc)) from None
        if function.needs_now:
            if "now" not in self._names:
                raise self.fail(node, f"{name}() needs the name 'now', which is not declared here")
            self.names_used.add("now")
            args.append(_name("now"))
        return ast.Call(_name(f"_fn_{name}"), args, [])


# --- the public face ---


@dataclass(frozen=True, slots=True, eq=False)
class CompiledExpression:
    """An expression checked and compiled once; evaluate it as often as needed, from any thread.

    ``names_used`` are the top-level names it reads (with ``now`` when a function needs it) and
    ``paths_used`` the data it reads, such as ``ticket.priority``: what a decision record shows.
    """

    source: str
    where: str
    names_used: tuple[str, ...]
    paths_used: tuple[str, ...]
    _function: Callable[[Mapping[str, object]], object] = field(repr=False)
    _code: types.CodeType = field(repr=False)
    _lines: tuple[str, ...] = field(repr=False)

    def __call__(self, **names: object) -> object:
        return self.evaluate(names)

    def evaluate(self, env: Mapping[str, object]) -> object:
        """The expression's value; a declared name missing from ``env`` reads as None."""
        try:
            return self._function(env)
        except _RUNTIME_ERRORS as exc:
            raise self._runtime_error(exc) from exc

    def evaluate_bool(self, env: Mapping[str, object]) -> bool:
        """The value as a condition (Python truthiness); a run-time error raises ``ExpressionError``."""
        try:
            return bool(self._function(env))
        except _RUNTIME_ERRORS as exc:
            raise self._runtime_error(exc) from exc

    def evaluate_bool_safe(self, env: Mapping[str, object]) -> tuple[bool, str | None]:
        """``(value, None)``, or ``(False, "where:line:col: message")`` when evaluation failed."""
        try:
            return bool(self._function(env)), None
        except _RUNTIME_ERRORS as exc:
            return False, str(self._runtime_error(exc))

    def _runtime_error(self, exc: BaseException) -> ExpressionError:
        # Generated nodes carry the positions of the user nodes they came from, so the failing
        # instruction of our frame in the traceback points back into the source.
        line, byte_col = 1, 0
        trace = exc.__traceback__
        while trace is not None:
            if trace.tb_frame.f_code is self._code:
                position = list(self._code.co_positions())[trace.tb_lasti // 2]
                line, byte_col = position[0] or 1, position[2] or 0
            trace = trace.tb_next
        return _error(self._lines, line, byte_col, str(exc) or type(exc).__name__, self.where)


def compile_expression(
    source: str, *, names: frozenset[str] = DEFAULT_NAMES, where: str = "<expr>"
) -> CompiledExpression:
    """Check ``source`` and compile it, or raise ``ExpressionError`` saying where it is wrong.

    ``names`` are the names the expression may read; ``where`` prefixes error locations, for
    example ``"policy.yaml rule 'vip-outage'"``.
    """
    bad = [n for n in names if not n.isidentifier() or keyword.iskeyword(n) or n[0] == "_" or n in _FUNCTIONS]
    if bad:
        raise ValueError(f"these cannot be expression names: {', '.join(sorted(bad))}")
    lines = tuple(_LINE_BREAK.split(source))
    if len(source) > MAX_SOURCE_CHARS:
        message = f"the expression has {len(source)} characters; the limit is {MAX_SOURCE_CHARS}"
        raise ExpressionError(message, line=1, col=1, where=where)
    try:
        # Python only warns about escapes such as "\d"; an error keeps their meaning certain.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tree = ast.parse(source, filename=where, mode="eval")
    except SyntaxError as exc:
        hint = "; write '\\\\' or use a raw string r'...'" if "escape sequence" in exc.msg else ""
        hint += "; wrap an expression of several lines in parentheses" if "\n" in source.strip() else ""
        line, col = exc.lineno or 1, exc.offset or 1
        raise ExpressionError(exc.msg + hint, line=line, col=col, where=where) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot parse the expression: {exc}", line=1, col=1, where=where) from None
    count = sum(isinstance(node, ast.expr) for node in ast.walk(tree))
    if count > MAX_NODES:
        message = f"the expression has {count} parts; the limit is {MAX_NODES}"
        raise ExpressionError(message, line=1, col=1, where=where)
    compiler = _Compiler(lines, names, where)
    body = compiler.expr(tree.body, depth=0)
    # The function reads each name it uses from the environment once, into a fast local.
    statements: list[ast.stmt] = [
        ast.Assign([ast.Name(name, ast.Store())], ast.parse(f"_env.get({name!r})", mode="eval").body)
        for name in sorted(compiler.names_used)
    ]
    statements.append(ast.copy_location(ast.Return(body), body))
    # A parsed template rather than a hand-built FunctionDef, which gains fields between versions.
    module = ast.parse("def _expression(_env):\n    pass\n")
    cast(ast.FunctionDef, module.body[0]).body = statements
    compiled = compile(ast.fix_missing_locations(module), where, "exec")
    code = next(const for const in compiled.co_consts if isinstance(const, types.CodeType))
    return CompiledExpression(
        source=source,
        where=where,
        names_used=tuple(sorted(compiler.names_used)),
        paths_used=tuple(sorted(compiler.paths_used)),
        _function=types.FunctionType(code, compiler.namespace),
        _code=code,
        _lines=lines,
    )
