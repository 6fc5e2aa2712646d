"""A Slack Web API stand-in: the methods the Slack connector uses, as Slack documents them.

* Auth: ``Authorization: Bearer <token>``; none → ``not_authed``, a wrong one → ``invalid_auth``.
  Like Slack, method errors are HTTP 200 with ``{"ok": false, "error": "<code>"}``.
* ``chat.postMessage``: a channel ID (the bot must be a member: else ``not_in_channel``, or
  ``channel_not_found`` for a private channel it cannot see; ``is_archived``), or a user ID (a
  direct message); ``no_text``; ``invalid_metadata_format``; answers ``channel`` and ``ts``.
* ``conversations.create``: name rules (``invalid_name_required`` / ``_maxlength`` /
  ``_specials``), ``name_taken`` for any existing name, archived ones included.
* ``conversations.invite``: ``channel_not_found``, ``is_archived``, ``not_in_channel``, and per
  user ``user_not_found`` / ``cant_invite_self`` / ``already_in_channel``; when any user fails,
  nobody is invited (Slack's "partially failed calls").
* ``conversations.list`` (GET): channels the bot can see, ``types`` and ``exclude_archived``
  filters, cursor pagination through ``response_metadata.next_cursor``.
* Unknown methods: HTTP 404 ``unknown_method``. Rate limits are injected:
  ``standin.inject(SlackStandIn.rate_limited("3"))`` gives HTTP 429, ``Retry-After: 3`` and
  ``{"ok": false, "error": "ratelimited"}`` (https://docs.slack.dev/apis/web-api/rate-limits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tests.standins.server import Fault, Received, Reply, StandIn

__all__ = ["Channel", "SlackStandIn"]

BOT = "UBOT00001"


@dataclass
class Channel:
    id: str
    name: str
    private: bool = False
    archived: bool = False
    members: set[str] = field(default_factory=set)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_private": self.private,
            "is_archived": self.archived,
            "is_member": BOT in self.members,
        }


class SlackStandIn(StandIn):
    def __init__(
        self,
        token: str,
        *,
        users: Iterable[str] = ("U0000001", "U0000002", "U0000003"),
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.token = token
        self.users = set(users) | {BOT}
        self.channels: dict[str, Channel] = {}
        self.messages: list[dict[str, Any]] = []
        self._seq = 0
        self.add_channel("general")

    @staticmethod
    def rate_limited(retry_after: str, *, method: str | None = None) -> Fault:
        return Fault.rate_limited(retry_after, {"ok": False, "error": "ratelimited"}, path=method)

    def add_channel(
        self, name: str, *, private: bool = False, archived: bool = False, bot: bool = True
    ) -> str:
        self._seq += 1
        channel = Channel(f"C{self._seq:07d}", name, private, archived, {BOT} if bot else set())
        self.channels[channel.id] = channel
        return channel.id

    def by_name(self, name: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.name == name), None)

    def calls(self, method: str) -> list[Received]:
        return [r for r in self.requests if r.path == f"/api/{method}"]

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, request: Received) -> Reply:
        method = request.path.removeprefix("/api/")
        handler = {
            "chat.postMessage": self._post_message,
            "conversations.create": self._create,
            "conversations.invite": self._invite,
            "conversations.list": self._list,
        }.get(method)
        if handler is None or not request.path.startswith("/api/"):
            return Reply.of(404, {"ok": False, "error": "unknown_method"})
        auth = request.headers.get("authorization", "")
        if not auth:
            return _error("not_authed")
        if auth != f"Bearer {self.token}":
            return _error("invalid_auth")
        return handler(_args(request))

    def _visible(self, channel_id: str) -> Channel | None:
        channel = self.channels.get(channel_id)
        if channel is None or (channel.private and BOT not in channel.members):
            return None
        return channel

    def _post_message(self, args: dict[str, Any]) -> Reply:
        target = str(args.get("channel") or "")
        if target in self.users:
            target = "D" + target[1:]
            self.channels.setdefault(target, Channel(target, target, private=True, members={BOT}))
        channel = self._visible(target)
        if channel is None:
            return _error("channel_not_found")
        if channel.archived:
            return _error("is_archived")
        if BOT not in channel.members:
            return _error("not_in_channel")
        if not args.get("text") and not args.get("blocks"):
            return _error("no_text")
        metadata = args.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            return _error("invalid_metadata_format")
        self._seq += 1
        ts = f"{1_700_000_000 + self._seq}.{self._seq:06d}"
        message = {
            "channel": channel.id,
            "ts": ts,
            "text": args.get("text"),
            **_pick(args, "thread_ts", "metadata"),
        }
        self.messages.append(message)
        return Reply.of(
            200,
            {"ok": True, "channel": channel.id, "ts": ts, "message": {"text": args.get("text"), "ts": ts}},
        )

    def _create(self, args: dict[str, Any]) -> Reply:
        name = str(args.get("name") or "")
        if not name:
            return _error("invalid_name_required")
        if len(name) > 80:
            return _error("invalid_name_maxlength")
        if not re.fullmatch(r"[a-z0-9_-]+", name):
            return _error("invalid_name_specials")
        if self.by_name(name) is not None:
            return _error("name_taken")
        channel_id = self.add_channel(name, private=bool(args.get("is_private")))
        return Reply.of(200, {"ok": True, "channel": self.channels[channel_id].view()})

    def _invite(self, args: dict[str, Any]) -> Reply:
        channel = self._visible(str(args.get("channel") or ""))
        if channel is None:
            return _error("channel_not_found")
        if channel.archived:
            return _error("is_archived")
        if BOT not in channel.members:
            return _error("not_in_channel")
        users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
        if not users:
            return _error("no_user")
        errors = [
            {"user": u, "ok": False, "error": e}
            for u in users
            if (e := self._invite_error(channel, u)) is not None
        ]
        if errors:
            return Reply.of(200, {"ok": False, "error": errors[0]["error"], "errors": errors})
        channel.members.update(users)
        return Reply.of(200, {"ok": True, "channel": channel.view()})

    def _invite_error(self, channel: Channel, user: str) -> str | None:
        if user not in self.users:
            return "user_not_found"
        if user == BOT:
            return "cant_invite_self"
        if user in channel.members:
            return "already_in_channel"
        return None

    def _list(self, args: dict[str, Any]) -> Reply:
        types = set(str(args.get("types") or "public_channel").split(","))
        exclude_archived = str(args.get("exclude_archived", "false")).lower() == "true"
        limit = min(int(args.get("limit") or 100), 1000)
        start = int(args.get("cursor") or 0)
        visible = [
            c
            for c in self.channels.values()
            if self._visible(c.id) is not None
            and not c.id.startswith("D")
            and ("private_channel" if c.private else "public_channel") in types
            and not (exclude_archived and c.archived)
        ]
        page = visible[start : start + limit]
        more = start + limit < len(visible)
        return Reply.of(
            200,
            {
                "ok": True,
                "channels": [c.view() for c in page],
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            },
        )


def _args(request: Received) -> dict[str, Any]:
    if request.method == "GET":
        return dict(request.query)
    if request.headers.get("content-type", "").startswith("application/json"):
        parsed = json.loads(request.body or b"{}")
        return parsed if isinstance(parsed, dict) else {}
    return dict(parse_qsl(request.body.decode()))


def _error(code: str) -> Reply:
    return Reply.of(200, {"ok": False, "error": code})


def _pick(args: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: args[n] for n in names if n in args}
