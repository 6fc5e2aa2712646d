"""Replay throughput: the whole ServiceNow log through the example policy in simulated time,
against the rate of only parsing the same file, in the same run.

    python bench/replay.py                 # the whole log (about 120,000 events, 20,769 incidents),
                                           # then the whole BPI 2013 log (about 65,000 events)
    python bench/replay.py --limit 3000    # the first 3,000 incidents of each
    python bench/replay.py --log servicenow   # only one of the two logs
    python bench/replay.py --profile       # also: where the replay's time goes, by component

What is measured, in this one process:

- **parse only**: :class:`baton.signals.history.HistoryReader` with the built-in mapping — rows
  read, checked, put in per-ticket time order and turned into validated canonical events — and
  nothing else (best of two passes).
- **replay**: exactly what ``baton replay --policy examples/policy --history ... --out DIR`` does:
  the first pass over the file that makes global time order possible, parsing and mapping (in a
  second process that reads ahead, as the command does for a file this size), the simulator
  (the live service's ``decide``, SLA timers firing at their simulated due instants, business
  hours), ``decisions.jsonl`` (one line per decision), the KPIs, ``kpis.json`` and
  ``report.html``.
- **peak RSS** of the process (``VmHWM``) after the replay, and separately the memory 20,000 open
  tickets take in a fresh simulator (every one with its SLA clocks and pending timers).

- **the simulator alone** (after the replay, so that it does not count in its peak memory): the
  history read and time-ordered into memory first (the "parse + time order" row), then every
  event fed to the simulator with no reading, no ``decisions.jsonl`` and no report: the least any
  replay of this history spends in its one simulator process, whatever reads the file. Its rate
  against parse only bounds the ratio the whole command can reach.

CPU seconds (this process and the reader process it waited for) are printed beside wall time: the
machine may be shared, and CPU time moves less.
Targets (the issue): whole log under 15 s; replay at least 25% of the parse-only rate; state for
20,000 open tickets under 500 MB.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import EXAMPLE_POLICY, machine_note, maxrss_mb, print_table

from baton.bootstrap import tune_gc
from baton.engine.simulate import Simulator
from baton.model import Event, EventType
from baton.policy.loader import load_policy
from baton.replay.order import TimeOrdered
from baton.replay.outputs import write_replay
from baton.replay.run import PolicyRun
from baton.signals.history import HistoryReader
from baton.signals.history_mapping import load_mapping

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LOGS = {
    "servicenow": DATA / "servicenow_incident_event_log.csv.gz",
    "bpic2013": DATA / "bpic2013_volvo_it_incidents_VINST.csv.gz",
}
LOG = LOGS["servicenow"]
OPEN_TICKETS = 20_000

# Components of a replay, by the function (or functions, separated by "|", none calling another)
# whose cumulative time is that component's.
COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("read + map rows (HistoryReader, in process)", "signals/history.py", "__iter__"),
    ("events from the reader process (ReadAhead)", "replay/ahead.py", "__iter__"),
    ("time order: first pass", "replay/order.py", "first_pass"),
    ("simulator: decide", "engine/decide.py", "decide"),
    ("  of which: message templates", "policy/templates.py", "render"),
    ("  of which: SLA timers firing", "engine/decide_sla.py", "on_timer"),
    ("  of which: business calendar", "policy/calendar.py", "add_business_time|add_business_times"),
    ("simulator: all (decide, timers heap, copies)", "engine/simulate.py", "_apply"),
    ("decision records + tracks (on_decision)", "replay/run.py", "_on_decision"),
    ("facts and KPIs", "replay/run.py", "finish"),
    ("kpis.json + report.html", "replay/report.py", "render_report"),
)


@dataclass(frozen=True)
class Run:
    events: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.events / self.wall if self.wall else 0.0


def cpu_seconds() -> float:
    """CPU time of this process and of the child processes it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(work: Callable[[], int]) -> Run:
    wall, cpu = time.perf_counter(), cpu_seconds()
    events = work()
    return Run(events, time.perf_counter() - wall, cpu_seconds() - cpu)


def parse_only(limit: int | None, log: str = "servicenow") -> int:
    with HistoryReader(LOGS[log], load_mapping(log), limit=limit) as reader:
        return sum(1 for item in reader if item.event is not None)


def ordered_only(limit: int | None, log: str = "servicenow") -> int:
    return sum(1 for _ in TimeOrdered(LOGS[log], load_mapping(log), limit=limit))


def in_memory(limit: int | None, log: str = "servicenow") -> list[Event]:
    """The history read and time-ordered into a list, which the collector is then told to leave
    alone (it would otherwise walk it on every full collection the simulator's work causes)."""
    events = list(TimeOrdered(LOGS[log], load_mapping(log), limit=limit))
    gc.collect()  # what earlier measurements left behind goes first, not into the frozen set
    gc.freeze()
    return events


def simulate_only(events: list[Event]) -> int:
    """The simulator (decide, timers, decision tracks, KPIs) on events already in memory."""
    run = PolicyRun(load_policy(EXAMPLE_POLICY), accounts={})
    for event in events:
        run.feed(event)
    run.finish()
    return len(events)


def replay(out: Path, limit: int | None, log: str = "servicenow") -> int:
    result = write_replay(
        out, history=LOGS[log], mapping=load_mapping(log), policy=load_policy(EXAMPLE_POLICY), limit=limit
    )
    return int(result.document["events"])


