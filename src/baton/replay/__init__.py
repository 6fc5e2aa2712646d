"""Replay (capability R1): history through a policy in simulated time, two policies compared,
and gates on the KPIs they produce.

- :mod:`~baton.replay.order` reads a history file in global time order, in bounded memory;
- :mod:`~baton.replay.run` runs events through one or two policies in the simulator;
- :mod:`~baton.replay.history` replays a log as it happened (an observer policy);
- :mod:`~baton.replay.compare` and :mod:`~baton.replay.gate` compare and gate;
- :mod:`~baton.replay.outputs` and :mod:`~baton.replay.report` write ``decisions.jsonl``,
  ``kpis.json`` and ``report.html``.

``docs/replay.md`` describes the command; ``docs/kpis.md`` the KPIs.
"""

from baton.replay.compare import compare_kpis, compare_tickets
from baton.replay.gate import Gate, GateResult, evaluate_gate, load_gate
from baton.replay.history import as_it_happened, observer_policy
from baton.replay.order import TimeOrdered
from baton.replay.outputs import ReplayOutput, write_replay
from baton.replay.run import PolicyRun, Replayed, RunResult, replay_history

__all__ = [
    "Gate",
    "GateResult",
    "PolicyRun",
    "ReplayOutput",
    "Replayed",
    "RunResult",
    "TimeOrdered",
    "as_it_happened",
    "compare_kpis",
    "compare_tickets",
    "evaluate_gate",
    "load_gate",
    "observer_policy",
    "replay_history",
    "write_replay",
]
