"""The local executor's process pool with real spawned workers (no mocks): workers die
with their driver, and a worker that dies costs only its own task a retry.

The cells are hand-made specs of a test protocol (``probe``) whose ``config`` says what
to do; each run of a cell or artifact appends its pid to ``<name>.runs`` in the test's
folder. Tasks coordinate through files, never through timing, so which tasks are in
flight when a worker dies is fixed. A spawned pool costs seconds of CPU (each worker
imports torch and loads the plugins), so these tests start at most two pools each and
are marked slow (``-m slow``); the retry rules are also checked in-process, on a pool
of threads that breaks the way a process pool does.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from amrbench.api import AmrbenchError
from amrbench.store import SCHEMA_VERSION
from amrbench_plugins.executors.local import Task, run_tasks
from tests.conftest import fake_distribution

PLUGINS = """
    import os
    import signal
    import time
    from pathlib import Path

    from amrbench.api import Protocol
    from amrbench.hookspecs import hookimpl


    def wait_for(*paths, timeout=60):
        deadline = time.time() + timeout
        while not all(Path(p).exists() for p in paths):
            if time.time() > deadline:
                raise TimeoutError(f"waited {timeout} s for {paths}")
            time.sleep(0.02)


    def log_run(folder, name):
        '''Append this process's pid to <name>.runs; return how many runs came before.'''
        path = Path(folder) / f"{name}.runs"
        before = len(path.read_text().splitlines()) if path.exists() else 0
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\\n")
        return before


    def act(folder, name, what, earlier_runs):
        '''ok | block (sleep until killed) | block-once (then ok) | die (SIGKILL itself)
        | die-once (then ok); "...:after:a,b" first waits for a.runs (or a.done) and b...'''
        what, _, rest = what.partition(":")
        if rest:
            marker, _, names = rest.partition(":")
            wait_for(*(Path(folder) / f"{n}.{'runs' if marker == 'started' else 'done'}" for n in names.split(",")))
        if what == "block" or (what == "block-once" and not earlier_runs):
            time.sleep(120)
        if what == "die" or (what == "die-once" and not earlier_runs):
            os.kill(os.getpid(), signal.SIGKILL)
        (Path(folder) / f"{name}.done").touch()


    class Probe(Protocol):
        '''Test cells that do what their config says (see act).'''
        name = "probe"

        def needs(self, registry, cell):
            return ["fragile"] if cell.get("artifact") else []

        def run_cell(self, ctx, cell):
            act(cell["dir"], cell["name"], cell["act"], log_run(cell["dir"], cell["name"]))
            return {"value": cell["seed"] * 10 + 1}


    def fragile_config(ctx):
        return {"name": ctx.cell["artifact"]["name"]}


    def fragile_compute(ctx):
        spec, folder = ctx.cell["artifact"], ctx.cell["dir"]
        act(folder, spec["name"], spec["act"], log_run(folder, spec["name"]))
        return {"name": spec["name"]}


    @hookimpl
    def amrbench_register(registry):
        registry.add(Probe)
        registry.add_resource("fragile", fragile_config, fragile_compute)
