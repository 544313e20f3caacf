"""The checkpoint retention runtime on real files, torch state dicts and real processes.

In-process tests drive the actors one transition at a time (typed errors, a read-only
or full directory). Process tests run ``racefree demo ckpt``'s workers: a lagging
reader, two readers at different speeds with a slow eval reader, a trainer killed
mid-write, a resume over a stale folder; the same harness under the upstream rules
must lose a load (pre_fix) and fail the resume (post_fix), or it has no teeth.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # real processes on real files

from racefree.codegen.instance import machine_class  # noqa: E402
from racefree.runtime.ckpt import errors as E  # noqa: E402
from racefree.runtime.ckpt.common import Deadline  # noqa: E402
from racefree.runtime.ckpt.config import RunConfig, spec_path  # noqa: E402
from racefree.runtime.ckpt.demo import DemoOptions, finish, run_until, start_run  # noqa: E402
from racefree.runtime.ckpt.files import (  # noqa: E402
    Layout,
    load_shard,
    read_json,
    read_manifest,
    save_shard,
    write_json,
    write_manifest,
)
from racefree.runtime.ckpt.inprocess import InProcessRun  # noqa: E402
from racefree.runtime.ckpt.launcher import create_run, read_epoch, resume_run  # noqa: E402
from racefree.runtime.ckpt.statefile import StateFile  # noqa: E402
from racefree.runtime.ckpt.store import ProtocolStore  # noqa: E402
from racefree.runtime.ckpt.trainer import Trainer, state_dict  # noqa: E402

from .conftest import ROOT  # noqa: E402

K_FENCED = 1 + 3 + 1  # A + 3 + E


# ------------------------------------------------------------------ instances and files

def test_instances_use_the_checked_in_module_at_the_spec_sizes() -> None:
    from racefree.runtime.generated.ckpt_fenced import CkptFenced

    assert machine_class(spec_path(), "CkptFenced", RunConfig(steps=5, keep_interval=2).consts) is CkptFenced
    # the run's length is not part of the machine: a million steps run the same window
    assert RunConfig(steps=10**6).consts == RunConfig(steps=5).consts
    big = machine_class(spec_path(), "CkptFenced", RunConfig(readers=4, async_level=2, keep_interval=0).consts)
    assert big is not CkptFenced and dict(big.VARS)["n"].hi == 5 and len(big().snapshot().reg) == 4
    assert ("clean", ()) in big().enabled_instances()


def test_unknown_constant_is_a_spec_error(run_cli) -> None:
    code, _, err = run_cli("replay", "spec/protocols/ckpt_retention.rf", "x.jsonl", "--machine", "CkptFenced",
                           "--const", "Q=3")
    assert code == 2 and "error[RF010]" in err and "unknown constant of CkptFenced 'Q'" in err
    code, _, err = run_cli("replay", "spec/protocols/ckpt_retention.rf", "x.jsonl", "--const", "S=3")
    assert code == 2 and "error[RF041]" in err and "--machine" in err
    code, _, err = run_cli("replay", "spec/protocols/ckpt_retention.rf", "x.jsonl", "--machine", "CkptFenced",
                           "--const", "S:3")
    assert code == 2 and "error[RF041]" in err


def test_every_bad_file_is_a_typed_error(tmp_path: Path) -> None:
    folder = tmp_path / "step_3"
    folder.mkdir()
    entry = save_shard(folder / "shard_0.pt", state_dict(3, 0, 0.01))
    write_manifest(folder, 3, 0, [entry])
    assert float(load_shard(folder / "shard_0.pt", 3, entry)["layer0.weight"][0]) == 3.0
    assert read_manifest(folder, 3) == [entry]
    # garbage, truncated and wrong-shaped small files
    for text, reason in (("", "empty"), ("{\"epoch\": 1", "not JSON"), ("[1]", "JSON object")):
        (tmp_path / "LOADED_STEP").write_text(text)
        with pytest.raises(E.BadFile, match=reason) as info:
            read_json(tmp_path / "LOADED_STEP")
        assert info.value.path == tmp_path / "LOADED_STEP"
    # a shard cut short, a shard that differs from the manifest, a folder without a manifest
    data = (folder / "shard_0.pt").read_bytes()
    (folder / "shard_0.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(E.TornRead):
        load_shard(folder / "shard_0.pt", 3)
    with pytest.raises(E.ManifestMismatch, match="bytes"):
        load_shard(folder / "shard_0.pt", 3, entry)
    (folder / "shard_0.pt").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(E.ManifestMismatch, match="sha256"):
        load_shard(folder / "shard_0.pt", 3, entry)
    (folder / "MANIFEST.json").unlink()
    with pytest.raises(E.StepFolderInvalid, match="no MANIFEST"):
        read_manifest(folder, 3)
    with pytest.raises(E.StepMissing):
        load_shard(tmp_path / "step_9" / "shard_0.pt", 9)
    with pytest.raises(E.StepMissing):
        read_manifest(tmp_path / "step_9", 9)


def test_bad_protocol_files_stop_an_actor_with_the_path(tmp_path: Path) -> None:
    layout = create_run(tmp_path / "b", RunConfig(steps=4))
    with ProtocolStore(layout.root, actor="t") as store:
        with store.transaction() as m:
            m.clean()  # a second commit: both state slots exist
        good = [p.read_bytes() for p in store.file.slots]
        for i in (0, 1):  # a damaged slot, newer or older, is an error: never a rollback to the other
            store.file.slots[i].write_bytes(good[i][:100])
            with pytest.raises(E.BadFile, match="damaged protocol state") as info:
                store.peek()
            assert info.value.path == store.file.slots[i]
            store.file.slots[i].write_bytes(good[i])
        assert store.peek().tpc.name == "WAIT"
    StateFile(layout.root).write(7, {"machine": "CkptFenced", "state": {"n": 99}})
    with ProtocolStore(layout.root, actor="t") as store, pytest.raises(E.BadFile, match="PROTOCOL.1: bad state"):
        store.peek()
    for slot, data in zip(StateFile(layout.root).slots, good, strict=True):
        slot.write_bytes(data)
    layout.epoch.write_text('{"epoch": "one"}')
    with pytest.raises(E.BadFile, match="non-negative integer"):
        read_epoch(layout)
    layout.epoch.write_text('{"epoch": 7}')  # an unknown, future epoch
    with ProtocolStore(layout.root, actor="t") as store, pytest.raises(E.BadFile, match="says epoch 7, a future"):
        Trainer(store)
    layout.epoch.write_text('{"epoch": 0}')
    (layout.root / "RUN.json").write_text('{"policy": "yolo"}')
    with pytest.raises(E.BadFile, match="policy"):
        ProtocolStore(layout.root, actor="t")
    with pytest.raises(E.CkptError, match="not empty"):
        create_run(layout.root, RunConfig(steps=4))


def test_a_missing_folder_or_a_wrong_marker_is_typed_and_nothing_is_recreated(tmp_path: Path) -> None:
    run = InProcessRun(tmp_path / "b", RunConfig(steps=6, shard_mb=0.01))
    run.trainer.clean()
    run.layout.staging.rmdir()
    with pytest.raises(E.MissingFolder, match=r"\.staging: missing folder"):
        run.publish_next()
    assert not run.layout.staging.exists() and run.snap().tpc.name == "TOP"
    run.layout.staging.mkdir()
    run.trainer.publish()
    run.trainer.clean()
    run.load_newest()
    assert read_json(run.layout.marker) == {"epoch": 0, "step": 1}
    run.poller.check_marker()  # read back: it says what the state says
    write_json(run.layout.marker, {"epoch": 0, "step": 9})
    with pytest.raises(E.BadFile, match="says epoch 0, step 9; the protocol state says epoch 0, step 1"):
        run.poller.check_marker()
    run.layout.marker.unlink()
    with pytest.raises(E.BadFile, match="LOADED_STEP: missing"):
        run.poller.check_marker()
    run.publish_next()
    run.load_newest()
    run.trainer.clean()  # step 1 retired into .trash ...
    assert run.snap().trash
    shutil.rmtree(run.layout.trash)
    with pytest.raises(E.MissingFolder, match=r"\.trash: missing folder"):
        run.trainer.purge()
    assert run.snap().trash  # ... and the purge did not happen


# ------------------------------------------------------------------ one transition at a time

@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """A folder nobody may change: chmod for a user, the immutable attribute for root."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    else:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a filesystem without chattr +i: cannot make a folder read-only")
        undo = ["chattr", "-i", str(folder)]
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


