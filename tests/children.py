"""Helpers for the tests that start jaxhw in child processes."""
import signal


def default_ctrl_c() -> None:
    """In the child before it starts: SIGINT as a terminal delivers it. A shell starts background jobs with SIGINT
    ignored, the child would inherit that from a suite run in the background, and Python then keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
