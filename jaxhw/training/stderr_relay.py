"""Relay a jaxhw process's stderr, and end it with one line when JAX's distributed runtime aborts the process.

``jaxhw.training.distributed.relay_stderr`` starts this file as ``python -I stderr_relay.py ADDRESS
JOIN_TIMEOUT`` with the process's stderr on its stdin (standard library only: it starts in milliseconds and
never loads JAX). Every line passes through until the runtime's fatal line; that line and the C++ stack trace
after it are held back, and when the stream ends one ``error:`` line says which process is missing and why.
"""
from __future__ import annotations

import re
import signal
import sys

FATAL = b"Terminating process because the JAX distributed service detected fatal errors"
# The runtime's note on process 0 that a process may leave without aborting the others: what jaxhw asks for.
EXPECTED = (b"Using experimental recoverable task feature",)
# The coordinator's note that one process id connected twice (two processes started with the same --process-id).
TWICE = b"ConnectAfterBarrierPasses"


def verdict(held: str, address: str, join_timeout: str, twice: bool = False) -> str:
    """The one line that replaces the runtime's fatal message and stack trace (``twice``: a process id was seen
    connecting twice)."""
    status = re.search(r"absl::Status: ([^\n]*)", held)
    status = f" (JAX runtime: {status.group(1).strip()[:160]})" if status else ""
    coordinator = f"the coordinator (process 0{' at ' + address if address else ''})"
    if twice or "newer incarnation" in held:
        return (f"two processes joined {coordinator} with the same --process-id: give each process its own, from 0 "
                f"to --num-processes - 1{status}")
    if "RegisterTask" in held or "barrier" in held.lower() and "DEADLINE_EXCEEDED" in held:
        return (f"the processes did not all join {coordinator} within the join timeout of {join_timeout} s: start "
                f"every process with the same --coordinator-address and --num-processes and its own "
                f"--process-id{status}")
    unhealthy = re.search(r"stopped sending heartbeats\):\s*([\d\s,]+)", held)
    if unhealthy:
        names = ", ".join(unhealthy.group(1).split())
        return f"process {names} stopped answering: it died, was killed or lost the network{status}"
    return f"lost {coordinator}: it stopped, or the network to it failed; this process stopped too{status}"


def main(address: str, join_timeout: str) -> None:
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # the process this relays handles them, and still writes
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    out, held, twice = sys.stdout.buffer, [], False
    for line in sys.stdin.buffer:
        if held or FATAL in line:
            held.append(line)
        elif TWICE in line:
            twice = True
        elif not any(mark in line for mark in EXPECTED):
            out.write(line)
            out.flush()
    if held:
        out.write(f"error: {verdict(b''.join(held).decode(errors='replace'), address, join_timeout, twice)}\n".encode())
        out.flush()


if __name__ == "__main__":
    main(*sys.argv[1:3])