def test_read_only_folder_is_a_clear_error_and_nothing_is_deleted(tmp_path: Path) -> None:
    run = InProcessRun(tmp_path / "b", RunConfig(steps=6, shard_mb=0.01))
    run.trainer.clean()
    for _ in range(2):
        run.publish_next()
        run.trainer.clean()
        run.load_newest()
    run.publish_next()  # step 3 published, the marker and the reader at 2: the clean retires step 1
    before = [p.read_bytes() for p in run.trainer.store.file.slots]
    with read_only(run.layout.root), pytest.raises(E.DiskError, match="protocol state is unchanged"):
        run.trainer.clean()
    assert [p.read_bytes() for p in run.trainer.store.file.slots] == before and run.layout.step(1).is_dir()
    assert run.snap().tpc.name == "CLEAN"  # type: ignore[attr-defined]
    run.trainer.clean()  # writable again: the same decision goes through
    assert not run.layout.step(1).exists() and run.snap().trash == {1}  # type: ignore[attr-defined]
    run.trainer.purge()
    assert not any(run.layout.trash.iterdir()) and run.snap().trash == frozenset()  # type: ignore[attr-defined]


def test_a_corrupt_shard_is_a_failed_load_and_the_reader_keeps_serving(tmp_path: Path) -> None:
    run = InProcessRun(tmp_path / "b", RunConfig(steps=6, shard_mb=0.01))
    run.trainer.clean()
    run.publish_next()
    shard = run.layout.step(1) / "shard_1.pt"
    data = shard.read_bytes()
    shard.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    for body in (run.poller.start, run.poller.send):
        run.poller.step(body)
    assert run.reader.load() is None
    assert run.reader.stats.load_failures == 1 and run.reader.stats.errors[0].startswith("ManifestMismatch")
    snap = run.snap()
    assert not snap.reg[0] and not snap.member[0]  # read_fail: the reader left the fan-out
    run.poller.store.peek()
    assert not run.poller.store.machine.enabled("load_done")  # nobody loaded step 1
    run.poller.step(lambda m: m.load_abort())
    snap = run.snap()
    assert snap.c == 0 and snap.LS is None and snap.poll.name == "IDLE"  # the loaded step did not move
    assert not run.layout.marker.exists()
    run.reader.register()  # joins again
    run.trainer.clean()
    run.publish_next()
    run.load_newest()
    assert run.snap().member[0] and run.absolute(run.snap().c) == 2 and read_json(run.layout.marker)["step"] == 2


