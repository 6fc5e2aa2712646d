"""What a condition's text says on its own: always, never, or it depends (baton.policy.constant)."""

from __future__ import annotations

import pytest

from baton.policy.constant import FirstMatch, same_condition_key, truth

ALWAYS = [
    "True",
    "1 == 1",
    "not False",
    "True or ticket.priority == 'high'",
    "(1 < 2) and not (3 > 4)",
    "'x' in ['x', 'y']",
    "len('abc') == 3",
    "duration('2h') > duration('1h')",
    "lower('ABC') == 'abc'",
    "1 if False else 2",
    "1",
    "'text'",
]
NEVER = [
    "False",
    "1 == 2",
    "not True",
    "None",
    "[]",
    "ticket.priority == 'high' and False",
    "ticket.priority == 'high' and 1 > 2",  # whatever the first part does, the second ends it
    "False or 0 or ''",
    "False if ticket.vip else 0",  # both branches are false
    "not (True or ticket.vip)",
    "ticket.vip and False or False",  # the and fails or is false; the or cannot make it hold
    "not (1 == 1 and True)",
]
DEPENDS = [
    "ticket.priority == 'high'",
    "ticket.vip or True",  # ticket.vip may fail to evaluate, and then True is never reached
    "True and ticket.vip",
    "1 if ticket.vip else 2",  # the test may fail: no match
    "days_until(account.renewal_date) >= 0",
    "hours_since(ticket.created_at) > -1",
    "ticket.x == ticket.x",
    "1 < 'a'",  # always fails when evaluated: not "always" or "never" by form
    # A part that may fail, under `not`, before an `or` or as an `if` test: failing is no match,
    # and a `not` or an `or` does not turn that into a match.
    "not (account.mrr / account.seats > 100 and False)",
    "(account.mrr / account.seats > 100 and False) or True",
    "True if (account.mrr / account.seats > 100 and False) else True",
    "not (ticket.vip and False)",
]


def test_a_part_that_may_fail_is_not_taken_for_false_under_not() -> None:
    # The reviewer's case: the division fails when seats is 0, and the rule then does not match.
    from baton.policy.expr import compile_expression

    source = "not (account.mrr / account.seats > 100 and False)"
    matched, error = compile_expression(source).evaluate_bool_safe({"account": {"mrr": 5, "seats": 0}})
    assert (matched, error is not None) == (False, True)
    assert truth(source) is None


@pytest.mark.parametrize("source", ALWAYS)
def test_conditions_that_always_hold(source: str) -> None:
    assert truth(source) is True


@pytest.mark.parametrize("source", NEVER)
def test_conditions_that_never_hold(source: str) -> None:
    assert truth(source) is False


@pytest.mark.parametrize("source", DEPENDS)
def test_conditions_that_depend_on_the_data(source: str) -> None:
    assert truth(source) is None


def test_the_same_condition_written_differently_has_one_key() -> None:
    a = same_condition_key("ticket.priority == 'high' and account.mrr > 5")
    b = same_condition_key("((ticket.priority=='high')\n  and (account.mrr > 5))")
    assert a is not None and a == b
    assert a != same_condition_key("ticket.priority == 'high' and account.mrr > 6")
    assert same_condition_key("ticket.priority ==") is None


def test_first_match_reports_what_follows_a_catch_all_and_each_shadowed_entry() -> None:
    order = FirstMatch("rule")
    assert order.visit("a", "ticket.x == 1", compiled=True) is None
    assert order.visit("b", "ticket.x==1", compiled=True) == (
        "when",
        "unreachable: rule 'b' has the same `when` as rule 'a' above, which matches first",
    )
    assert order.visit("c", "1 > 2", compiled=True) == (
        "when",
        "rule 'c' never matches: its `when` is always false",
    )
    assert order.visit("d", "not False", compiled=True) is None
    assert order.catch_all == "d"
    assert order.visit("e", "ticket.y", compiled=True) == (
        "entry",
        "unreachable: rule 'd' above matches every ticket",
    )
    assert order.visit("f", "ticket.y", compiled=True, enabled=False) is None


def test_entries_that_do_not_stop_the_walk_shadow_nothing() -> None:
    order = FirstMatch("rule")
    assert order.visit("tag", "True", compiled=True, final=False) is None
    assert order.visit("tag-vip", "ticket.vip", compiled=True, final=False) is None
    assert order.visit("vip", "ticket.vip", compiled=True) is None
    assert order.visit("off", "True", compiled=True, enabled=False) is None
    assert order.catch_all is None
    # A condition that did not compile was reported already; it is not judged again.
    assert order.visit("broken", "False", compiled=False) is None
