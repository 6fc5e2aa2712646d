"""Message templates: Baton's sandbox takes short ways to plain dict keys and string methods; every
template must render exactly as Jinja's own immutable sandbox renders it, refusals included."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import DictLoader
from jinja2.sandbox import ImmutableSandboxedEnvironment

from baton.policy.templates import TemplateProblem, Templates, _Lenient

VALUES: dict[str, Any] = {
    "ticket": {
        "id": "T-1",
        "subject": "Invoice_wrong",
        "owner": {"role": "l1", "person": None},
        "tags": ["billing", "eu"],
        "items": "a key named like a dict method",
        "brief": {"steps_tried": "", "__class__": "x"},
    },
    "account": {},
    "rule": "sla.first_response.80",
    "target": None,
}

CASES = [
    "{{ ticket.subject }} {{ ticket['subject'] }} {{ ticket.missing }}|{{ account.name or 'none' }}",
    "SLA {{ rule.split('.')[1] | replace('_', ' ') }} at {{ rule.split('.')[2] }}%",
    "{{ rule.upper() }} {{ rule.startswith('sla') }} {{ ticket.subject.lower().title() }}",
    "{{ ticket.owner.person if ticket.owner else 'nobody' }} {{ target.role }} {{ ticket.tags[0] }}",
    "{{ ticket.items }} {{ ticket.keys() | list }} {{ ticket.get('id') }} {{ ticket.brief.__class__ }}",
    "{{ rule.__class__ }} {{ rule.mro }} {{ rule.nope }} {{ rule.format }} {{ ticket.__len__ }}",
    "{{ '{0.__class__}'.format(rule) }}",
    "{{ ticket.tags.append('x') }}",
    "{{ ticket.owner.clear() }}",
    "{{ rule.split.__self__ }} {{ ticket.subject.__class__.__mro__ }}",
    "{% for k, v in ticket.owner.items() %}{{ k }}={{ v }};{% endfor %}",
]


def _jinja(source: str) -> str:
    env = ImmutableSandboxedEnvironment(
        loader=DictLoader({}), undefined=_Lenient, autoescape=False, keep_trailing_newline=False
    )
    return env.from_string(source).render(VALUES).strip()


@pytest.mark.parametrize("source", CASES)
def test_renders_exactly_as_the_jinja_sandbox(source: str) -> None:
    templates = Templates({"t": source})
    try:
        expected: str | type[Exception] = _jinja(source)
    except Exception as exc:  # the refusal itself is what is compared
        expected = type(exc)
    if isinstance(expected, str):
        assert templates.render("t", VALUES).text == expected
    else:
        with pytest.raises(TemplateProblem, match=expected.__name__):
            templates.render("t", VALUES)


def test_a_template_names_the_values_it_reads() -> None:
    templates = Templates(
        {
            "plain": "{{ ticket.id }} {{ rule.split('.')[1] }}{% set x = 1 %}{{ x }}{{ missing }}",
            "loop": "{% for t in ticket.tags %}{{ t }}{{ brief.summary }}{% endfor %}",
            "includes": "{% include 'plain' %}",
        }
    )
    assert templates.uses("plain") == {"ticket", "rule", "missing"}
    assert templates.uses("loop") == {"ticket", "brief"}
    assert templates.uses("includes") is None  # what the included template reads is not counted
    assert templates.uses("nope") is None
    every = {**VALUES, "brief": {"summary": "S"}, "event": {}}
    for name in ("plain", "loop"):
        only = templates.uses(name)
        assert only is not None
        some = {k: v for k, v in every.items() if k in only}
        assert templates.render(name, some) == templates.render(name, every)