def test_full_disk_fails_the_publish_and_publishes_nothing(tmp_path: Path) -> None:
    run = InProcessRun(tmp_path / "b", RunConfig(steps=4, shard_mb=2.0))
    run.trainer.clean()
    run.ship()
    run.trainer.step("train")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))  # files past 1 MiB: EFBIG, as on a full disk
    try:
        with pytest.raises(E.DiskError, match="cannot write"):
            run.trainer.publish(1)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert run.layout.step_dirs() == {} and run.snap().present == frozenset()  # type: ignore[attr-defined]
    with ProtocolStore(run.layout.root, actor="again") as store, pytest.raises(E.CkptError, match="half-published"):
        Trainer(store).run(Deadline(5))


# ------------------------------------------------------------------ real processes

def demo(run_cli, *args: str) -> dict:
    code, out, err = run_cli("demo", "ckpt", "--json", "--timeout", "90", *args)
    report = json.loads(out)
    healthy = (report["completed"] and not report["failed_workers"] and report["replay"] == "ok"
               and report["load_failures"] == 0 and report["torn_reads"] == 0)
    assert report["ok"] == healthy and code == (0 if healthy else 1), err
    return report


def test_a_run_that_stands_still_times_out_and_exits_1(run_cli) -> None:
    """Readers that lag far longer than --timeout stall the fenced gate: nothing moves for 3 s."""
    r = demo(run_cli, "--steps", "6", "--shard-mb", "0.01", "--lag", "30", "--timeout", "3")
    assert not r["completed"] and r["steps_published"] < 6
    assert any(why.startswith("timed out") and "did not move for 3 s" in why for why in r["failed_workers"].values())


