"""Several processes as one run (jaxhw.training.distributed), with real processes on this machine joined over
localhost (gloo collectives): 2 processes with one CPU device each train the BatchNorm CNN and the MLP to the
numbers of 1 process with 2 simulated devices; a run whose coordinator is killed with SIGKILL after a checkpoint
ends the other process at once, and the command resumed over 2 processes ends as the uninterrupted run, written
by process 0 alone; a killed process ends the other within the heartbeat bound with one last line naming it,
leaving nothing half-written; a process that cannot reach the coordinator gives up within its join timeout.

Every process costs seconds of imports and compilation on 2 cores, so the runs are few and small, and one run
serves several checks: the MLP's 2-process run is the resumed command, compared with the uninterrupted MLP of 1
process with 2 devices."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# One CPU device per process, whatever the caller's XLA_FLAGS; jaxhw imported from this checkout.
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONPATH": str(ROOT)}
TWO_DEVICES = {**ENV, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
MLP_ARGS = ["--source", "embedded", "--epochs", "3", "--batch-size", "443"]  # 9 batches of 443, then one of 13
HEARTBEAT = 3  # seconds: the --heartbeat-timeout of the runs that lose a process
# A lost process is named within the heartbeat timeout, plus a second between two questions of the watchdog,
# plus what a loaded 2-core machine adds to noticing and exiting.
BOUND = HEARTBEAT + 1 + 4
TIMINGS = {"seconds", "seconds_per_epoch", "first_epoch_seconds", "total_seconds"}

# RESULT [--coordinator-address A --num-processes N --process-id I]: the CNN (BatchNorm, Dropout) trained on 582
# embedded digits in 6 batches of 97, which split unevenly over 2 devices; alone (not joined), also the MLP run of
# `python -m jaxhw.classify {MLP_ARGS}` (its metrics.json, not written). Process 0 writes RESULT.json and the CNN's
# final parameters and batch statistics as RESULT.npz.
SCRIPT = textwrap.dedent("""
    import sys
    from jaxhw.configs import ClassifyConfig, ProcessGroup
    from jaxhw.training import distributed
    if len(sys.argv) > 2:
        address, count, index = sys.argv[3::2]
        distributed.join(ProcessGroup(coordinator_address=address, num_processes=int(count), process_id=int(index)))
    import pathlib
    import jax, numpy as np, optax
    from jaxhw.data.images import load_train_test
    from jaxhw.experiments.classification import train_classifier
    from jaxhw.files import write_json
    from jaxhw.models.cnn import CNN
    from jaxhw.training import create_train_state, fit
    train, _ = load_train_test("mnist", "embedded")
    state = create_train_state(CNN(), optax.adam(1e-3), train.images[:1], seed=0)
    state, cnn = fit(state, {"x": train.images[:582], "y": train.labels[:582]}, None, epochs=2, batch_size=97,
                     devices=None, progress=False)
    mlp = None if distributed.joined() else train_classifier(ClassifyConfig(source="embedded", epochs=3,
                                                                            batch_size=443)).metrics
    if jax.process_index() == 0:
        result = pathlib.Path(sys.argv[1])
        write_json(result.with_suffix(".json"), {"mlp": mlp, "cnn": cnn, "processes": jax.process_count(),
                                                 "devices": jax.device_count()})
        leaves = jax.tree_util.tree_leaves_with_path(jax.device_get((state.params, state.batch_stats)))
        np.savez(result.with_suffix(".npz"), **{jax.tree_util.keystr(path): leaf for path, leaf in leaves})
    if distributed.joined():
        distributed.finish()
""")



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def group(command: list[str], per_process=lambda index: [], count: int = 2) -> list[subprocess.Popen]:
    """``count`` processes of ``python COMMAND`` joined over a free localhost port (``per_process(i)``: the extra
    arguments of process i)."""
    port = free_port()
    return [subprocess.Popen([sys.executable, *command, "--coordinator-address", f"localhost:{port}",
                              "--num-processes", str(count), "--process-id", str(index), *per_process(index)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
            for index in range(count)]


def finished(processes: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each process, once all have ended."""
    outputs = [p.communicate(timeout=timeout) for p in processes]
    return [(p.returncode, *output) for p, output in zip(processes, outputs)]


