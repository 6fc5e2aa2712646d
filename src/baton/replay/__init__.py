"""Replay (capability R1): history through a policy in simulated time, two policies compared,
and gates on the KPIs they produce.

- :mod:`~baton.replay.order` reads a history file in global time order, in bounded memory;
- :mod:`~baton.replay.run` runs events through one or two policies in the simulator;
- :mod:`~baton.replay.history` replays a log as it happened (an observer policy);
- :mod:`~baton.replay.compare` and :mod:`~baton.replay.gate` compare and gate;
- :mod:`~baton.replay.outputs` and :mod:`~baton.replay.report` write ``decisions.jsonl``,
  ``kpis.json`` and ``report.html``.

``docs/replay.md`` describes the command; ``docs/kpis.md`` the KPIs.

Nothing is imported here: the reader process (:mod:`~baton.replay.ahead`) imports this package
first and needs only the reading half, not the simulator, the KPIs and SQLAlchemy.
"""
