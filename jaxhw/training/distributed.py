"""Several processes as one training job (jax.distributed): joining, one writer, noticing a lost process, ending
together.

A TPU pod slice or a GPU cluster is several hosts, each a process that sees only its own devices. Every process
runs the same command; ``join`` connects it to the others through the coordinator that process 0 runs at
``coordinator_address``. Then ``jax.devices()`` lists every process's devices, ``fit``'s mesh spans them all,
each process feeds its own slice of every batch (``jaxhw.training.feeding``) and XLA's collectives (gloo between
CPU processes) carry the gradient sums. Process 0 alone writes files; ``share`` hands what it read to the others.

A failure ends every process within a bounded time, with a non-zero exit and one last line naming the missing
process:
- a process that cannot reach the coordinator, or a group that is not complete, gives up after ``join_timeout``;
- when process 0 (the coordinator) dies, the others lose their link to it and end within a second;
- when another process dies, a watchdog thread in each survivor, which asks the coordinator every second which
  processes are alive, notices within ``heartbeat_timeout`` + 1 seconds (a collective that fails sooner waits
  for that verdict).
Before training, ``agree`` has every process publish what decides its numbers (its config, its data's fingerprint,
the process count) and stops every process with one line naming the first field where one differs from process 0.

Where JAX's runtime ends a process itself (the coordinator lost, joining timed out) it aborts with a C++ stack
trace; ``join`` therefore routes stderr through ``stderr_relay.py``, which replaces that trace with one line.
"""
from __future__ import annotations

import atexit
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxhw.common import flatten
from jaxhw.configs import ProcessGroup
from jaxhw.errors import InputError, ResourceError

WATCH_INTERVAL = 1.0  # seconds between two questions of the watchdog to the coordinator
FINISH_TIMEOUT = 600  # seconds the others wait at the end for process 0 to write the outputs
AGREE_TIMEOUT = 600  # seconds a process waits for the others to load their data and describe their run
COLLECTIVE_FAILURES = ("Gloo", "UNAVAILABLE", "Connection closed by peer", "Connection reset by peer")


class _Group:
    """The group this process joined: its settings, and the watchdog's switch."""

    def __init__(self, config: ProcessGroup, on_loss: Callable[[], str]):
        self.config, self.on_loss = config, on_loss
        self.ids = list(range(jax.process_count()))
        self.stopped = threading.Event()
        self.agreements = 0  # calls of ``agree`` so far: each publishes under a key of its own


_GROUP: _Group | None = None


def _client():
    """The coordination-service client of this process (JAX keeps it private; orbax reads it the same way)."""
    from jax._src.distributed import global_state

    return global_state.client


def join(config: ProcessGroup, on_loss: Callable[[], str] = lambda: "") -> None:
    """Join the group of processes ``config`` describes; call it before any other use of JAX.

    ``on_loss()`` says what the run kept (checkpoints, outputs), for the line a lost process ends with.
    """
    global _GROUP
    if config.coordinator_address is not None and config.process_id == 0:
        check_port_free(config.coordinator_address)
    relay_stderr(config)
    # Collectives between CPU processes go over gloo (TCP); GPUs and TPUs use their own and ignore this.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # A process that dies is then reported by the survivors' watchdog instead of aborting them all at once.
    jax.config.update("jax_enable_recoverability", True)
    # SIGTERM stays jaxhw's (jaxhw.stopping): JAX's preemption notifier would take it and let every process train on.
    jax.config.update("jax_enable_preemption_service", False)
    if config.coordinator_address is not None and config.process_id != 0:
        wait_for_coordinator(config.coordinator_address, config.join_timeout)
    try:
        jax.distributed.initialize(config.coordinator_address, config.num_processes, config.process_id,
                                   initialization_timeout=config.join_timeout,
                                   heartbeat_timeout_seconds=config.heartbeat_timeout,
                                   shutdown_timeout_seconds=config.heartbeat_timeout)
    except ValueError as error:  # JAX's cluster detection found no cluster to take the missing values from
        if not config.detect:
            raise
        raise InputError(f"--distributed found no cluster to join ({error}): JAX detects SLURM, Open MPI and TPU "
                         "pods, and none started this process; give --coordinator-address, --num-processes and "
                         "--process-id instead") from None
    except Exception as error:
        if "Failed to start RPC server" not in str(error):
            raise
        raise _port_in_use(config.coordinator_address, "the coordination service could not listen there") from None
    _GROUP = _Group(config, on_loss)
    atexit.register(_GROUP.stopped.set)  # runs before JAX's own shutdown, registered earlier, disconnects
    threading.Thread(target=_watch, args=(_GROUP,), name="jaxhw-watchdog", daemon=True).start()


