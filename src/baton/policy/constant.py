"""What a condition's text alone says about it: whether it holds for every ticket, for none, or
depends on the data; and a key under which two conditions written alike are the same.

:mod:`baton.policy.compiler` uses these to report rules that can never be reached: a rule whose
``when`` always holds ends a first-match list, one whose ``when`` never holds never matches, and a
rule whose ``when`` repeats an earlier rule's is shadowed by it.

The answer is sound, not complete: :func:`truth` says True or False only when that follows from
the expression's form, and None whenever it cannot tell cheaply. A part that reads no data is
evaluated with the policy's own expression compiler; ``and``, ``or``, ``not`` and ``a if c else
b`` combine what their parts say. A condition whose evaluation fails counts as not matching (see
:meth:`~baton.policy.expr.CompiledExpression.evaluate_bool_safe`), which is why ``x or True`` is
not "always": ``x`` may fail before ``True`` is reached. ``x and False`` never holds, whatever
``x`` does.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Final, Literal

from baton.errors import ExpressionError
from baton.policy.expr import compile_expression

__all__ = ["FirstMatch", "same_condition_key", "truth"]


def truth(source: str) -> bool | None:
    """True if the condition ``source`` holds whatever the data, False if it never holds, None
    when that depends on the data (or cannot be told cheaply). ``source`` has compiled already."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return _truth(tree.body)


def same_condition_key(source: str) -> str | None:
    """A key equal for two conditions that are the same expression however they are spaced,
    wrapped or parenthesised; None for a condition that does not parse."""
    try:
        return ast.dump(ast.parse(source.strip(), mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


@dataclass
class FirstMatch:
    """Reachability along a first-match list (routing rules, SLA policies), one entry at a time.

    ``noun`` names an entry in messages ("rule", "SLA policy")."""

    noun: str
    catch_all: str | None = None  # the first enabled, final entry whose condition always holds
    _seen: dict[str, str] = field(default_factory=dict)  # condition key -> the first final entry

    def visit(
        self, name: str, source: str, *, compiled: bool, enabled: bool = True, final: bool = True
    ) -> tuple[Literal["entry", "when"], str] | None:
        """Take the next entry: ``source`` is its condition (``compiled`` when it did: one that
        did not is reported already), ``final`` that a match stops the walk (no ``continue``).
        Return what is wrong with it, if anything, and whether that is located at the entry or
        at its ``when``."""
        if not enabled:
            return None
        noun = self.noun
        if self.catch_all is not None:
            return "entry", f"unreachable: {noun} {self.catch_all!r} above matches every ticket"
        if not compiled:
            return None
        holds, key = truth(source), same_condition_key(source)
        if holds is False:
            return "when", f"{noun} {name!r} never matches: its `when` is always false"
        earlier = self._seen.get(key) if key is not None else None
        if final and holds:
            self.catch_all = name
        elif final and key is not None:
            self._seen.setdefault(key, name)
        if earlier is not None:
            return "when", (
                f"unreachable: {noun} {name!r} has the same `when` as {noun} {earlier!r} above, "
                "which matches first"
            )
        return None


# What a part of a condition is known to do whatever the data: ALWAYS holds (and never fails),
# FALSE never holds and never fails, NO_MATCH is false or fails (either way no match, but it may
# fail, which a `not` or an `or` around it does not undo), None: it depends.
_Truth = Literal["always", "false", "no_match"] | None
ALWAYS: Final = "always"
FALSE: Final = "false"
NO_MATCH: Final = "no_match"


def _truth(node: ast.expr) -> bool | None:
    found = _fold(node)
    return None if found is None else found == ALWAYS


def _fold(node: ast.expr) -> _Truth:
    match node:
        case ast.BoolOp(op=ast.And(), values=values):
            # Left to right: the first part that is false ends it; a part before it that may fail
            # makes the whole fail instead. Either way, no match.
            unsure = False
            for value in values:
                part = _fold(value)
                if part == FALSE:
                    return NO_MATCH if unsure else FALSE
                if part == NO_MATCH:
                    return NO_MATCH
                if part is None:
                    unsure = True
            return None if unsure else ALWAYS  # every part holds, or may
        case ast.BoolOp(op=ast.Or(), values=values):
            safe = True  # every part so far was false without failing
            for value in values:
                part = _fold(value)
                if part == ALWAYS:
                    return ALWAYS if safe else None  # reached only if nothing before it failed
                if part == NO_MATCH:
                    safe = False
                elif part is None:
                    return None  # it may hold, or fail before what follows is reached
            return FALSE if safe else NO_MATCH
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            inner = _fold(operand)
            # `not` turns false into true but leaves a failure a failure: no_match is unknown.
            if inner == ALWAYS:
                return FALSE
            return ALWAYS if inner == FALSE else None
        case ast.IfExp(test=test, body=body, orelse=orelse):
            chosen, yes, no = _fold(test), _fold(body), _fold(orelse)
            if chosen == ALWAYS:
                return yes
            if chosen == FALSE:
                return no
            # The test may fail (no match) or choose either branch it can reach.
            reachable = [no] if chosen == NO_MATCH else [yes, no]
            return NO_MATCH if all(branch in (FALSE, NO_MATCH) for branch in reachable) else None
    called = {id(part.func) for part in ast.walk(node) if isinstance(part, ast.Call)}
    if any(isinstance(part, ast.Name) and id(part) not in called for part in ast.walk(node)):
        return None  # it reads data
    try:
        compiled = compile_expression(ast.unparse(node), names=frozenset())
    except ExpressionError:
        return None  # e.g. days_until(...), which reads the clock
    holds, error = compiled.evaluate_bool_safe({})
    if error is not None:
        return None
    return ALWAYS if holds else FALSE