def test_a_killed_worker_fails_the_demo_and_the_report_names_it(tmp_path: Path) -> None:
    root = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-m", "racefree.cli.main", "demo", "ckpt", "--steps", "40", "--json",
                             "--shard-mb", "0.01", "--train-s", "0.1", "--dir", str(root), "--timeout", "60"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        trainer = _wait_for_worker(root, "trainer", lambda: len(Layout(root).step_dirs()) >= 2)
        os.kill(trainer, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    report = json.loads(out)
    assert proc.returncode == 1 and not report["ok"] and not report["completed"], err
    assert report["failed_workers"]["trainer1"].startswith("killed by SIGKILL")
    assert report["steps_published"] < 40


def _wait_for_worker(root: Path, role: str, ready: Callable[[], bool], name: str | None = None) -> int:
    """The pid of the demo's ``role`` worker on ``root`` (named ``name``), once ``ready()`` holds."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = [pid for pid, argv in _workers() if str(root) in argv
                and argv[argv.index("racefree.runtime.ckpt.worker") + 1] == role
                and (name is None or name in argv)]
        if pids and ready():
            return pids[0]
        time.sleep(0.02)
    raise AssertionError(f"no {role} worker under {root} got ready")


def _workers() -> list[tuple[int, list[str]]]:
    out = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "racefree.runtime.ckpt.worker" in argv:
            out.append((int(entry.name), argv))
    return out


def test_lagging_reader_fenced_loses_nothing_and_stays_bounded(run_cli) -> None:
    r = demo(run_cli, "--policy", "fenced", "--lag", "0.5", "--steps", "20")
    assert r["steps_published"] == 20 and r["load_failures"] == 0 and r["replay"] == "ok", r
    assert 0 < r["max_step_dirs_on_disk"] <= r["disk_bound"] == K_FENCED and r["divergences"] == 0
    assert r["steps_loaded"] >= 2 and not r["crashed"]


def test_lagging_reader_pre_fix_loses_a_load_and_replay_names_it(run_cli) -> None:
    r = demo(run_cli, "--policy", "pre_fix", "--lag", "0.5", "--steps", "12")
    assert r["load_failures"] >= 1 and r["crashed"], r
    assert any(e.startswith("StepMissing") for e in r["errors"])
    assert r["replay"] == "violation" and "no_delete_before_load" in r["replay_violations"]


def test_two_readers_and_a_slow_eval_reader(tmp_path: Path) -> None:
    cfg = RunConfig(policy="fenced", steps=12, readers=2, shard_mb=0.25)
    run = start_run(cfg, tmp_path / "b")
    run_until(run, DemoOptions(reader_lags=(0.0, 0.6), eval_lag=2.0, timeout=90))
    run = finish(run)
    stats = {s["actor"]: s for s in run.stats}
    assert run.total("load_failures") == 0 and run.total("torn_reads") == 0 and run.total("divergences") == 0
    assert stats["eval"]["loaded"] and stats["eval"]["loaded"][0] <= 2  # it pinned an old step...
    assert run.max_dirs <= K_FENCED  # ...and the disk bound still held
    assert stats["reader0"]["loaded"] == stats["reader1"]["loaded"]  # one fan-out: both load every target
    assert _replay(run) == ("ok", [])


def test_trainer_killed_mid_write_never_shows_a_torn_step(tmp_path: Path) -> None:
    cfg = RunConfig(policy="fenced", steps=8, keep_interval=2, resume=True, shard_mb=0.25)
    run = start_run(cfg, tmp_path / "b")
    options = DemoOptions(kill_after=(3, 0), lag=0.05, timeout=90)
    run_until(run, options, stop_when=lambda snap: False)  # until the trainer dies
    assert run.exit_codes["trainer1"] == -signal.SIGKILL
    layout = Layout(run.root)
    assert 3 not in layout.step_dirs() and len(list(layout.staging.iterdir())) == 1
    removed = resume_run(run.root, 2, trace_dir=run.traces)
    assert removed["staging"] == 1 and not any(layout.staging.iterdir())
    run_until(run, options)
    run = finish(run)
    assert run.total("load_failures") == 0 and run.total("torn_reads") == 0
    assert _replay(run) == ("ok", []) and run.final_step == 8


def _resume_over_stale_folder(tmp_path: Path, policy: str) -> tuple[object, dict, list[int]]:
    cfg = RunConfig(policy=policy, steps=8, keep_interval=2, resume=True, shard_mb=0.25)
    run = start_run(cfg, tmp_path / "b")
    options = DemoOptions(lag=0.1, timeout=90)
    # The newest trained step (``n`` >= 5) published, so never retired yet, and a load above R.
    run_until(run, options, stop_when=lambda snap: snap.n >= 5 and snap.n in snap.present and (snap.LS or 0) > 2)
    layout = Layout(run.root)
    marker = read_json(layout.marker)
    assert marker is not None and marker["step"] > 2  # the dead run's marker names a step above R
    stale = sorted(v for v in layout.step_dirs() if v > 2)  # older ones may already be retired
    assert stale and stale[-1] >= 5
    (layout.staging / "step_7.0.12345").mkdir(parents=True, exist_ok=True)  # half-written staging
    (layout.staging / "step_7.0.12345" / "shard_0.pt").write_bytes(b"\x00" * 10)
    removed = resume_run(run.root, 2, trace_dir=run.traces)
    assert removed["steps"] == stale
    run_until(run, options)
    run = finish(run)
    first_loads = [s["loaded"][0] for s in run.stats if s["actor"] == "reader0" and s["epoch"] == 1 and s["loaded"]]
    return run, removed, first_loads


def test_resume_over_a_stale_folder_prunes_and_loads_r_first(tmp_path: Path, run_cli) -> None:
    run, removed, first_loads = _resume_over_stale_folder(tmp_path, "fenced")
    traces = sorted(str(p) for p in run.traces.glob("*.jsonl"))  # type: ignore[attr-defined]
    code, out, _ = run_cli("replay", str(spec_path()), "--machine", "CkptFenced", "--const", "I=2", *traces)
    assert code == 0 and "no invariant is violated" in out, out
    assert removed["marker"] and removed["staging"] >= 1
    assert read_epoch(Layout(run.root)) == 1  # type: ignore[attr-defined]
    assert first_loads == [2]  # the readers of the resumed run loaded R before anything else
    assert run.total("load_failures") == 0 and run.total("torn_reads") == 0  # type: ignore[attr-defined]
    assert _replay(run) == ("ok", [])


def test_resume_post_fix_fails_the_same_scenario(tmp_path: Path) -> None:
    run, removed, _ = _resume_over_stale_folder(tmp_path, "post_fix")
    assert not removed["marker"]  # upstream leaves LOADED_STEP from the dead epoch
    outcome, violated = _replay(run)
    assert outcome == "violation" and "loaded_marker_sound" in violated


def _replay(run: object) -> tuple[str, list[str]]:
    from racefree.cli.demo import ckpt_report

    r = ckpt_report(run)
    return r["replay"], r.get("replay_violations", [])


def test_demo_refuses_bad_options(run_cli) -> None:
    code, _, err = run_cli("demo", "ckpt", "--policy", "pre_fix", "--resume-at", "2", "--keep-interval", "2")
    assert code == 2 and "no resume" in err
    code, _, err = run_cli("demo", "ckpt", "--resume-at", "3", "--keep-interval", "2")
    assert code == 2 and "multiple of --keep-interval" in err
    assert (ROOT / "spec" / "protocols" / "ckpt_retention.rf").exists()


# ------------------------------------------------------------------ dead readers, resumes, long runs

def _fenced_demo(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    root = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-m", "racefree.cli.main", "demo", "ckpt", "--json", "--dir", str(root),
                             "--shard-mb", "0.01", "--timeout", "60", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, root


def _report(proc: subprocess.Popen[str]) -> dict:
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err, err
    return json.loads(out)


def _reader_state(root: Path, i: int) -> str:
    with contextlib.suppress(E.CkptError, FileNotFoundError), ProtocolStore(root, actor="watch") as store:
        return str(store.peek().rd[i].name)
    return ""


def test_readers_killed_mid_load_and_idle_are_evicted_and_the_run_completes(tmp_path: Path) -> None:
    """Three readers: reader0 is SIGKILLed in the middle of a load, reader1 while idle; reader2 carries
    the run. Both dead readers' leases run out, the poll task evicts them, every step is published."""
    proc, root = _fenced_demo(tmp_path, "--readers", "3", "--steps", "16", "--lag", "0.3", "--lease", "1.5",
                              "--train-s", "0.1")
    try:
        os.kill(_wait_for_worker(root, "reader", lambda: _reader_state(root, 0) == "READING", "reader0"), signal.SIGKILL)
        os.kill(_wait_for_worker(root, "reader", lambda: _reader_state(root, 1) == "RIDLE", "reader1"), signal.SIGKILL)
    finally:
        r = _report(proc)
    assert proc.returncode == 1 and not r["ok"]  # a worker died: never exit 0 ...
    assert r["completed"] and r["steps_published"] == 16 and r["replay"] == "ok", r  # ... but the run finished
    assert r["failed_workers"]["reader01"].startswith("killed by SIGKILL")
    assert {"reader0", "reader1"} <= set(r["evictions"])
    assert r["load_failures"] == 0 and r["max_step_dirs_on_disk"] <= r["disk_bound"]


def test_a_reader_that_never_comes_back_is_evicted(tmp_path: Path) -> None:
    """A stale record of a reader from a previous run (renewed an hour ago), whose process never
    starts: its lease has run out, it is evicted, and the run does not wait for it."""
    cfg = RunConfig(policy="fenced", steps=10, readers=2, shard_mb=0.01, lease_s=1.5, eval_reader=False)
    run = start_run(cfg, tmp_path / "b")
    stale = Layout(run.root).record("reader1")
    write_json(stale, {"epoch": 0, "reader": 1, "role": "reader"})
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    run_until(run, DemoOptions(absent_readers=(1,), timeout=60))
    run = finish(run)
    assert run.finished and run.failed_workers() == {}
    assert [e for s in run.stats if s["actor"] == "orchestrator" for e in s["evictions"]] == ["reader1"]
    assert _replay(run) == ("ok", [])


def test_three_resumes_of_one_run_folder(tmp_path: Path) -> None:
    cfg = RunConfig(policy="fenced", steps=14, keep_interval=2, resume=True, shard_mb=0.01, lease_s=2)
    run = start_run(cfg, tmp_path / "b")
    options = DemoOptions(lag=0.05, timeout=60)
    for stop, base in ((4, 2), (8, 6), (11, 10)):
        run_until(run, options, stop_when=lambda v, stop=stop: v.n >= stop)
        removed = resume_run(run.root, base, trace_dir=run.traces)
        assert all(v > base for v in removed["steps"]) and removed["marker"]
    run_until(run, options)
    run = finish(run)
    assert read_epoch(Layout(run.root)) == 3 and run.finished and run.final_step == 14
    first = {s["epoch"]: s["loaded"][0] for s in run.stats if s["actor"] == "reader0" and s["loaded"]}
    assert {e: first.get(e) for e in (1, 2, 3)} == {1: 2, 2: 6, 3: 10}, first  # each resumed run loads R first
    assert run.total("load_failures") == 0 and _replay(run) == ("ok", [])


def test_a_long_run_slides_its_window_and_its_state_does_not_grow(tmp_path: Path) -> None:
    run = InProcessRun(tmp_path / "b", RunConfig(steps=10**9, shard_mb=0.001, eval_reader=False))
    run.trainer.clean()
    sizes = []
    for _ in range(60):
        run.trainer_step()
        run.load_newest()
        sizes.append(len(json.dumps(run.trainer.store.file.read()[1])))
    snap = run.snap()
    assert run.absolute(snap.n) == 60 and run.trainer.store.base == 60 - run.trainer.config.window
    assert snap.n == run.trainer.config.window  # the machine's own numbers stay inside the window
    assert sorted(run.layout.step_dirs()) == [59, 60]
    assert max(sizes[10:]) - min(sizes[10:]) <= 2  # a digit of the base, not the run's history
    run.close()
