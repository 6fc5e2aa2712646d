"""Slack through the Web API with a bot token (https://docs.slack.dev/apis/web-api/).

Kinds of action
    ``notify`` / ``message``
        ``chat.postMessage`` (https://docs.slack.dev/reference/methods/chat.postMessage) to
        ``params.channel``, else ``params.address`` (the member's Slack identity: a channel ID, or
        a user ID, which Slack delivers in the app's direct message with that user). With
        ``params.thread_ts`` the message is a reply in that thread. Text is ``subject`` and
        ``text``, with ``&``, ``<`` and ``>`` escaped as Slack asks, so text that came from a
        customer cannot ping ``<!channel>`` or forge links. Scope: ``chat:write``.
    ``incident_channel``
        ``conversations.create`` (https://docs.slack.dev/reference/methods/conversations.create),
        named ``params.name`` or ``<channel_prefix><ticket>``, then ``conversations.invite``
        (https://docs.slack.dev/reference/methods/conversations.invite) of the Slack user IDs in
        ``params.users`` / ``params.invite``; other entries (role names) are reported as not
        invited. Scopes: ``channels:manage``, ``groups:write``, ``channels:read``, ``groups:read``.

Errors
    HTTP 429 with Retry-After (https://docs.slack.dev/apis/web-api/rate-limits) and 5xx are
    transient. Otherwise Slack answers HTTP 200 with ``{"ok": false, "error": "<code>"}``: the codes
    in ``TRANSIENT_ERRORS`` (``ratelimited``, ``internal_error``...) are transient, with
    Retry-After when Slack sent one; every other code (``invalid_auth``, ``token_revoked``,
    ``channel_not_found``, ``not_in_channel``, ``is_archived``, ``missing_scope``...) is permanent.

Duplicates
    Slack takes no idempotency key. The outbox's sent-log stops a re-send once a success is
    recorded; what remains is the window between Slack acting and the outbox recording it (a
    crash, a timeout after Slack posted, a ``fatal_error`` that "may have partly succeeded"): such
    a message can appear twice. Each message carries the action's key in its metadata
    (``event_type: baton_action``) so a duplicate can be recognised. Channel creation is
    idempotent by name: the name derives from the ticket, ``name_taken`` is answered by looking the
    channel up (``conversations.list``) and inviting again, and ``already_in_channel`` counts as done.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from baton.clock import Clock
from baton.connectors.addresses import Resolver
from baton.connectors.base import Delivery, OutboundAction
from baton.connectors.config import SlackConfig, configured, http_config
from baton.connectors.http import HttpResponse, OutboundHttp, parse_retry_after
from baton.connectors.params import param_list as _list
from baton.connectors.params import param_str as _str
from baton.errors import PermanentConnectorError, TransientConnectorError
from baton.settings import Settings

__all__ = ["TRANSIENT_ERRORS", "SlackConnector", "channel_name", "escape"]

_log = logging.getLogger("baton.connectors.slack")

TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
        "org_login_required",
    }
)
_INVITE_DONE = frozenset({"already_in_channel", "cant_invite_self"})
_INVITE_PER_USER = _INVITE_DONE | {
    "cant_invite",
    "user_not_found",
    "user_is_restricted",
    "user_is_ultra_restricted",
    "ura_max_channels",
    "no_external_invite_permission",
    "invitee_cant_see_channel",
}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_TEXT_LIMIT = 39_000  # Slack truncates message text beyond 40,000 characters
_LIST_PAGES = 50


def escape(text: str) -> str:
    """Slack's three control characters as entities (https://docs.slack.dev/messaging/formatting-message-text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def channel_name(raw: str) -> str:
    """A valid channel name: lower case letters, digits, ``-`` and ``_``, at most 80 characters."""
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-")[:80].strip("-")
    if not name:
        raise PermanentConnectorError(f"slack: {raw!r} gives no usable channel name")
    return name


