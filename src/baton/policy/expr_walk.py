"""A list of conditions compiled into one function that walks it: what ``decide`` runs over a
policy's routing rules (200 of them, in a large policy) and the escalation rules of an event.

Each condition is compiled by the same checked rewrite as :func:`~baton.policy.expr.compile_expression`
(one compiler for the lot, so the values prepared at load get distinct names), and the bodies
become one ``if`` each in a single function. Compared with calling one function per condition,
that saves a call, and the reads of ``ticket``, ``account``... from the environment, per rule:
most of what a walk costs beyond the conditions themselves.

``walk(env, start)`` returns the index of the first condition from ``start`` that holds, or the
number of conditions when none does. When one fails it returns ``-1 - index``: the caller asks
that condition itself (``evaluate_bool_safe``) what went wrong, and where.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from baton.policy.expr import _RUNTIME_ERRORS, DEFAULT_NAMES, CompiledExpression, _Compiler

__all__ = ["Walker", "compile_walk"]

Walker = Callable[[Mapping[str, object], int], int]


def compile_walk(conditions: Sequence[CompiledExpression]) -> Walker:
    """One function walking ``conditions`` in order (see the module docstring)."""
    names = DEFAULT_NAMES.union(*(c.names_used for c in conditions))
    compiler = _Compiler(("",), names, "<walk>")
    compiler.namespace["_errors"] = _RUNTIME_ERRORS
    steps: list[ast.stmt] = []
    for index, condition in enumerate(conditions):
        # Sources that compiled once compile again the same way, through the same checks.
        body = compiler.expr(ast.parse(condition.source, mode="eval").body, depth=0)
        step = cast(
            ast.If, ast.parse(f"if _start <= {index}:\n _at = {index}\n if _:\n  return {index}").body[0]
        )
        cast(ast.If, step.body[1]).test = body
        steps.append(step)
    function = cast(
        ast.FunctionDef,
        ast.parse(
            "def _walk(_env, _start):\n"
            "    _at = _start\n"
            "    try:\n        pass\n"
            "    except _errors:\n        return -1 - _at\n"
            f"    return {len(conditions)}\n"
        ).body[0],
    )
    reads: list[ast.stmt] = [
        ast.Assign([ast.Name(name, ast.Store())], ast.parse(f"_env.get({name!r})", mode="eval").body)
        for name in sorted(compiler.names_used)
    ]
    cast(ast.Try, function.body[1]).body = steps or [ast.Pass()]
    function.body[0:0] = reads
    compiled = compile(ast.fix_missing_locations(ast.Module([function], [])), "<walk>", "exec")
    code = next(const for const in compiled.co_consts if isinstance(const, types.CodeType))
    return cast(Walker, types.FunctionType(code, compiler.namespace))
