"""Shared fixtures: the --quick homework report, produced once per test session for the report tests."""
import pathlib

import pytest


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory) -> pathlib.Path:
    """The directory of ``python -m jaxhw --quick`` on the embedded digits (built once, about a minute)."""
    from jaxhw.__main__ import main

    out = tmp_path_factory.mktemp("report")
    assert main(["--quick", "--source", "embedded", "--out", str(out), "--no-compile-cache"]) == 0
    return out