class SlackConnector:
    """Posts messages and opens incident channels in one Slack workspace."""

    name = "slack"

    def __init__(
        self, config: SlackConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        self._token = config.token.get_secret_value()
        self.http = OutboundHttp(config.http, clock=clock, resolver=resolver, secrets=(self._token,))
        self.http.check_url(config.api_url)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> SlackConnector:
        return configured(
            "slack",
            SlackConfig,
            {"token": settings.slack_token, "api_url": settings.slack_api_url, "http": http_config(settings)},
            lambda config: cls(config, clock=clock),
            needs={"BATON_SLACK_TOKEN": settings.slack_token},
        )

    def send(self, action: OutboundAction) -> Delivery:
        if action.kind in ("notify", "message"):
            return self._post(action)
        if action.kind == "incident_channel":
            return self._incident_channel(action)
        raise PermanentConnectorError(f"slack: cannot perform {action.kind!r}")

    def close(self) -> None:
        self.http.close()

    # -- messages --------------------------------------------------------------------------

    def _post(self, action: OutboundAction) -> Delivery:
        params = action.params
        channel = _str(params.get("channel")) or _str(params.get("address"))
        if not channel:
            raise PermanentConnectorError(
                f"slack: no Slack address for {params.get('to') or 'the recipient'}"
            )
        subject, text = _str(params.get("subject")), _str(params.get("text"))
        body = f"*{escape(subject)}*\n{escape(text)}" if subject and text else escape(subject or text)
        if not body:
            raise PermanentConnectorError("slack: nothing to post (no subject or text)")
        payload: dict[str, Any] = {
            "channel": channel,
            "text": body[:_TEXT_LIMIT],
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {
                "event_type": "baton_action",
                "event_payload": {"key": action.key, "ticket": action.ticket_id},
            },
        }
        if thread := _str(params.get("thread_ts")):
            payload["thread_ts"] = thread
        result = self._call("chat.postMessage", payload)
        ts, posted_in = str(result.get("ts") or ""), str(result.get("channel") or channel)
        return Delivery(external_id=ts or None, detail={"channel": posted_in, "ts": ts})

    # -- incident channels -----------------------------------------------------------------

    def _incident_channel(self, action: OutboundAction) -> Delivery:
        params = action.params
        name = channel_name(_str(params.get("name")) or f"{self.config.channel_prefix}{action.ticket_id}")
        private = bool(params.get("private", self.config.private_channels))
        channel, created = self._create(name, private=private)
        wanted = list(dict.fromkeys(_list(params.get("users")) + _list(params.get("invite"))))
        ids = [u for u in wanted if _USER_ID.match(u)]
        invited, failed = self._invite(channel, ids) if ids else ([], {})
        failed.update({u: "not a Slack user id" for u in wanted if not _USER_ID.match(u)})
        if failed:
            _log.warning("slack: %d of %d invitees not added to #%s", len(failed), len(wanted), name)
        return Delivery(
            external_id=channel,
            detail={
                "channel": channel,
                "name": name,
                "created": created,
                "invited": invited,
                "not_invited": failed,
            },
        )

    def _create(self, name: str, *, private: bool) -> tuple[str, bool]:
        result = self._call(
            "conversations.create", {"name": name, "is_private": private}, tolerate={"name_taken"}
        )
        if result.get("ok"):
            created = result.get("channel")
            if not isinstance(created, dict) or not created.get("id"):
                raise TransientConnectorError("slack conversations.create: the answer names no channel id")
            return str(created["id"]), True
        found = self._find(name)
        if found is None:
            raise PermanentConnectorError(
                f"slack conversations.create: #{name} is taken by a channel the bot cannot use "
                "(archived, or private without the bot)"
            )
        return found, False

    def _find(self, name: str) -> str | None:
        cursor = ""
        for _ in range(_LIST_PAGES):
            query = {"types": "public_channel,private_channel", "exclude_archived": "true", "limit": "200"}
            result = self._call(
                "conversations.list", {**query, "cursor": cursor} if cursor else query, get=True
            )
            for found in result.get("channels") or []:
                if isinstance(found, dict) and found.get("name") == name:
                    return str(found["id"])
            cursor = str((result.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return None
        return None

    def _invite(self, channel: str, users: list[str]) -> tuple[list[str], dict[str, str]]:
        """Invite in one call; when Slack refuses some users, it invites none of them
        ("partially failed calls"), so fall back to one call per user."""
        result = self._call(
            "conversations.invite", {"channel": channel, "users": ",".join(users)}, tolerate=_INVITE_PER_USER
        )
        if result.get("ok"):
            return users, {}
        if len(users) == 1:
            outcomes = {users[0]: result}
        else:
            outcomes = {
                user: self._call(
                    "conversations.invite", {"channel": channel, "users": user}, tolerate=_INVITE_PER_USER
                )
                for user in users
            }
        invited = [u for u, r in outcomes.items() if r.get("ok") or r.get("error") in _INVITE_DONE]
        failed = {u: str(r.get("error")) for u, r in outcomes.items() if u not in invited}
        return invited, failed

    # -- the Web API -------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        payload: Mapping[str, Any],
        *,
        get: bool = False,
        tolerate: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, Any]:
        """One Web API call; the decoded body when ``ok`` (or its error is in ``tolerate``)."""
        url = self.config.api_url.rstrip("/") + "/" + method
        what = f"slack {method}"
        auth = {"authorization": f"Bearer {self._token}"}
        if get:
            response = self.http.request(
                "GET", url, what=what, headers=auth, params=payload, explain=_explain
            )
        else:
            response = self.http.request(
                "POST",
                url,
                what=what,
                content=json.dumps(payload, separators=(",", ":")).encode(),
                headers={**auth, "content-type": "application/json; charset=utf-8"},
                explain=_explain,
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TransientConnectorError(f"{what}: the response is not a Slack JSON object")
        if data.get("ok") is True:
            return data
        code = str(data.get("error") or "unknown_error")
        if code in tolerate:
            return data
        message = self.http.clean(f"{what}: {code}")
        if code in TRANSIENT_ERRORS:
            retry_after = parse_retry_after(
                response.headers.get("retry-after"),
                now=self.http.clock.now(),
                cap=self.config.http.max_retry_after,
            )
            raise TransientConnectorError(message, retry_after=retry_after)
        raise PermanentConnectorError(message)


def _explain(response: HttpResponse) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else None
