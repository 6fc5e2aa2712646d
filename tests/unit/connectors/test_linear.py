"""The Linear connector's pure parts: client ids, state choice, configuration."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr, ValidationError

from baton.connectors.linear import DEFAULT_STATES, STAGE_TYPES, LinearConfig, State, client_id, pick_state
from baton.errors import PermanentConnectorError

KEY = "a" * 64


def test_a_client_id_is_a_stable_uuid4_per_action_and_purpose_known_only_with_the_api_key() -> None:
    issue = client_id("issue", KEY, "lin_api_one")
    parsed = uuid.UUID(issue)
    assert (str(parsed), parsed.version, parsed.variant) == (issue, 4, uuid.RFC_4122)
    assert client_id("issue", KEY, "lin_api_one") == issue
    others = {client_id("comment", KEY, "lin_api_one"), client_id("issue", "b" * 64, "lin_api_one")}
    assert len({issue, *others, client_id("issue", KEY, "lin_api_two")}) == 4  # another key, another id


STATES = [
    State("s1", "Backlog", "backlog", 0),
    State("s2", "Todo", "unstarted", 1),
    State("s4", "Waiting", "started", 3),
    State("s3", "In Progress", "started", 2),
    State("s5", "Done", "completed", 4),
]
PICKS = [
    ("new", DEFAULT_STATES, "Todo"),
    ("open", DEFAULT_STATES, "In Progress"),
    ("pending", {"pending": "waiting"}, "Waiting"),  # by name, case aside
    ("pending", {}, "In Progress"),  # by type: the first started state by position
    ("escalated", {"escalated": "Escalated"}, "In Progress"),  # a name the team lacks: by type
    ("closed", DEFAULT_STATES, "Done"),
]


@pytest.mark.parametrize(("stage", "names", "expected"), PICKS)
def test_a_stage_picks_its_named_state_else_the_first_of_its_type(
    stage: str, names: dict[str, str], expected: str
) -> None:
    assert pick_state(stage, STATES, names).name == expected


def test_a_team_without_a_fitting_state_is_a_clear_permanent_error() -> None:
    with pytest.raises(
        PermanentConnectorError, match=r"no state for stage 'solved'.*it has Todo \(unstarted\)"
    ):
        pick_state("solved", [STATES[1]], DEFAULT_STATES)


def test_every_stage_has_a_default_and_a_type() -> None:
    assert (
        set(DEFAULT_STATES) == set(STAGE_TYPES) == {"new", "open", "pending", "escalated", "solved", "closed"}
    )


def test_the_configuration_checks_without_repeating_the_key() -> None:
    secret = "lin_api_SECRET\nInjected: header"
    with pytest.raises(ValidationError, match="one token") as caught:
        LinearConfig(api_key=SecretStr(secret))
    assert secret not in str(caught.value)
    with pytest.raises(ValidationError, match="team_id"):
        LinearConfig(api_key=SecretStr("lin_api_x"), team_id="two words")
    config = LinearConfig(
        api_key=SecretStr("lin_api_x"), team_id="ENG", states={"new": " Triage ", "open": " "}
    )
    assert config.states == {"new": "Triage"} and "lin_api_x" not in repr(config)