"""

DRIVER = """
    import json
    import sys
    import threading

    from amrbench_plugins.executors.local import LocalExecutor



    def drive(cells, cache):
        for record in LocalExecutor().run(cells, {"jobs": 2, "device": "cpu", "cache": cache}):
            print(record["status"], flush=True)


    if __name__ == "__main__":
        cells, cache, where = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
        if where == "thread":
            thread = threading.Thread(target=drive, args=(cells, cache))
            thread.start()
            thread.join()
        else:
            drive(cells, cache)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The probe protocol on sys.path, where spawned workers see it too."""
    root = fake_distribution(tmp_path_factory.mktemp("site"), "local-test-plugins",
                             {"local_test_plugins": PLUGINS}, {"local-test": "local_test_plugins"})
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        yield root


def probe(folder, name, what="ok", seed=0, artifact=None):
    config = {"protocol": "probe", "settings": {}, "seed": seed, "dir": str(folder), "name": name, "act": what}
    if artifact:
        config["artifact"] = artifact
    return {"key": f"key-{name}", "suite": "probe-suite", "config": config,
            "labels": {"dataset": "-", "model": "-", "method": name, "budget": "-", "seed": seed}}


def run_pool(cells, tmp_path, retries=2, notify=None):
    from amrbench.registry import default_registry

    executor = default_registry().create("executor", "local", {"retries": retries})
    options = {"jobs": 2, "device": "cpu", "cache": str(tmp_path / "artifacts")}
    return {r["key"][len("key-"):]: r for r in executor.run(cells, options, notify)}


def runs(folder, name) -> int:
    path = Path(folder) / f"{name}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_a_dead_worker_costs_its_neighbour_a_rerun_not_its_record(site, tmp_path):
    """'lucky' dies once while 'innocent' runs beside it: both are resubmitted to a
    fresh pool and succeed, and the cells after them still run."""
    cells = [probe(tmp_path, "lucky", "die-once:started:innocent"), probe(tmp_path, "innocent", "block-once", seed=1),
             probe(tmp_path, "after", seed=2)]
    started = []
    records = run_pool(cells, tmp_path, notify=lambda cell: started.append(cell["config"]["name"]))
    assert {name: r["status"] for name, r in records.items()} == {"lucky": "ok", "innocent": "ok", "after": "ok"}
    assert {name: r["metrics"]["value"] for name, r in records.items()} == {"lucky": 1, "innocent": 11, "after": 21}
    assert (runs(tmp_path, "lucky"), runs(tmp_path, "innocent"), runs(tmp_path, "after")) == (2, 2, 1)
    assert sorted(started) == ["after", "innocent", "lucky"]  # a cell starts once for its reporters


@pytest.mark.slow
def test_a_cell_whose_worker_always_dies_fails_after_its_retries_and_the_run_goes_on(site, tmp_path):
    cells = [probe(tmp_path, "doomed", "die:done:first,second"), probe(tmp_path, "first", seed=1),
             probe(tmp_path, "second", seed=2)]
    records = run_pool(cells, tmp_path, retries=1)
    assert runs(tmp_path, "doomed") == 2  # retries + 1 attempts
    assert records["first"]["status"] == records["second"]["status"] == "ok"
    failed = records["doomed"]
    assert failed["status"] == "failed" and failed["metrics"] is None
    assert failed["error"].startswith("worker died 2 time(s) running this cell: its process was killed")
    assert "gave up after 1 retry" in failed["error"]
    assert failed["schema_version"] == SCHEMA_VERSION and failed["device"] == "cpu"
    assert failed["env"]["threads"] == 1 and failed["env"]["torch"] == records["first"]["env"]["torch"]
    assert set(records["first"]) - set(failed) <= {"pid", "started_at"}
    assert failed["wall_time_s"] > 0 and failed["config"] == cells[0]["config"]


@pytest.mark.slow
def test_an_artifact_whose_worker_dies_fails_only_the_cells_that_need_it(site, tmp_path):
    """The shared artifact's worker dies (no retries): the cell that needs it is recorded
    failed without running; the cell that needs the other artifact, and one that needs
    none, succeed."""
    cells = [probe(tmp_path, "needs-bad", artifact={"name": "bad", "act": "die:done:good"}),
             probe(tmp_path, "needs-good", seed=1, artifact={"name": "good", "act": "ok"}),
             probe(tmp_path, "free", seed=2)]
    records = run_pool(cells, tmp_path, retries=0)
    assert {name: r["status"] for name, r in records.items()} == {"needs-bad": "failed", "needs-good": "ok",
                                                                  "free": "ok"}
    assert records["needs-bad"]["error"].startswith(
        "worker died 1 time(s) computing the shared artifact 'fragile' this cell needs")
    assert (runs(tmp_path, "bad"), runs(tmp_path, "good"), runs(tmp_path, "needs-bad")) == (1, 1, 0)


def test_retries_is_a_parameter_of_the_local_executor(site):
    from amrbench.registry import default_registry

    assert default_registry().create("executor", "local", {"retries": 0}).params["retries"] == 0
    assert default_registry().create("executor", "local").params["retries"] == 2
    with pytest.raises(AmrbenchError, match=r"--retries -1: must be an integer >= 0"):
        default_registry().create("executor", "local", {"retries": -1})


class BreakingPool:
    """Stands in for ``RestartingPool`` in-process, each call in a thread: a call that
    returns "die" breaks the pool as a dead worker breaks a ProcessPoolExecutor (every
    pending future fails with BrokenProcessPool, submits raise it until ``discard``); a
    call that returns "block" stays in flight until then."""

    def __init__(self, jobs):
        self.jobs, self.lock, self.broken = jobs, threading.Lock(), False
        self.pending, self.gate = set(), threading.Event()

    def submit(self, task):
        with self.lock:
            if self.broken:
                raise BrokenProcessPool("a worker died")
            future = Future()
            self.pending.add(future)
        threading.Thread(target=self._run, args=(task, future, self.gate), daemon=True).start()
        return future

    def _run(self, task, future, gate):
        outcome = task.call(*task.args)
        if outcome == "block":
            gate.wait(30)
        with self.lock:
            if outcome == "die" and gate is self.gate:
                self.broken = True
                for pending in self.pending:
                    pending.set_exception(BrokenProcessPool("a worker died"))
                self.pending.clear()
                gate.set()
            elif future in self.pending:
                self.pending.discard(future)
                future.set_result(outcome)

    def discard(self):
        with self.lock:
            self.broken, self.pending, self.gate = False, set(), threading.Event()


def scripted(*outcomes, before=None):
    """A call returning the next outcome at each attempt; ``before`` waits for an event."""
    left = list(outcomes)

    def call():
        if before is not None:
            before.wait(30)
        return left.pop(0) if len(left) > 1 else left[0]
    return call


def test_a_worker_that_kills_every_neighbour_never_fails_the_neighbours():
    """Even with no retries, a cell in flight beside a dying one is never given up for
    that death: the tasks of a shared death rerun one at a time, and only a death alone
    counts to the end; the run goes on."""
    killer_may_die = threading.Event()

    def neighbour_call():
        killer_may_die.set()
        return neighbour()

    neighbour = scripted("block", "ok")
    tasks = [Task(scripted("die", before=killer_may_die), (), name="killer"), Task(neighbour_call, (), name="neighbour"),
             Task(scripted("ok"), (), name="later")]
    ended = {task.name: (future.result() if future else f"given up after {task.deaths} deaths")
             for task, future in run_tasks(BreakingPool(2), tasks, retries=0)}
    assert ended == {"killer": "given up after 2 deaths", "neighbour": "ok", "later": "ok"}


def test_a_pool_whose_workers_die_with_nothing_in_flight_stops_the_run_with_one_line():
    class DeadOnArrival(BreakingPool):
        def submit(self, task):
            raise BrokenProcessPool("a worker died")

    with pytest.raises(AmrbenchError, match=r"worker processes die before running anything.*or use --jobs 1"):
        list(run_tasks(DeadOnArrival(2), [Task(scripted("ok"), (), name="a")], retries=1))


WORKER_START = """
    import ctypes, os, sys, time
    from amrbench_plugins.executors.local import die_with_driver

    die_with_driver(os.getppid(), True)
    signal = ctypes.c_int()
    ctypes.CDLL(None).prctl(2, ctypes.byref(signal), 0, 0, 0)  # PR_GET_PDEATHSIG
    print(signal.value, flush=True)
    die_with_driver(-1, False)  # a driver that is not this process's parent: as if it had died
    time.sleep(30)
    print("still alive", flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl")
def test_a_worker_asks_for_sigkill_when_its_driver_dies_and_exits_once_orphaned():
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(WORKER_START)], capture_output=True, text=True,
                          timeout=60)
    # exited before its 30 s sleep ended: "still alive" never printed
    assert done.stdout.split() == [str(int(signal.SIGKILL))] and done.returncode == 1, done.stderr


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie, waiting for a parent that does not reap it, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
@pytest.mark.parametrize("where", ["main", "thread"])
def test_workers_die_with_their_driver(site, tmp_path, where):
    """SIGKILL the driver of a --jobs 2 run: its workers, busy with cells that would
    run two minutes, and the pool's resource tracker are gone within seconds. Driven
    from a thread the pool gets no parent-death signal, and the watchdog ends them."""
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    cells = [probe(tmp_path, "a", "block"), probe(tmp_path, "b", "block", seed=1)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    driver = subprocess.Popen([sys.executable, str(script), json.dumps(cells), str(tmp_path / "c"), where], env=env)
    try:
        deadline = time.time() + 60
        while runs(tmp_path, "a") + runs(tmp_path, "b") < 2:
            assert driver.poll() is None and time.time() < deadline, "the workers never started their cells"
            time.sleep(0.05)
        workers = {int((tmp_path / f"{name}.runs").read_text()) for name in "ab"}
        spawned = set(_children(driver.pid))
        assert workers <= spawned and len(spawned) >= 3  # two workers and the resource tracker
    finally:
        driver.kill()
        driver.wait()
    deadline = time.time() + 5
    while any(map(_alive, spawned)) and time.time() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in spawned if _alive(pid)]