def classify_group(out: pathlib.Path, *args: str) -> list[subprocess.Popen]:
    """Two processes of ``python -m jaxhw.classify`` (compiling through the test session's cache, JAXHW_CACHE_DIR);
    process 1 is given its own --out, which it must not write."""
    return group(["-m", "jaxhw.classify", *MLP_ARGS, *args],
                 lambda index: ["--out", str(out if index == 0 else out.with_name(out.name + "-process1"))])


def assert_same_numbers(got, expected, path: str = "") -> None:
    """Equal records, numbers to a relative 1e-6 (the tolerance is explained where the CNN is compared)."""
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), (path, got.keys() ^ expected.keys())
        for key in expected:
            assert_same_numbers(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), path
        for index, (a, b) in enumerate(zip(got, expected)):
            assert_same_numbers(a, b, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert np.isclose(got, expected, rtol=1e-6, atol=0), (path, got, expected)
    else:
        assert got == expected, (path, got, expected)


def comparable(record: dict) -> dict:
    """A classify run's metrics without what differs between runs of the same numbers: timings, where its
    checkpoints are kept, how many processes ran it."""
    record = {key: value for key, value in record.items()
              if key not in TIMINGS | {"processes", "data_fingerprint_of_each_process"}}
    record["config"] = {k: v for k, v in record["config"].items() if k not in ("checkpoint_dir", "resume")}
    record["epochs"] = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in record["epochs"]]
    return record


def wait_for(path: pathlib.Path, processes: list[subprocess.Popen], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_dir():
        ended = [p.returncode for p in processes if p.poll() is not None]
        assert not ended and time.monotonic() < deadline, f"no {path} (exit codes {ended})"
        time.sleep(0.01)


def checkpoint_entries(directory: pathlib.Path) -> list[str]:
    """The checkpoints in a directory, asserting that none is half-written (orbax writes into "N.orbax-...")."""
    names = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    assert all(name.isdigit() for name in names), names
    return names


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """SCRIPT's results in 1 process with 2 simulated devices and in 2 processes with 1 device each, run side by
    side (3 processes on 2 cores: one compiles while another imports)."""
    folder = tmp_path_factory.mktemp("equality")
    one = subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder / "one")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=TWO_DEVICES)
    two = group(["-c", SCRIPT, str(folder / "two")])
    ended = finished([one, *two])
    assert [code for code, _, _ in ended] == [0, 0, 0], [err[-3000:] for _, _, err in ended]
    return {name: {**json.loads((folder / f"{name}.json").read_text()), "arrays": dict(np.load(folder / f"{name}.npz"))}
            for name in ("one", "two")} | {"process 1": ended[2]}


@pytest.mark.slow
def test_two_processes_train_the_batchnorm_cnn_to_the_parameters_of_one_process_with_two_devices(runs):
    one, two = runs["one"], runs["two"]
    assert (one["devices"], one["processes"], two["devices"], two["processes"]) == (2, 1, 2, 2)
    # Tolerance: float32 rounding of another summation order, relative 1e-6 of the largest value of each array.
    # Each process's device holds the same slice of every batch as the same device of the one-process mesh, and a
    # sum over 2 devices adds the same two partial sums either way (a + b == b + a), so here the numbers agree to
    # the last bit; over more devices a collective may add in another order (a tree over the processes) and move
    # the last bits.
    assert one["arrays"].keys() == two["arrays"].keys()
    assert {name[:3] for name in one["arrays"]} == {"[0]", "[1]"}  # parameters and batch statistics
    for name, expected in one["arrays"].items():
        scale = max(float(np.max(np.abs(expected))), 1e-30)
        assert float(np.max(np.abs(two["arrays"][name] - expected))) <= 1e-6 * scale, name
    assert_same_numbers([{k: v for k, v in epoch.items() if k != "seconds"} for epoch in two["cnn"]],
                        [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in one["cnn"]])
    _, out, err = runs["process 1"]
    assert err == "" and [line for line in out.splitlines() if not line.startswith("[Gloo]")] == [], (out, err)


