"""One actor of a checkpoint run as its own process: ``python -m racefree.runtime.ckpt.worker ROLE ...``.

The demo and the fault-injection tests start these; a user's trainer would instead
embed ``Trainer`` / ``FencedReader`` in its own processes. Every worker writes its JSONL trace
and, on exit, a stats file; exit status 0 when its loop ended, 3 on a typed error, 124
when it gave up waiting.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .common import Deadline, Stats
from .consumer import EvalReader, FencedReader, Reader
from .errors import CkptError
from .orchestrator import Poller, Shipper
from .store import ProtocolStore
from .trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="racefree.runtime.ckpt.worker")
    ap.add_argument("role", choices=["trainer", "orchestrator", "reader", "eval"])
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--traces", required=True, type=Path)
    ap.add_argument("--stats", required=True, type=Path)
    ap.add_argument("--name", default=None)
    ap.add_argument("--lag", type=float, default=0.0)
    ap.add_argument("--train-s", type=float, default=0.0)
    ap.add_argument("--rollout-s", type=float, default=0.0)
    ap.add_argument("--kill-after", default=None, help="STEP:SHARD: SIGKILL the trainer after writing that shard")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--monitor", action="store_true", help="check every spec invariant after each transition")
    a = ap.parse_args(argv)
    name = a.name or a.role
    if a.role == "reader" and not (name.startswith("reader") and name[6:].isdigit()):
        ap.error(f"a reader's --name is reader<i> (its index in the run), not {name!r}")
    deadline = Deadline(a.timeout)
    stats = Stats(name)
    stores: list[ProtocolStore] = []

    def store(actor: str) -> ProtocolStore:
        s = ProtocolStore(a.root, actor=actor, trace_dir=a.traces, monitor=a.monitor)
        stores.append(s)
        return s

    # The demo stops a run by SIGTERM while it holds the run's lock (no transaction is cut in
    # half; shard writes and reads are): exit through the finally below so the stats are written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    extra: list[tuple[Stats, ProtocolStore]] = []
    code = 0
    try:
        if a.role == "trainer":
            kill = tuple(int(x) for x in a.kill_after.split(":")) if a.kill_after else None
            Trainer(store("trainer"), train_s=a.train_s, kill_after=kill, stats=stats).run(deadline)  # type: ignore[arg-type]
        elif a.role == "orchestrator":
            ship_stats = Stats(f"{name}-ship")
            shipper = Shipper(store(f"{name}-ship"), rollout_s=a.rollout_s, stats=ship_stats)
            extra.append((ship_stats, shipper.store))
            failure: list[BaseException] = []

            def ship() -> None:
                try:
                    shipper.run(deadline)
                except BaseException as exc:  # re-raised in the main thread
                    failure.append(exc)

            th = threading.Thread(target=ship, name="ship", daemon=True)
            th.start()
            Poller(store(f"{name}-poll"), stats=stats).run(deadline)
            th.join()
            if failure:
                raise failure[0]
        elif a.role == "reader":
            st = store(name)
            if st.config.fenced:  # readers are named reader<i>: i is its index in the machine
                FencedReader(st, int(name.removeprefix("reader")), lag_s=a.lag, stats=stats).run(deadline)
            else:
                Reader(st, name, lag_s=a.lag, stats=stats).run(deadline)
        else:
            EvalReader(store(name), name, lag_s=a.lag, stats=stats).run(deadline)
    except CkptError as exc:
        stats.errors.append(f"{type(exc).__name__}: {exc}")
        print(f"{name}: error: {exc}", file=sys.stderr)
        code = 3
    except TimeoutError as exc:
        stats.errors.append(f"timeout: {exc}")
        print(f"{name}: {exc}", file=sys.stderr)
        code = 124
    finally:
        for st, sto in extra:
            st.write(a.stats, sto)
        stats.write(a.stats, stores[-1] if stores else None)
        for s in stores:
            s.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