@pytest.mark.slow
def test_a_cell_runs_while_an_artifact_it_does_not_need_computes(site, tmp_path):
    """Each cell is queued once its own artifacts are computed, not after every artifact:
    the artifact 'slow' waits for the cell 'free' to finish, which only works (first
    time, within the probe's wait) when 'free' may run beside it."""
    cells = [probe(tmp_path, "needs-slow", artifact={"name": "slow", "act": "ok:done:free"}),
             probe(tmp_path, "free", seed=1)]
    records = run_pool(cells, tmp_path)
    assert {name: r["status"] for name, r in records.items()} == {"needs-slow": "ok", "free": "ok"}
    assert (runs(tmp_path, "slow"), runs(tmp_path, "free"), runs(tmp_path, "needs-slow")) == (1, 1, 1)


def test_ready_cells_go_ahead_of_waiting_tasks_but_behind_those_to_run_alone():
    from collections import deque

    from amrbench_plugins.executors.local import put_first

    alone, a1, a2, c1, c2 = (Task(print, (), name=n) for n in ("alone", "a1", "a2", "c1", "c2"))
    alone.alone = True
    queue = deque([alone, a1, a2])
    put_first(queue, [c1, c2])
    assert [t.name for t in queue] == ["alone", "c1", "c2", "a1", "a2"]
    empty = deque()
    put_first(empty, [c1])
    assert list(empty) == [c1]


def test_one_job_runs_each_cell_once_its_own_artifacts_are_computed(site, tmp_path):
    """In-process (--jobs 1): the artifact 'b' waits for the record of the cell that
    needs only 'a', so it computes only when that cell ran before it."""
    from amrbench.registry import default_registry

    cells = [probe(tmp_path, "needs-a", artifact={"name": "a", "act": "ok"}),
             probe(tmp_path, "needs-b", seed=1, artifact={"name": "b", "act": "ok:done:needs-a"}),
             probe(tmp_path, "free", seed=2)]
    executor = default_registry().create("executor", "local", {})
    order = [r["key"][len("key-"):] for r in executor.run(cells, {"jobs": 1, "device": "cpu",
                                                                  "cache": str(tmp_path / "artifacts")})]
    assert order == ["free", "needs-a", "needs-b"]
    assert (runs(tmp_path, "a"), runs(tmp_path, "b")) == (1, 1)