@pytest.mark.slow
def test_all_processes_killed_after_a_checkpoint_resume_over_two_processes_to_the_uninterrupted_run(
        runs, tmp_path):
    out, ck = tmp_path / "out", tmp_path / "ck"
    processes = classify_group(out, "--checkpoint-dir", str(ck), "--epochs", "400")
    wait_for(ck / "1", processes)
    for process in processes:
        process.send_signal(signal.SIGKILL)
    assert [code for code, _, _ in finished(processes)] == [-signal.SIGKILL] * 2
    assert not out.exists() and checkpoint_entries(ck)[0] == "1"

    ended = finished(classify_group(out, "--checkpoint-dir", str(ck), "--resume"))
    assert [code for code, _, _ in ended] == [0, 0], [err[-3000:] for _, _, err in ended]
    written = json.loads((out / "metrics.json").read_text())
    assert (written["devices"], written["processes"]) == (2, 2)
    assert written["data_fingerprint_of_each_process"] == [written["data_fingerprint"]] * 2
    assert_same_numbers(comparable(written), comparable(runs["one"]["mlp"]))
    assert not out.with_name("out-process1").exists() and checkpoint_entries(ck)[-3:] == ["1", "2", "3"]
    _, process_1_out, process_1_err = ended[1]
    assert process_1_err == "" and all(line.startswith("[Gloo]") for line in process_1_out.splitlines())


# --coordinator-address A --num-processes N --process-id I: join with a heartbeat timeout of HEARTBEAT seconds,
# then sum an array split over the processes every 20 ms until killed (a command's main, wrapped as every command).
COLLECTIVES = textwrap.dedent(f"""
    import sys, time
    from jaxhw import cli
    from jaxhw.configs import ProcessGroup
    from jaxhw.training import distributed

    @cli.run_cli
    def main(argv):
        address, count, index = sys.argv[2::2]
        distributed.join(ProcessGroup(address, int(count), int(index), heartbeat_timeout={HEARTBEAT}))
        import jax, numpy as np
        from jax.sharding import NamedSharding, PartitionSpec
        from jaxhw.training.parallel import make_mesh
        mesh = make_mesh()
        split = jax.make_array_from_callback((2,), NamedSharding(mesh, PartitionSpec("batch")), lambda i: np.ones(2)[i])
        total = jax.jit(lambda x: x.sum(), out_shardings=NamedSharding(mesh, PartitionSpec()))
        print("summing", flush=True)
        while True:
            assert float(total(split)) == 2.0
            time.sleep(0.02)

    sys.exit(main())
""")


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_process_ends_the_other_within_the_bound_naming_it(victim):
    processes = group(["-c", COLLECTIVES])
    for process in processes:  # both have joined and sum together (gloo may print a line of its own first)
        while (line := process.stdout.readline()) != "summing\n":
            assert line, process.communicate()[1]
    processes[victim].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    survivor = processes[1 - victim]
    try:
        survivor.wait(timeout=BOUND)
    finally:
        seconds = time.monotonic() - killed
        survivor.kill()
    code, _, err = finished([survivor])[0]
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert code != 0 and seconds <= BOUND and "Traceback" not in err, (code, seconds, err[-2000:])
    if victim == 1:
        assert last == ("error: process 1 of 2 stopped answering (no heartbeat for 3 s): it died, was killed or "
                        "lost the network; process 0 stops too"), last
    else:
        assert last.startswith("error: lost the coordinator (process 0"), last
    finished(processes)


@pytest.mark.slow
def test_a_process_that_cannot_reach_the_coordinator_gives_up_within_its_join_timeout():
    port = free_port()  # nobody listens there
    script = ("import sys; from jaxhw.configs import ProcessGroup; from jaxhw.errors import ResourceError\n"
              "from jaxhw.training import distributed\n"
              f"try: distributed.join(ProcessGroup('localhost:{port}', 2, 1, join_timeout=2))\n"
              "except ResourceError as error: sys.exit(f'error: {error}')")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 1 and time.monotonic() - started < 60, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach the coordinator (process 0) at localhost:{port} within 2 s"), last


# ------------------------------------------------------------------------------------------ without a group