def joined() -> bool:
    """Whether this process is one of a group (``join`` was called)."""
    return _GROUP is not None


def relay_stderr(config: ProcessGroup) -> None:
    """Send this process's stderr through ``stderr_relay.py`` (a small process of its own that survives an abort
    of this one), so that the JAX runtime's fatal abort ends with one line instead of a C++ stack trace."""
    script = pathlib.Path(__file__).with_name("stderr_relay.py")
    reading, writing = os.pipe()
    subprocess.Popen([sys.executable, "-I", str(script), config.coordinator_address or "", str(config.join_timeout)],
                     stdin=reading, stdout=sys.stderr.fileno(), stderr=subprocess.DEVNULL)
    os.close(reading)
    sys.stderr.flush()
    os.dup2(writing, sys.stderr.fileno())
    os.close(writing)


def wait_for_coordinator(address: str, timeout: float) -> None:
    """Return once process 0's coordinator accepts connections at ``address``; ResourceError after ``timeout`` s."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
            return
        except OSError as error:
            if time.monotonic() > deadline:
                raise ResourceError(f"cannot reach the coordinator (process 0) at {address} within {timeout:g} s "
                                    f"({error.strerror or error}): start process 0 first, or check the address, "
                                    "the port and the network between the machines") from None
            time.sleep(0.25)


def check_port_free(address: str) -> None:
    """InputError unless process 0 can serve the coordinator at ``address``: its port is free on this machine."""
    port = int(address.rpartition(":")[2])
    family = socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET
    with socket.socket(family) as probe:
        # As gRPC binds it (every interface; a port in TIME_WAIT is free), but without SO_REUSEPORT, with which
        # another coordinator on the same port would be let in.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            probe.bind(("", port))
        except OSError as error:
            raise _port_in_use(address, error.strerror or str(error)) from None


def _port_in_use(address: str, cause: str) -> InputError:
    return InputError(f"process 0 cannot run the coordinator at {address}: port {address.rpartition(':')[2]} is taken "
                      f"by another program or another process started with --process-id 0 ({cause}); choose a free "
                      "port for --coordinator-address in every process")


def _lost_line(group: _Group, missing: list[int]) -> str:
    """The last line of a process whose group lost ``missing``."""
    me, count = jax.process_index(), len(group.ids)
    if 0 in missing and me != 0:
        where = f" at {group.config.coordinator_address}" if group.config.coordinator_address else ""
        line = (f"lost the coordinator (process 0 of {count}{where}): it stopped, or the network to it failed; "
                f"process {me} stops too")
    else:
        names = ", ".join(map(str, missing))
        line = (f"process {names} of {count} stopped answering (no heartbeat for {group.config.heartbeat_timeout} s):"
                f" it died, was killed or lost the network; process {me} stops too")
    kept = group.on_loss()
    return line + (f"; {kept}" if kept else "")


def _abandon(line: str) -> None:
    """End this process at once with ``line``: the group cannot go on, and JAX's own shutdown would wait for it."""
    try:
        sys.stderr.write(f"error: {line}\n")
        sys.stderr.flush()
    finally:
        os._exit(1)


def _missing(group: _Group) -> list[int]:
    """The processes the coordinator no longer counts as alive ([0] when the coordinator does not answer)."""
    try:
        live = _client().get_live_nodes(group.ids)
    except Exception:  # noqa: BLE001 - any failure to ask is a lost coordinator
        return [0]
    return sorted(set(group.ids) - set(live) - {jax.process_index()})  # not itself: that is its own shutdown


def _watch(group: _Group) -> None:
    while not group.stopped.wait(WATCH_INTERVAL):
        missing = _missing(group)
        if missing and not group.stopped.is_set():
            _abandon(_lost_line(group, missing))


def lost_in_collective(error: BaseException) -> bool:
    """Whether an error is a collective that failed because a process of the group is gone; the watchdog's
    verdict then follows (``await_verdict``)."""
    return joined() and any(mark in str(error) for mark in COLLECTIVE_FAILURES)


def await_verdict(error: BaseException) -> str:
    """After a failed collective: let the watchdog name the missing process and end this one; if every process
    still answers after a heartbeat timeout, the line to end with."""
    time.sleep(_GROUP.config.heartbeat_timeout + 3 * WATCH_INTERVAL)
    return f"a collective between the processes failed and every process still answers: {str(error).splitlines()[0]}"