def other_log(log: str, limit: int | None) -> None:
    """The second log, whole (or limited): parse only against the whole replay command."""
    scope = "whole" if limit is None else f"first {limit:,} incidents"
    print(f"\n{log} log, {scope}")
    parse = min((timed(lambda: parse_only(limit, log)) for _ in range(2)), key=lambda r: r.wall)
    out = Path(tempfile.mkdtemp(prefix="baton-bench-replay-"))
    try:
        run = timed(lambda: replay(out, limit, log))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rows = [
        ("parse only", parse.events, parse.wall, parse.cpu, parse.rate, 1.0),
        ("replay (whole command)", run.events, run.wall, run.cpu, run.rate, run.rate / parse.rate),
    ]
    print_table(("", "events", "wall s", "cpu s", "events/s", "x parse"), rows)


def open_tickets_mb(count: int) -> tuple[float, int, int]:
    """Memory of ``count`` open tickets in a fresh simulator (with their decision tracks): the
    log's first ``count`` incidents opened, none solved, measured by ``tracemalloc`` (every Python
    allocation the simulator keeps, nothing of what was freed before)."""
    creates = []
    with HistoryReader(LOG, load_mapping("servicenow"), limit=count) as reader:
        for item in reader:
            if item.event is not None and item.event.type == EventType.TICKET_CREATED:
                fields = item.event.fields.model_copy(update={"status": None})  # as opened, not as solved
                creates.append(item.event.model_copy(update={"fields": fields}))
    creates.sort(key=lambda e: e.occurred_at)
    last = creates[-1].occurred_at
    creates = [e.model_copy(update={"occurred_at": last}) for e in creates]  # none has timed out yet
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    run = PolicyRun(load_policy(EXAMPLE_POLICY), accounts={})
    for e in creates:
        run.feed(e)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    sim: Simulator = run.sim
    open_now = sum(1 for t in sim.tickets.values() if t.stage.value not in ("solved", "closed"))
    return held / 2**20, open_now, sim.pending_timers()


def profile(out: Path, limit: int | None) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    replay(out, limit)
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, _, ct, _) in entries.values())
    rows = []
    for label, file, name in COMPONENTS:
        cumulative = sum(
            ct
            for (path, _, func), (_, _, _, ct, _) in entries.items()
            if path.endswith(file) and func in name.split("|")
        )
        rows.append((label, f"{cumulative:.1f}", f"{100 * cumulative / total:.0f}%"))
    print(f"\nwhere the replay's time goes (cProfile, {total:.1f} s under the profiler):")
    print_table(("component", "seconds", "share"), rows)
    print("\ntop functions by own time:")
    stats.sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N incidents")
    parser.add_argument("--profile", action="store_true", help="profile the replay by component")
    parser.add_argument("--log", choices=["both", *LOGS], default="both", help="which log (default both)")
    args = parser.parse_args()
    for path in LOGS.values():
        if not path.exists():
            raise SystemExit(f"the log is not at {path}")
    tune_gc()
    if args.log == "bpic2013":
        other_log("bpic2013", args.limit)
        return
    scope = "whole" if args.limit is None else f"first {args.limit:,} incidents"
    print(f"ServiceNow log, {scope}; {machine_note()}")
    parse = min((timed(lambda: parse_only(args.limit)) for _ in range(2)), key=lambda r: r.wall)
    order = timed(lambda: ordered_only(args.limit))
    out = Path(tempfile.mkdtemp(prefix="baton-bench-replay-"))
    try:
        run = timed(lambda: replay(out, args.limit))
        peak = maxrss_mb()
        decisions_mb = (out / "decisions.jsonl").stat().st_size / 2**20
        grown, open_now, timers = open_tickets_mb(OPEN_TICKETS)
        events = in_memory(args.limit)
        try:
            alone = timed(lambda: simulate_only(events))
        finally:
            events.clear()  # freed by reference counting, frozen or not
        rows = [
            ("parse only", parse.events, parse.wall, parse.cpu, parse.rate, 1.0),
            ("parse + time order", order.events, order.wall, order.cpu, order.rate, order.rate / parse.rate),
            ("replay (whole command)", run.events, run.wall, run.cpu, run.rate, run.rate / parse.rate),
            ("simulator alone", alone.events, alone.wall, alone.cpu, alone.rate, alone.rate / parse.rate),
        ]
        print_table(("", "events", "wall s", "cpu s", "events/s", "x parse"), rows)
        print(f"\ndecisions.jsonl: {decisions_mb:,.0f} MB; peak RSS after the replay: {peak:,.0f} MB")
        print(
            f"{open_now:,} open tickets ({timers:,} timers pending) in a fresh simulator: {grown:,.0f} MB "
            f"({grown * 1024 / max(open_now, 1):,.1f} KB each)"
        )
        print(
            f"\ntargets: whole log under 15 s: {'met' if run.wall < 15 else 'NOT met'} ({run.wall:.1f} s); "
            f"replay >= 25% of parse rate: {'met' if run.rate >= 0.25 * parse.rate else 'NOT met'} "
            f"({100 * run.rate / parse.rate:.0f}%; the simulator alone: "
            f"{100 * alone.rate / parse.rate:.0f}%); 20,000 open tickets under 500 MB: "
            f"{'met' if grown < 500 else 'NOT met'} ({grown:,.0f} MB)"
        )
        if args.profile:
            profile(out, args.limit)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if args.log == "both":
        other_log("bpic2013", args.limit)


if __name__ == "__main__":
    main()