@pytest.mark.parametrize("fields, fragment", [
    ({"num_processes": 2}, "need --coordinator-address, --num-processes and --process-id together: "
                           "--coordinator-address is missing"),
    ({"coordinator_address": "h:1", "num_processes": 2, "process_id": 0, "detect": True},
     "--distributed finds the processes by itself: drop --coordinator-address"),
    ({"coordinator_address": "localhost", "num_processes": 2, "process_id": 0},
     "--coordinator-address must be HOST:PORT with a port from 1 to 65535, got 'localhost'"),
    ({"coordinator_address": "h:70000", "num_processes": 2, "process_id": 0}, "got 'h:70000'"),
    ({"coordinator_address": "h:1", "num_processes": 2, "process_id": 2},
     "--process-id must lie in [0, 2) for --num-processes 2, got 2"),
    ({"join_timeout": 0}, "join_timeout must be a positive integer, got 0"),
])
def test_a_group_described_wrongly_is_refused_naming_what_is_wrong(fields, fragment):
    from jaxhw.configs import ProcessGroup
    from jaxhw.errors import InputError

    with pytest.raises(InputError) as error:
        ProcessGroup(**fields)
    assert fragment in str(error.value)


def test_the_command_refuses_half_a_group_before_starting_anything(tmp_path, capsys):
    from jaxhw.classify import main as classify

    assert classify(["--source", "embedded", "--out", str(tmp_path / "out"), "--num-processes", "2",
                     "--process-id", "1"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: several processes need --coordinator-address, --num-processes and --process-id "
                      "together: --coordinator-address is missing"]
    assert not (tmp_path / "out").exists()


def test_over_several_processes_every_device_takes_part(monkeypatch):
    import jax

    from jaxhw.errors import InputError
    from jaxhw.training.parallel import make_mesh

    device = jax.devices()[0]
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "devices", lambda: [device, device])  # one device in each of 2 processes
    with pytest.raises(InputError, match=r"with 2 processes every device takes part: --devices must be 2 \(all of "
                                         r"them\) or left out, got 1"):
        make_mesh(1)


# What JAX's runtime writes when it aborts a process (abridged from jax 0.10.2), and the line that replaces it.
RUNTIME_ABORTS = {
    "coordinator lost": ("F1202 14:10:14.475225   22175 client.h:80] Terminating process because the JAX distributed "
                         "service detected fatal errors. This most likely indicates that another task died; see the "
                         "other task logs for more details. absl::Status: UNAVAILABLE: Failed to send RPC to "
                         "coordination service. Either the leader task was preempted/died/restarted unexpectedly\n"
                         "*** Check failure stack trace: ***\n    @     0x7f0594a40634  absl::log_internal::Flush()\n",
                         "error: lost the coordinator (process 0 at h:9): it stopped, or the network to it failed; "
                         "this process stopped too (JAX runtime: UNAVAILABLE: Failed to send RPC to coordination "
                         "service. Either the leader task was preempted/died/restarted unexpectedly)"),
    "join timed out": ("F1202 14:14:31.424033   25663 client.h:80] Terminating process because the JAX distributed "
                       "service detected fatal errors. absl::Status: DEADLINE_EXCEEDED: Deadline Exceeded\n\nRPC: "
                       "/xla.coordination.CoordinationService/RegisterTask\n*** Check failure stack trace: ***\n",
                       "error: the processes did not all join the coordinator (process 0 at h:9) within the join "
                       "timeout of 7 s: start every process with the same --coordinator-address and --num-processes "
                       "and its own --process-id (JAX runtime: DEADLINE_EXCEEDED: Deadline Exceeded)"),
    "peer lost": ("F1202 14:11:33.075216   22562 client.h:80] Terminating process because the JAX distributed service "
                  "detected fatal errors. absl::Status: UNAVAILABLE: The following tasks are unhealthy (stopped "
                  "sending heartbeats):\n1\nThe tasks have crashed.\n*** Check failure stack trace: ***\n",
                  "error: process 1 stopped answering: it died, was killed or lost the network (JAX runtime: "
                  "UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):)"),
}


@pytest.mark.parametrize("case", RUNTIME_ABORTS)
def test_the_relay_passes_lines_through_and_replaces_a_runtime_abort_with_one_line(case):
    aborted, line = RUNTIME_ABORTS[case]
    relay = ROOT / "jaxhw" / "training" / "stderr_relay.py"
    result = subprocess.run([sys.executable, "-I", str(relay), "h:9", "7"], text=True, capture_output=True,
                            input="jaxhw: a note\nW1202 coordination_service.cc:185] Using experimental recoverable "
                                  "task feature. The default shutdown barrier...\n" + aborted, timeout=60)
    assert result.returncode == 0 and result.stdout == f"jaxhw: a note\n{line}\n", result.stdout