def finish() -> None:
    """End a run that succeeded in every process together: wait until all are done (process 0 writes the outputs
    meanwhile), then let the others leave before process 0 closes the coordinator."""
    try:
        _client().wait_at_barrier("jaxhw-finished", FINISH_TIMEOUT * 1000)
    except Exception as error:
        if "DEADLINE_EXCEEDED" not in str(error):
            raise
        _GROUP.stopped.set()
        raise ResourceError(f"process {jax.process_index()} of {len(_GROUP.ids)} waited {FINISH_TIMEOUT} s at the "
                            "end of the run for the others, and not every process came: one is still training or "
                            "stuck (were they all started with the same arguments?)") from None
    _leave()


def _leave() -> None:
    """Leave the group after every process has passed a barrier: the others first, process 0 (whose coordinator
    they talk to) once they are gone."""
    group, client = _GROUP, _client()
    group.stopped.set()
    if jax.process_index() != 0:
        jax.distributed.shutdown()
        return
    deadline = time.monotonic() + group.config.heartbeat_timeout
    while time.monotonic() < deadline and list(client.get_live_nodes(group.ids)) != [0]:
        time.sleep(0.05)


def share(value: Any) -> Any:
    """Process 0's JSON-ready ``value`` in every process (what the others pass is ignored)."""
    if jax.process_count() == 1:
        return value
    payload = json.dumps(value).encode() if jax.process_index() == 0 else b""
    size = int(multihost_utils.broadcast_one_to_all(np.int32(len(payload))))
    received = multihost_utils.broadcast_one_to_all(np.frombuffer(payload.ljust(size, b" "), np.uint8))
    return json.loads(bytes(np.asarray(received, np.uint8)))


def agree(description: dict) -> list[dict]:
    """Every process's ``description`` of the run it is about to train (what decides its numbers: its config, its
    data, the process count), in process order, once each has published its own; before any of them trains.

    Where one differs from process 0's, every process raises InputError with the same line naming the first field
    that differs, so the group stops at once instead of training different numbers or waiting at a collective.
    A process not in a group gets ``[description]``.
    """
    if not joined():
        return [description]
    group, client, me = _GROUP, _client(), jax.process_index()
    group.agreements += 1
    key = f"jaxhw-agree/{group.agreements}/"
    try:
        client.key_value_set(key + str(me), json.dumps(description))
    except Exception as error:
        if "ALREADY_EXISTS" not in str(error):
            raise
        group.stopped.set()
        raise InputError(f"two processes were started with --process-id {me}: give each process its own, from 0 to "
                         f"{len(group.ids) - 1}") from None
    descriptions = []
    for other in group.ids:
        try:
            descriptions.append(json.loads(client.blocking_key_value_get(key + str(other), AGREE_TIMEOUT * 1000)))
        except Exception as error:
            if "DEADLINE_EXCEEDED" not in str(error):
                raise
            group.stopped.set()
            raise ResourceError(f"process {me} waited {AGREE_TIMEOUT} s for process {other} to load its data and "
                                "describe its run, and it did not: it is stuck, or far slower to load") from None
    line = first_disagreement(descriptions)
    if line:  # every process found the same line: they stop together, none reports another as lost
        group.stopped.set()
        try:
            client.wait_at_barrier(key + "stop", group.config.heartbeat_timeout * 1000)
            _leave()
        except Exception:  # noqa: BLE001 - a process already gone: this one stops all the same, with its line
            pass
        raise InputError(line)
    return descriptions


def first_disagreement(descriptions: list[dict]) -> str | None:
    """The line naming the first field in which a process's description differs from process 0's (None if none
    does); descriptions hold ``processes``, ``config`` (named as its command-line options) and ``data``."""
    expected = flatten(descriptions[0])
    for process, description in enumerate(descriptions[1:], start=1):
        got = flatten(description)
        for field in [*expected, *(name for name in got if name not in expected)]:
            if got.get(field) != expected.get(field):
                return (f"process {process}'s {_field_name(field)} is {_shown(got.get(field))} but process 0's is "
                        f"{_shown(expected.get(field))}: every process of a group must be started with the same "
                        "arguments and data")
    return None


def _field_name(field: str) -> str:
    """A description's field ("config.batch_size") as the person who started the process knows it: --batch-size,
    data's fingerprint."""
    kind, *names = field.split(".")
    if kind == "config":
        return "--" + "-".join(names).replace("_", "-")
    if kind == "data":
        return "data's " + " ".join(names).replace("_", " ")
    return "process count" if kind == "processes" else " ".join(field.split("."))


def _shown(value: Any) -> str:
    return "not given" if value is None else str(value)
