"""Ctrl-C and SIGTERM that stop a command at any moment, with exit code 130 or 143 and one line.

Python raises KeyboardInterrupt wherever the main thread is when a signal's handler runs, and some places eat
it: JAX's garbage-collection callback prints "Exception ignored" and the run goes on; a class body's
``__set_name__`` turns it into a RuntimeError (Python 3.11); a context manager's ``__exit__`` would stop half-way
(a lock left unreleased). So the handler here first records the signal, then raises KeyboardInterrupt (SIGINT)
or ``Terminated`` (SIGTERM) only outside such frames; inside one it asks again a moment later. After raising it
also asks again later, in case something swallowed the exception. A run checks at its safe points too (every
epoch, before deleting checkpoints, before swapping in its output) and once more when it ends, so a signal that
was received never lets a command end with exit 0.

A command records signals from its first import on (``record_from_start``, called by ``jaxhw.cli`` when the
process was started as a jaxhw command, before numpy, JAX, orbax or matplotlib load); ``run_cli`` makes them
act (``install``, ``act``) while the command runs and says how it ended (``ended``), so that a signal that comes
while the process exits after a run still ends it with the signal's code.
"""
from __future__ import annotations

import atexit
import gc
import os
import signal
import sys
import threading
from typing import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
# Functions an exception must not be raised in (besides every gc callback): they swallow it or rewrap it, they
# are cleanup it would cut short (a context manager's exit releasing a lock), or C code would not survive it.
SHIELDED = frozenset({"_xla_gc_callback", "__del__", "__set_name__", "__exit__",
                      # a C extension being loaded (jaxlib's MLIR modules run Python as they load): an exception
                      # raised there aborts or crashes the interpreter
                      "ExtensionFileLoader.create_module", "ExtensionFileLoader.exec_module"})
SHIELDED_FILES = ("weakref.py", "_weakrefset.py")  # weakref callbacks: an exception there is printed and dropped
RETRY_SECONDS = 0.05  # when a signal landed in a shielded frame
CONFIRM_SECONDS = 0.5  # after raising: if the run still goes on, something swallowed the exception


class Terminated(BaseException):
    """SIGTERM, raised as KeyboardInterrupt is for SIGINT."""


class _State:
    received: int | None = None  # the first signal since install, the one every later raise stands for
    acting = False  # raise (install) or only record (record_from_start, ended)
    generation = 0  # bumped by install, so a retry of an earlier run does nothing
    exit_code: int | None = None
    exit_line: Callable[[int], str] | None = None


_STATE = _State()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def exception_for(number: int) -> BaseException:
    return KeyboardInterrupt() if number == signal.SIGINT else Terminated()


def signal_of(error: BaseException) -> int:
    """The signal a KeyboardInterrupt or Terminated stands for."""
    return signal.SIGINT if isinstance(error, KeyboardInterrupt) else signal.SIGTERM


def _in_flight() -> bool:
    """Whether the exception of a signal is already being raised or handled (a second would cut its cleanup)."""
    return isinstance(sys.exc_info()[1], (KeyboardInterrupt, Terminated))


def _shielded(frame) -> bool:
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if (code.co_name in SHIELDED or getattr(code, "co_qualname", None) in SHIELDED or code in callbacks
                or code.co_filename.endswith(SHIELDED_FILES)):
            return True
        frame = frame.f_back
    return False


def _ask_again(delay: float) -> None:
    """Deliver the received signal to the main thread again after ``delay`` s, if the run still acts on it."""
    generation = _STATE.generation

    def again() -> None:
        number = _STATE.received
        if (_STATE.acting and _STATE.generation == generation and number is not None
                and signal.getsignal(number) is _handle):
            signal.pthread_kill(threading.main_thread().ident, number)

    timer = threading.Timer(delay, again)
    timer.daemon = True
    timer.start()


def _handle(number: int, frame) -> None:
    if _STATE.received is None:
        _STATE.received = number
    if not _STATE.acting:
        return
    if _in_flight():
        _ask_again(CONFIRM_SECONDS)
        return
    if _shielded(frame):
        _ask_again(RETRY_SECONDS)
        return
    _ask_again(CONFIRM_SECONDS)
    raise exception_for(_STATE.received)


def received() -> int | None:
    """The first SIGINT or SIGTERM received since ``install`` (or since the program started), or None."""
    return _STATE.received


def pending() -> bool:
    """Whether a run that acts on signals received one (``check`` raises it)."""
    return _STATE.acting and _STATE.received is not None


def check() -> None:
    """At a safe point: raise the exception of a signal received while the run acts on signals."""
    if pending() and not _in_flight():
        raise exception_for(_STATE.received)


def install() -> dict:
    """Record SIGINT and SIGTERM from now on (``act`` makes them act); the previous handlers, for ``restore``. A
    signal recorded since ``record_from_start`` is kept; otherwise nothing counts as received yet. Only the main
    thread receives signals: elsewhere this does nothing."""
    if not _in_main_thread():
        return {}
    previous = {number: signal.signal(number, _handle) for number in SIGNALS}
    if any(handler is not _handle for handler in previous.values()):
        _STATE.received = None
    _STATE.generation += 1
    return previous


def act() -> None:
    """Inside the code that handles KeyboardInterrupt and Terminated: raise them for signals from now on, and
    at once for one received already."""
    _STATE.acting = _in_main_thread() and signal.getsignal(signal.SIGINT) is _handle
    check()


def stop_acting() -> None:
    """The run is ending: from now on a signal is only recorded."""
    _STATE.acting = False


def ended(code: int | None, line_for: Callable[[int], str]) -> None:
    """The run ended with ``code``: from now on a signal is only recorded, and a program that ends with 0 and
    receives one before it exits ends with its code and ``line_for(signal)`` instead (``record_from_start``)."""
    stop_acting()
    _STATE.exit_code, _STATE.exit_line = code, line_for


def restore(previous: dict) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


def record_from_start(commands: tuple[str, ...]) -> None:
    """When this process was started as one of ``commands`` (``python -m NAME``): record SIGINT and SIGTERM from
    now on, and at exit turn one that came after a successful run into its code and line."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is None or spec.name not in commands or not _in_main_thread():
        return
    for number in SIGNALS:
        signal.signal(number, _handle)
    atexit.register(_at_exit)  # before JAX and orbax register theirs, so it runs after them


def _at_exit() -> None:
    """The last exit handler: a signal after a run that succeeded ends it with the signal's code and line; then
    the process ends at once, because the interpreter's own teardown puts back the default handlers, under
    which a signal would kill it with no line (with JAX loaded that teardown takes a large part of a second)."""
    code, line_for = _STATE.exit_code, _STATE.exit_line
    if code is None:  # an error nothing handled: the interpreter ends as usual, with its traceback
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # one that comes from now on is pending, not lost
    try:
        sys.stdout.flush()
        number = _STATE.received or min(signal.sigpending() & set(SIGNALS), default=None)  # the last moment
        if number is not None and code == 0 and line_for is not None:
            code = EXIT_CODES[number]
            print(line_for(number), file=sys.stderr)
        sys.stderr.flush()
    finally:
        os._exit(code)
