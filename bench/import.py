"""History import throughput: rows/s for each real log, against a bare CSV parse of the same file.

    python bench/import.py            # both logs, whole files, through the engine (a few minutes)
    python bench/import.py --quick    # the engine import on the first 1,500 tickets of each log

What is measured, per log, in this one run:

- **bare csv**: ``csv.reader`` over ``gzip.open(path, "rt")``, counting rows and doing nothing else:
  the floor for reading the file on this machine (best of two passes).
- **parse + map**: :class:`baton.signals.history.HistoryReader` with the built-in mapping: rows
  read, checked, put in per-ticket time order and turned into validated canonical events; no
  store (best of two passes).
- **engine import**: what ``baton import`` does: :func:`import_history` through a shadow engine on
  a fresh SQLite database with the example policy, batches of 500 (dedup, decide, ticket upserts,
  outbox, timers, audit chain, one commit per batch).

Ratios are against the bare parse of the same run; raw rates move with whatever else the shared
machine is doing, ratios much less. Rows per CPU second of this process (the import runs in one
process) are printed too: on a busy machine they move much less than wall-clock rates.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from baton.bootstrap import tune_gc
from baton.clock import SystemClock
from baton.engine.runtime import Engine
from baton.policy.loader import load_policy
from baton.signals.history import HistoryReader
from baton.signals.history_import import import_history, shadow_engine
from baton.signals.history_mapping import load_mapping
from baton.store.db import open_database

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LOGS = {
    "servicenow": DATA / "servicenow_incident_event_log.csv.gz",
    "bpic2013": DATA / "bpic2013_volvo_it_incidents_VINST.csv.gz",
}
EXAMPLE_POLICY = ROOT / "examples" / "policy"
QUICK_TICKETS = 1_500


@dataclass(frozen=True)
class Run:
    rows: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.rows / self.wall if self.wall else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.rows / self.cpu if self.cpu else 0.0


def timed(work: Callable[[], int]) -> Run:
    wall, cpu = time.perf_counter(), time.process_time()
    rows = work()
    return Run(rows, time.perf_counter() - wall, time.process_time() - cpu)


def best(work: Callable[[], int], passes: int = 2) -> Run:
    return min((timed(work) for _ in range(passes)), key=lambda r: r.wall)


def bare_csv(path: Path) -> int:
    with gzip.open(path, "rt", newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        return sum(1 for _ in reader)


def parse_and_map(path: Path, name: str) -> int:
    with HistoryReader(path, load_mapping(name)) as reader:
        for item in reader:
            if item.event is None:
                raise SystemExit(f"{path}: row {item.row}: {item.error}")
        return reader.rows_read


def engine_import(path: Path, name: str, *, limit: int | None, policy_dir: Path) -> int:
    folder = Path(tempfile.mkdtemp(prefix="baton-bench-import-"))
    try:
        db = open_database(f"sqlite:///{folder / 'baton.db'}")
        db.migrate()
        engine = shadow_engine(Engine(db=db, policy=load_policy(policy_dir), clock=SystemClock()))
        with HistoryReader(path, load_mapping(name), limit=limit) as reader:
            summary = import_history(engine=engine, reader=reader, batch=500)
        db.dispose()
        if summary.errors or summary.events != summary.rows:
            raise SystemExit(f"{name}: unexpected import result {summary}")
        return summary.rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"engine import of the first {QUICK_TICKETS:,} tickets"
    )
    parser.add_argument(
        "--policy", type=Path, default=EXAMPLE_POLICY, help="policy folder for the engine import"
    )
    args = parser.parse_args()
    missing = [str(p) for p in LOGS.values() if not p.exists()]
    if missing:
        raise SystemExit(f"missing data: {', '.join(missing)}")
    tune_gc()  # what `baton import` runs with (build_runtime tunes the collector)
    limit = QUICK_TICKETS if args.quick else None
    scope = f"the first {limit:,} tickets of each log" if limit else "the whole logs"
    print(f"history import: parse + map on the whole logs, engine import on {scope}")
    header = (
        f"{'log':<11} {'stage':<15} {'rows':>8} {'wall s':>7} {'cpu s':>6} {'rows/s':>8} {'vs bare':>8} "
        f"{'rows/cpu-s':>10} {'vs bare':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, path in LOGS.items():
        bare = best(lambda p=path: bare_csv(p))
        mapped = best(lambda p=path, n=name: parse_and_map(p, n))
        engine = timed(lambda p=path, n=name: engine_import(p, n, limit=limit, policy_dir=args.policy))
        for stage, run in (("bare csv", bare), ("parse + map", mapped), ("engine import", engine)):
            print(
                f"{name:<11} {stage:<15} {run.rows:>8,} {run.wall:>7.2f} {run.cpu:>6.2f} "
                f"{run.rate:>8,.0f} {run.rate / bare.rate:>7.3f}x "
                f"{run.cpu_rate:>10,.0f} {run.cpu_rate / bare.cpu_rate:>7.3f}x"
            )
        print(
            f"{name:<11} engine import is {mapped.rate / engine.rate:.1f}x slower than parse + map, "
            f"{bare.rate / engine.rate:.0f}x slower than the bare parse"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
