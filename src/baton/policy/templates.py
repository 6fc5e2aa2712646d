"""Message templates: Jinja2 in a sandbox.

Templates are files in the policy's ``templates/`` folder (``NAME.j2``). They are parsed once when
the policy loads and rendered by ``decide``, which is fine because rendering in the sandbox is a
pure function of its inputs: no attribute access to Python internals, no I/O, bounded output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import DictLoader, StrictUndefined, TemplateError, Undefined
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


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


@dataclass
class Templates:
    """The parsed templates of one policy, by name."""

    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._env = ImmutableSandboxedEnvironment(
            loader=DictLoader(self.sources), undefined=_Lenient, autoescape=False, keep_trailing_newline=False
        )
        self._strict = ImmutableSandboxedEnvironment(
            loader=DictLoader(self.sources), undefined=StrictUndefined
        )
        self._compiled = {}
        for name, source in self.sources.items():
            if len(source) > MAX_SOURCE_CHARS:
                raise TemplateProblem(f"template {name!r} is longer than {MAX_SOURCE_CHARS} characters")
            try:
                self._compiled[name] = self._env.from_string(source)
            except TemplateError as exc:
                line = getattr(exc, "lineno", None) or 1
                raise TemplateProblem(f"template {name!r} line {line}: {exc}", line=line) from None

    def __contains__(self, name: object) -> bool:
        return name in self.sources

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
