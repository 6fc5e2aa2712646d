"""Message templates: Jinja2 in a sandbox.

Templates are files in the policy's ``templates/`` folder (``NAME.j2``). They are parsed once when
the policy loads and rendered by ``decide``, which is fine because rendering in the sandbox is a
pure function of its inputs: no attribute access to Python internals, no I/O, bounded output.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import DictLoader, StrictUndefined, TemplateError, Undefined, meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["MAX_OUTPUT_CHARS", "Rendered", "TemplateProblem", "Templates"]

MAX_OUTPUT_CHARS = 20_000
MAX_SOURCE_CHARS = 50_000


class TemplateProblem(ValueError):
    """A template that does not parse (at load) or does not render (at decision time)."""

    def __init__(self, message: str, *, line: int = 1) -> None:
        super().__init__(message)
        self.line = line


class _Lenient(Undefined):
    """Missing data renders as an empty string, so a gap in context never blocks a message."""


_DICT_ATTRIBUTES = frozenset(dir(dict))
_BUILTIN_METHOD: Any = types.BuiltinMethodType
# The public methods of str but the two the sandbox wraps (format strings can reach attributes).
_STR_METHODS = frozenset(n for n in dir(str) if not n.startswith("_") and n not in ("format", "format_map"))


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with short ways to the two common reads, ``ticket.subject`` and
    ``rule.split``, each giving the very result the sandbox's own way gives.

    The sandbox reads ``obj.name`` as the attribute, else as the key. A plain dict read by a name
    that is not an attribute of ``dict`` can only fail the attribute lookup (raising and catching
    ``AttributeError`` on every read), so its key is read at once. A public method of a plain
    string other than ``format`` and ``format_map`` passes every check the sandbox makes (none of
    them looks further than the name and the string's type), so it is returned at once. Anything
    else goes the sandbox's way.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = obj.__class__
        if kind is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=attribute)
        if kind is str and attribute in _STR_METHODS:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # Such a string method, called with plain arguments: the sandbox finds it safe, and the
        # context finds nothing to pass it (no pass_context marks), so it is simply called.
        if (
            not kwargs
            and __obj.__class__ is _BUILTIN_METHOD
            and __obj.__self__.__class__ is str
            and __obj.__name__ in _STR_METHODS
        ):
            return __obj(*args)
        return super().call(__context, __obj, *args, **kwargs)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


@dataclass
class Templates:
    """The parsed templates of one policy, by name."""

    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._env = _Sandbox(
            loader=DictLoader(self.sources), undefined=_Lenient, autoescape=False, keep_trailing_newline=False
        )
        self._strict = ImmutableSandboxedEnvironment(
            loader=DictLoader(self.sources), undefined=StrictUndefined
        )
        self._compiled = {}
        self._uses: dict[str, frozenset[str] | None] = {}
        for name, source in self.sources.items():
            if len(source) > MAX_SOURCE_CHARS:
                raise TemplateProblem(f"template {name!r} is longer than {MAX_SOURCE_CHARS} characters")
            try:
                compiled = self._compiled[name] = self._env.from_string(source)
                tree = self._env.parse(source)
            except TemplateError as exc:
                line = getattr(exc, "lineno", None) or 1
                raise TemplateProblem(f"template {name!r} line {line}: {exc}", line=line) from None
            # A template's globals are a ChainMap over the environment's, which every render reads
            # key by key into its context; they never change, so a plain copy reads the same.
            compiled.globals = dict(compiled.globals)
            others = any(
                True for _ in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))
            )
            self._uses[name] = None if others else frozenset(meta.find_undeclared_variables(tree))

    def __contains__(self, name: object) -> bool:
        return name in self.sources

    def uses(self, name: str) -> frozenset[str] | None:
        """The values template ``name`` reads (``ticket``, ``rule``...), so that a caller need not
        build the others; None when that cannot be known: no such template, or one that includes,
        imports or extends another."""
        return self._uses.get(name)

    def render(self, name: str, values: Mapping[str, Any]) -> Rendered:
        """Render ``name``. A first line ``Subject: ...`` becomes the subject."""
        try:
            text = self._compiled[name].render(values)
        except KeyError:
            raise TemplateProblem(f"no template named {name!r}") from None
        except Exception as exc:  # the sandbox raises SecurityError, TypeError... all are template faults
            raise TemplateProblem(f"template {name!r} failed: {exc.__class__.__name__}: {exc}") from None
        text = text.strip()[:MAX_OUTPUT_CHARS]
        subject = ""
        if text.lower().startswith("subject:"):
            first, _, rest = text.partition("\n")
            subject, text = first[len("subject:") :].strip(), rest.strip()
        return Rendered(subject=subject, text=text)
