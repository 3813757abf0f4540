"""Faults a careful user meets: corrupt checkpoints, full disks, concurrent runs, signals, kills and absurd
arguments. Each either succeeds with the right result or ends with one clear line and a non-zero exit, with
nothing lost and nothing half-written. In-process through the CLIs' main(argv) where it can; real processes
for signals, kills and locks; full disks on a small tmpfs (skipped only where mounting is refused, never
when CI is set)."""
from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref

import pytest
from helpers import ctrl_c_reaches_children, write_idx_dataset

from jaxhw import files
from jaxhw.autoencode import main as autoencode
from jaxhw.classify import main as classify
from jaxhw.data import images
from jaxhw.errors import InputError
from jaxhw.gradients import main as gradients
from jaxhw.gradients import parse_args as gradient_args
from jaxhw.timeseries import main as timeseries

TIMINGS = {"seconds", "seconds_per_epoch", "first_epoch_seconds", "total_seconds"}


def session_cache() -> str:
    """The test session's compilation cache (tests/conftest.py), for the commands run here and as child processes:
    after the first, a run of the same model compiles nothing."""
    from jaxhw.cli import DEFAULT_COMPILE_CACHE  # JAXHW_CACHE_DIR names the session's cache

    return str(DEFAULT_COMPILE_CACHE)


@pytest.fixture()
def cache() -> str:
    return session_cache()


@pytest.fixture()
def small_disk(tmp_path):
    """Mount a tmpfs of the given size in KiB and return its folder; unmounted afterwards."""
    mounted = []

    def mount(kib: int) -> pathlib.Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            if os.environ.get("CI"):
                pytest.fail(f"CI must be able to mount a tmpfs: {result.stderr.strip()}")
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


def mlp(cache: str | None, out: pathlib.Path, *args: str) -> list[str]:
    """The arguments of a small MLP run on the embedded digits; ``cache`` None for a run without a cache."""
    compile_cache = ["--compile-cache", cache] if cache else ["--no-compile-cache"]
    return ["--source", "embedded", "--batch-size", "512", *compile_cache, "--out", str(out), *args]


def metrics(out: pathlib.Path) -> dict:
    """metrics.json without what may differ between legs of one run (timings, where checkpoints are kept)."""
    record = json.loads((out / "metrics.json").read_text())
    for key in TIMINGS:
        record.pop(key, None)
    for key in ("checkpoint_dir", "resume", "overwrite"):
        record["config"].pop(key)
    record["epochs"] = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in record["epochs"]]
    return record


def snapshot(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- checkpoints


@pytest.mark.slow
def test_a_fresh_run_into_another_runs_checkpoints_is_refused_and_overwrite_replaces_them(tmp_path, cache, capsys):
    ck = str(tmp_path / "ck")
    assert classify(mlp(cache, tmp_path / "a", "--epochs", "3", "--checkpoint-dir", ck)) == 0
    before = snapshot(tmp_path / "ck")
    assert classify(mlp(cache, tmp_path / "b", "--model", "cnn", "--epochs", "1", "--checkpoint-dir", ck)) == 2
    line = one_error_line(capsys)
    assert "already holds checkpoints (epochs 1, 2, 3)" in line and "--resume" in line and "--overwrite" in line
    assert snapshot(tmp_path / "ck") == before and not (tmp_path / "b").exists()
    assert classify(mlp(cache, tmp_path / "b", "--epochs", "1", "--checkpoint-dir", ck, "--overwrite")) == 0
    assert sorted(p.name for p in (tmp_path / "ck").iterdir() if p.name.isdigit()) == ["1"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The metrics of a 3-epoch MLP run without checkpoints: what every resumed run must end with."""
    out = tmp_path_factory.mktemp("whole") / "out"
    assert classify(mlp(session_cache(), out, "--epochs", "3")) == 0
    return metrics(out)


def _largest_array_file(step: pathlib.Path) -> pathlib.Path:
    return max(step.rglob("d/*"), key=lambda p: p.stat().st_size)


CORRUPTIONS = {
    "truncated array file": lambda step: _largest_array_file(step).write_bytes(
        _largest_array_file(step).read_bytes()[:100]),
    "garbage array file": lambda step: _largest_array_file(step).write_bytes(
        os.urandom(_largest_array_file(step).stat().st_size)),
    "two flipped bytes": lambda step: _flip(_largest_array_file(step)),
    "deleted metadata": lambda step: (step / "meta" / "metadata").unlink(),
    "renamed step folder": lambda step: step.rename(step.parent / "9"),
}


def _flip(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    for position in (len(data) // 3, len(data) // 2):
        data[position] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.slow
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_newest_checkpoint_is_set_aside_and_the_run_ends_as_an_uninterrupted_one(
        corruption, tmp_path, cache, uninterrupted, capsys, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)  # where orbax's abandoned reads would end up
    ck = tmp_path / "ck"
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "2", "--checkpoint-dir", str(ck))) == 0
    CORRUPTIONS[corruption](ck / "2")
    capsys.readouterr()
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "3", "--checkpoint-dir", str(ck), "--resume")) == 0
    notes = capsys.readouterr().err
    lines = [line for line in notes.splitlines() if line.strip()]  # jaxhw's one line, nothing of orbax's
    assert len(lines) == 1 and lines[0].startswith(f"jaxhw: skipped unusable checkpoints in {ck}"), notes
    assert reported == []
    assert metrics(tmp_path / "out") == uninterrupted
    assert any((ck / "unusable").iterdir())  # set aside, not deleted
    assert sorted(p.name for p in ck.iterdir() if p.name.isdigit()) == ["1", "2", "3"]


@pytest.mark.slow
def test_a_newer_folder_jaxhw_did_not_write_is_left_alone_by_resume(tmp_path, cache, uninterrupted, capsys):
    """An empty folder named by an epoch is no checkpoint: neither resumed from nor set aside nor deleted."""
    ck = tmp_path / "ck"
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "2", "--checkpoint-dir", str(ck))) == 0
    (ck / "7").mkdir()
    capsys.readouterr()
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "3", "--checkpoint-dir", str(ck), "--resume")) == 0
    assert "skipped" not in capsys.readouterr().err
    assert metrics(tmp_path / "out") == uninterrupted
    assert sorted(p.name for p in ck.iterdir()) == ["1", "2", "3", "7"] and not any((ck / "7").iterdir())


@pytest.mark.slow
def test_resume_refuses_fewer_epochs_other_data_and_another_weight_init_naming_each_field(tmp_path, cache, capsys):
    ck = str(tmp_path / "ck")
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "2", "--checkpoint-dir", ck)) == 0
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "1", "--checkpoint-dir", ck, "--resume")) == 2
    assert "--epochs 1 is below the epoch of the checkpoint resumed from (2" in one_error_line(capsys)
    # The same command on 100 other digits from IDX files: the data's count and fingerprint differ.
    idx = tmp_path / "idx"
    write_idx_dataset(idx, 100)
    args = ["--source", "idx", "--data-dir", str(idx), "--batch-size", "512", "--no-compile-cache", "--out",
            str(tmp_path / "other"), "--epochs", "3", "--checkpoint-dir", ck, "--resume"]
    assert classify(args) == 2
    line = one_error_line(capsys)
    assert "different run" in line and "data.train_examples was 4000, now 100" in line and "data.fingerprint" in line
    ae = ["--source", "embedded", "--batch-size", "1000", "--compile-cache", cache, "--checkpoint-dir",
          str(tmp_path / "ae_ck")]
    assert autoencode(ae + ["--epochs", "1", "--out", str(tmp_path / "ae")]) == 0
    assert autoencode(ae + ["--epochs", "2", "--out", str(tmp_path / "ae"), "--resume", "--weight-init", "torch"]) == 2
    assert "weight_init was 'flax', now 'torch'" in one_error_line(capsys)


@pytest.mark.slow
def test_with_no_usable_checkpoint_resume_is_one_line_and_keeps_them_aside(tmp_path, cache, capsys):
    ck = tmp_path / "ck"
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "1", "--checkpoint-dir", str(ck))) == 0
    _flip(_largest_array_file(ck / "1"))
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "2", "--checkpoint-dir", str(ck), "--resume")) == 2
    line = one_error_line(capsys)
    # Flipped bytes in a compressed array file fail to decode or decode to other values: either is caught.
    assert "no usable checkpoint" in line and re.search(r"epoch 1: (checksum mismatch|its arrays do not restore)",
                                                        line), line
    assert (ck / "unusable" / "1").is_dir()


@pytest.mark.slow
def test_arrays_that_restore_to_other_values_fail_the_checksum(tmp_path, cache, capsys):
    """Bit rot that still decodes: the arrays restore, but not to what was saved (simulated by recording
    another checksum in the metadata, which is what such arrays would be checked against)."""
    ck = tmp_path / "ck"
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "2", "--checkpoint-dir", str(ck))) == 0
    meta_path = ck / "2" / "meta" / "metadata"
    meta = json.loads(meta_path.read_text())
    meta["checksum"] = "0" * len(meta["checksum"])
    meta_path.write_text(json.dumps(meta))
    capsys.readouterr()
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "2", "--checkpoint-dir", str(ck), "--resume")) == 0
    assert "epoch 2 (checksum mismatch)" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["epochs"][-1]["epoch"] == 2


# ---------------------------------------------------------------------------------------------- disks


@pytest.mark.slow
def test_a_full_disk_leaves_the_previous_output_exactly_as_it_was(small_disk, tmp_path, cache, capsys):
    args = ["--source", "embedded", "--epochs", "1", "--batch-size", "1000", "--compile-cache", cache, "--out"]
    assert autoencode(args + [str(tmp_path / "sized")]) == 0
    size = sum(len(data) for data in snapshot(tmp_path / "sized").values())
    disk = small_disk(int(1.5 * size / 1024))  # room for one output of this run, not for two
    assert autoencode(args + [str(disk / "out")]) == 0
    before = snapshot(disk / "out")
    capsys.readouterr()
    assert autoencode(args + [str(disk / "out")]) == 1
    line = one_error_line(capsys)
    assert "no space left on the device" in line and str(disk) in line
    assert snapshot(disk / "out") == before
    assert sorted(p.name for p in disk.iterdir()) == [".out.lock", "out"]  # no staging folder, no temp file


@pytest.mark.slow
def test_a_full_checkpoint_disk_is_one_line_and_leaves_no_partial_checkpoint(small_disk, tmp_path, cache, capsys):
    disk = small_disk(300)  # an MLP checkpoint needs about 0.8 MB
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "1", "--checkpoint-dir", str(disk / "ck"))) == 1
    assert "cannot save the checkpoint of epoch 1" in one_error_line(capsys)
    assert list((disk / "ck").iterdir()) == [] and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------- outputs


def test_an_interrupted_swap_is_finished_or_rolled_back_by_the_next_run(tmp_path):
    target = tmp_path / "out"
    with files.StagedFolder(target) as folder:
        (folder / "a.json").write_text("old")
    staged = files.StagedFolder(target)
    # Killed between the two renames, the new output complete: the next run finishes the swap.
    staged.staging.mkdir()
    (staged.staging / "a.json").write_text("new")
    (staged.staging / files.OUTPUT_MARKER).write_text("")
    (staged.staging / files.COMPLETE_MARKER).write_text("")
    target.rename(staged.old)
    assert "finished swapping" in staged.recover()
    assert (target / "a.json").read_text() == "new" and not staged.old.exists() and not staged.staging.exists()
    # Killed between the two renames with an unfinished build: the next run restores the old output.
    staged.staging.mkdir()
    target.rename(staged.old)
    assert "restored" in staged.recover()
    assert (target / "a.json").read_text() == "new" and not staged.staging.exists()
    # A failure while writing leaves the old output and no staging folder.
    with pytest.raises(RuntimeError), files.StagedFolder(target) as folder:
        (folder / "a.json").write_text("half")
        raise RuntimeError("disk on fire")
    assert (target / "a.json").read_text() == "new" and not staged.staging.exists()


@pytest.mark.slow
def test_a_kill_while_the_output_is_written_leaves_the_previous_one(tmp_path, cache):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jaxhw.classify", *mlp(cache, out, "--epochs", "1")]
    assert subprocess.run(command, capture_output=True).returncode == 0
    before = snapshot(out)
    staging = tmp_path / ".out.staging"
    process = subprocess.Popen(command + ["--seed", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not staging.exists():  # the figure and the JSON are being written into it
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before writing its output"
        time.sleep(0.002)
    process.kill()
    process.wait()
    assert snapshot(out) == before
    assert classify(mlp(cache, out, "--epochs", "1")) == 0  # the next run clears what the kill left
    assert not staging.exists() and (out / "metrics.json").exists()


def test_concurrent_writers_of_one_json_never_show_a_reader_a_partial_file(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json(path, {"writer": -1, "values": list(range(2000))})
    failures = []

    def write(writer: int) -> None:
        try:
            for _ in range(15):
                files.write_json(path, {"writer": writer, "values": list(range(2000))})
        except Exception as error:  # noqa: BLE001 - any failure of a writer is the finding
            failures.append(repr(error))

    writers = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    for thread in writers:
        thread.start()
    reads = 0
    while any(thread.is_alive() for thread in writers):
        assert len(json.loads(path.read_text())["values"]) == 2000
        reads += 1
    assert failures == [] and reads > 10
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


@pytest.mark.slow
def test_a_second_run_on_the_same_folders_stops_at_once_naming_the_holder(tmp_path, cache):
    out, ck = tmp_path / "out", tmp_path / "ck"
    first = subprocess.Popen([sys.executable, "-m", "jaxhw.classify", *mlp(cache, out, "--epochs", "400",
                                                                            "--checkpoint-dir", str(ck))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (ck / "1").is_dir():  # both folders are locked by now
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.01)
        for args in (mlp(cache, out, "--epochs", "1"),
                     mlp(cache, tmp_path / "other", "--epochs", "1", "--checkpoint-dir", str(ck), "--resume")):
            second = subprocess.run([sys.executable, "-m", "jaxhw.classify", *args], capture_output=True, text=True,
                                    timeout=60)
            assert second.returncode == 2, second.stderr
            assert f"is in use by another jaxhw run (pid {first.pid} on" in second.stderr
            assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_note(tmp_path):
    target = tmp_path / "out"
    files.lock_path(target).write_text(json.dumps({"pid": 999999, "host": "gone", "since": "long ago"}))
    lock = files.FolderLock(target, "output directory").acquire()
    assert "left by pid 999999 on gone" in lock.note
    with pytest.raises(InputError, match="in use by another jaxhw run"):
        files.FolderLock(target, "output directory").acquire()
    lock.release()
    assert files.FolderLock(target, "output directory").acquire().note == ""  # released cleanly: nothing to note


@pytest.mark.slow
@pytest.mark.parametrize("signal_number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_end_with_one_line_saying_how_to_resume(tmp_path, cache, signal_number, code):
    out, ck = tmp_path / "out", tmp_path / "ck"
    with ctrl_c_reaches_children():
        process = subprocess.Popen([sys.executable, "-m", "jaxhw.classify",
                                    *mlp(cache, out, "--epochs", "400", "--checkpoint-dir", str(ck))],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (ck / "2").is_dir():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--resume" in errors[0] and str(ck) in errors[0], err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- inputs


def test_a_data_dir_must_hold_the_whole_data_set(tmp_path, capsys):
    write_idx_dataset(tmp_path / "half", 20, splits=("train",))
    (tmp_path / "empty").mkdir()
    for folder in ("half", "empty"):
        assert classify(["--data-dir", str(tmp_path / folder), "--out", str(tmp_path / "o"), "--epochs", "1"]) == 2
        line = one_error_line(capsys)
        assert f"data dir {tmp_path / folder} does not hold the whole of mnist" in line
        assert "t10k-images-idx3-ubyte[.gz]" in line
    assert not (tmp_path / "o").exists()


def test_corrupt_archives_and_impossible_sizes_are_one_line(tmp_path, monkeypatch, capsys):
    write_idx_dataset(tmp_path / "idx", 20)
    target = tmp_path / "idx" / "train-images-idx3-ubyte.gz"
    data = bytearray(target.read_bytes())
    data[40:60] = b"\x00" * 20  # inside the deflate stream: zlib.error, which is not an OSError
    target.write_bytes(bytes(data))
    with pytest.raises(InputError, match="train-images-idx3-ubyte.gz: cannot read IDX file"):
        images.load_images("mnist", "train", "idx", tmp_path / "idx")
    garbage = tmp_path / "mnist_5k.npz"
    garbage.write_bytes(os.urandom(4000))
    monkeypatch.setattr(images, "EMBEDDED_PATH", garbage)
    with pytest.raises(InputError, match="embedded digits .* are unreadable"):
        images.load_images("mnist", "train", "embedded")
    monkeypatch.undo()
    assert autoencode(["--source", "embedded", "--latent", "2000000000", "--out", str(tmp_path / "o")]) == 1
    line = one_error_line(capsys)
    assert "GiB for its parameters" in line and "more than the" in line


@pytest.mark.parametrize("main, args, fragment", [
    (classify, ["--lr", "1e-320"], "expected a positive number between"),
    (classify, ["--seed", str(2**63)], "seed must lie in [0, 4294967295]"),
    (classify, ["--seed", "-1"], "seed must lie in [0, 4294967295]"),
    (timeseries, ["--tasks", ","], "tasks must be a non-empty selection"),
    (timeseries, ["--seeds", "3", "--seed", str(2**32 - 2)], "seed must lie in [0, 4294967293]"),
    (gradients, ["--vector", ","], "expected at least one number"),
    (autoencode, ["--noise", "1e39"], "noise must be a finite number >= 0"),
])
def test_numbers_float32_or_the_prng_cannot_hold_and_empty_lists_are_rejected(main, args, fragment, tmp_path,
                                                                               capsys):
    try:
        code = main(args + ["--out", str(tmp_path / "o")])
    except SystemExit as exit_info:  # argparse's own one-line usage error
        code = exit_info.code
    assert code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_a_vector_with_a_negative_first_entry_is_read_as_a_vector():
    args = gradient_args(["--vector", "-0.5,1.5", "--label", "-1,0"])
    assert args.vector == [-0.5, 1.5] and args.label == [-1.0, 0.0]


# ---------------------------------------------------------------------------------------------- JSON


def _reject(constant: str):
    raise ValueError(f"non-standard JSON constant {constant}")


@pytest.mark.slow
def test_every_json_jaxhw_writes_parses_strictly(quick_report, tmp_path, cache):
    """Browsers and jq reject NaN and Infinity; the report, every command's files and the checkpoints' metadata
    hold none (the gradient lab's overflow evidence has NaN and inf: they are written as null plus a reason)."""
    assert gradients(["--epochs", "1", "--train-examples", "64", "--compile-cache", cache,
                      "--out", str(tmp_path / "grad")]) == 0
    assert classify(mlp(cache, tmp_path / "cls", "--epochs", "1", "--checkpoint-dir", str(tmp_path / "ck"))) == 0
    written = [*quick_report.rglob("*.json"), *(tmp_path / "grad").rglob("*.json"), *(tmp_path / "cls").rglob("*.json"),
               *(tmp_path / "ck").rglob("meta/metadata")]
    assert len(written) >= 8
    for path in written:
        json.loads(path.read_text(), parse_constant=_reject)
    overflow = json.loads((tmp_path / "grad" / "gradients.json").read_text())["problem_1c"]["overflow"]
    assert overflow["naive_softmax_then_log"] is None and overflow["naive_softmax_then_log_nonfinite"] == "nan"
    assert overflow["softmax_then_log"] is None and overflow["softmax_then_log_nonfinite"] == "inf"


def test_strict_json_names_every_non_finite_number():
    assert files.strict({"a": float("nan"), "b": [1.0, float("-inf")], "c": {"d": float("inf")}, "e": 2}) == {
        "a": None, "a_nonfinite": "nan", "b": [1.0, None], "b_nonfinite": {"1": "-inf"},
        "c": {"d": None, "d_nonfinite": "inf"}, "c_nonfinite": {"d": "inf"}, "e": 2}
    assert json.loads(files.json_text({"x": float("nan")}), parse_constant=_reject) == {"x": None, "x_nonfinite": "nan"}


# ---------------------------------------------------------------------------------------------- paths
# Resolve, then lock, then check, then delete: symlinks, mount points, write protection, long names, full disks.
# As root, chmod stops no write: write protection is a read-only mount there.


@pytest.fixture()
def mount(tmp_path):
    """``mount(folder, *options)``: mount a tmpfs (``-t tmpfs -o ...``) or a read-only bind of the folder onto
    itself (options ``"bind,ro"``) on ``folder``; unmounted afterwards."""
    mounted = []

    def run(command: list[str]) -> None:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            if os.environ.get("CI"):
                pytest.fail(f"CI must be able to mount: {result.stderr.strip()}")
            pytest.skip(f"cannot mount here: {result.stderr.strip()}")

    def mount_on(folder: pathlib.Path, options: str) -> pathlib.Path:
        folder.mkdir(parents=True, exist_ok=True)
        if options == "bind,ro":
            run(["mount", "--bind", str(folder), str(folder)])
            mounted.append(folder)
            run(["mount", "-o", "remount,bind,ro", str(folder)])
        else:
            run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)])
            mounted.append(folder)
        return folder

    yield mount_on
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def write_protect(folder: pathlib.Path, mount) -> None:
    """Make ``folder`` refuse writes to everyone: chmod, or a read-only bind mount for root."""
    if os.geteuid() == 0:
        mount(folder, "bind,ro")
    else:
        folder.chmod(0o555)


def fake_checkpoint(directory: pathlib.Path, epoch: int) -> pathlib.Path:
    """A folder that counts as a checkpoint jaxhw wrote (jaxhw.files.is_checkpoint), for the checks that refuse
    before anything is restored."""
    step = directory / str(epoch)
    (step / files.CHECKPOINT_META_ITEM).mkdir(parents=True)
    (step / files.COMMIT_RECORD).write_text("{}")
    return step


def refused(capsys, code: int, argv: list[str], main=classify) -> str:
    """The one error line of a run that must end with ``code``."""
    assert main(argv) == code
    return one_error_line(capsys)


@pytest.mark.slow
def test_overwrite_deletes_nothing_before_the_input_is_checked_and_only_checkpoints_jaxhw_wrote(cache, tmp_path,
                                                                                            capsys):
    ck = tmp_path / "ck"
    old = fake_checkpoint(ck, 5)
    (ck / "2024").mkdir()
    (ck / "2024" / "thesis.txt").write_text("four years")
    (ck / "0").mkdir()
    (ck / "0" / "notes.txt").write_text("mine")
    before = snapshot(ck)
    bad_data = ["--source", "idx", "--data-dir", str(tmp_path / "no" / "such"), "--no-compile-cache",
                "--out", str(tmp_path / "out"), "--checkpoint-dir", str(ck), "--overwrite"]
    assert "does not exist or is not a directory" in refused(capsys, 2, bad_data)
    assert snapshot(ck) == before and old.is_dir()
    # The run that does overwrite: the old checkpoint goes, the user's numeric folders stay, through rotation too.
    assert classify(mlp(cache, tmp_path / "out", "--epochs", "2", "--keep-checkpoints", "1", "--checkpoint-dir",
                        str(ck), "--overwrite")) == 0
    assert sorted(p.name for p in ck.iterdir()) == ["0", "2", "2024"]
    assert (ck / "2024" / "thesis.txt").read_text() == "four years" and (ck / "0" / "notes.txt").read_text() == "mine"
    assert "absl" not in capsys.readouterr().err


def test_a_run_stopped_before_its_first_save_says_the_checkpoints_it_would_overwrite_are_as_they_were(
        tmp_path, monkeypatch):
    from jaxhw import cli

    ck = tmp_path / "ck"
    fake_checkpoint(ck, 5)
    monkeypatch.setattr(cli, "_RUN", {"checkpoint_dir": ck, "overwrite": True, "started": time.time() + 1})
    assert cli.kept_line() == f"the earlier run's checkpoints in {ck} are as they were (--overwrite replaces them " \
                              "only when this run saves its first)"
    cli._RUN["started"] -= 2  # this run saved epoch 5 itself
    assert cli.kept_line().startswith(f"checkpoints up to epoch 5 are in {ck}: run the same command with --resume")


def test_a_symlink_meets_the_lock_of_the_folder_it_leads_to(cache, tmp_path, capsys):
    for option, what in (("--checkpoint-dir", "checkpoint dir"), ("--out", "output directory")):
        real, link = tmp_path / f"real{option}", tmp_path / f"link{option}"
        if option == "--checkpoint-dir":
            fake_checkpoint(real, 1)
        else:
            real.mkdir()
            (real / files.OUTPUT_MARKER).write_text("")
        link.symlink_to(real)
        before = snapshot(real)
        overwrite = ["--overwrite"] if option == "--checkpoint-dir" else []
        with files.FolderLock(real, what):  # another run holds the real folder
            line = refused(capsys, 2, mlp(cache, tmp_path / "o", "--epochs", "1", option, str(link), *overwrite))
        assert f"{what} {real} is in use by another jaxhw run" in line and snapshot(real) == before


@pytest.mark.slow
def test_out_through_a_symlink_replaces_the_folder_it_leads_to_with_files_that_honour_the_umask(cache, tmp_path,
                                                                                              capsys):
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    (real / files.OUTPUT_MARKER).write_text("")  # an earlier run's output, replaced through the link
    (real / "old.json").write_text("{}")
    link.symlink_to(real, target_is_directory=True)
    previous = os.umask(0o022)
    try:
        assert classify(mlp(cache, link, "--epochs", "1", "--no-tensorboard")) == 0
    finally:
        os.umask(previous)
    assert not (real / "old.json").exists()
    assert link.is_symlink() and (real / "metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".real.lock", "link", "real"]  # staged beside the real one
    assert {oct(p.stat().st_mode & 0o777) for p in real.iterdir() if p.is_file()} == {oct(0o644)}


def test_a_loop_a_long_name_a_mount_point_and_a_file_on_the_way_are_one_line_before_training(cache,
        tmp_path, mount, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert "is a symlink loop" in refused(capsys, 2, mlp(cache, loop, "--epochs", "1"))
    long_name = tmp_path / ("x" * 248)
    line = refused(capsys, 2, mlp(cache, long_name, "--epochs", "1"))
    assert "its name is 248 bytes long, and the .NAME.staging" in line and "at most 246 bytes" in line
    disk = mount(tmp_path / "disk", "size=64k")
    assert "is a mount point" in refused(capsys, 2, mlp(cache, disk, "--epochs", "1"))
    (tmp_path / "file").write_text("")
    line = refused(capsys, 2, mlp(cache, tmp_path / "out", "--checkpoint-dir", str(tmp_path / "file" / "ck")))
    assert f"{tmp_path / 'file'} is a file, not a folder" in line
    assert not (tmp_path / "out").exists() and not long_name.exists()


def test_an_output_that_holds_checkpoints_or_is_write_protected_is_not_replaced(cache, tmp_path, mount, capsys):
    out = tmp_path / "R1"
    fake_checkpoint(out, 1)
    (out / files.OUTPUT_MARKER).write_text("")
    assert "holds checkpoints (epochs 1) that replacing it would delete" in refused(
        capsys, 2, mlp(cache, out, "--epochs", "1"))
    assert (out / "1").is_dir()
    protected = tmp_path / "protected"
    (protected / "tensorboard").mkdir(parents=True)
    (protected / files.OUTPUT_MARKER).write_text("")
    write_protect(protected / "tensorboard", mount)
    line = refused(capsys, 2, mlp(cache, protected, "--epochs", "1"))
    assert f"{protected / 'tensorboard'} is write-protected" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [".R1.lock", ".protected.lock", "R1", "protected"]


def test_a_full_disk_at_the_lock_is_one_line(cache, tmp_path, mount, capsys):
    disk = mount(tmp_path / "disk", "size=64k")
    with contextlib.suppress(OSError), open(disk / "filler", "wb", buffering=0) as filler:
        while filler.write(b"\0" * 4096):  # until the disk is full
            pass
    line = refused(capsys, 2, mlp(cache, disk / "out", "--epochs", "1"))
    assert f"cannot write its lock {disk / '.out.lock'}: no space left on the device" in line


def test_a_read_only_checkpoint_dir_is_refused_before_a_corrupt_checkpoint_is_set_aside(cache, tmp_path, mount, capsys):
    ck = tmp_path / "ck"
    fake_checkpoint(ck, 1)
    fake_checkpoint(ck, 2)
    write_protect(ck, mount)
    line = refused(capsys, 2, mlp(cache, tmp_path / "out", "--epochs", "3", "--checkpoint-dir", str(ck), "--resume"))
    assert f"checkpoint dir {str(ck)!r} is not writable" in line
    assert sorted(p.name for p in ck.iterdir()) == ["1", "2"]
    missing = tmp_path / "typo"
    line = refused(capsys, 2, mlp(cache, tmp_path / "out", "--checkpoint-dir", str(missing), "--resume"))
    assert f"--resume: checkpoint dir {missing} does not exist" in line and not missing.exists()


@contextlib.contextmanager
def as_nobody():
    """Run the block with the effective user id of nobody when root (whom no permission stops)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_an_unreadable_data_dir_is_one_line(tmp_path, capsys):
    shared = pathlib.Path(tempfile.mkdtemp())  # in the system's temporary folder, which nobody can reach too
    try:
        shared.chmod(0o777)
        data = shared / "data"
        write_idx_dataset(data, 20)
        data.chmod(0)
        command = ["--source", "idx", "--no-compile-cache", "--data-dir"]
        # A refusal one step earlier, as this user: it imports what the run needs (nobody cannot read every
        # installation).
        assert classify(command + [str(shared / "missing"), "--out", str(tmp_path / "out")]) == 2
        capsys.readouterr()
        with as_nobody():
            code = classify(command + [str(data), "--out", str(shared / "out")])
        assert code == 2
        assert f"data dir {str(data)!r} is not readable: permission denied" in one_error_line(capsys)
    finally:
        (shared / "data").chmod(0o755)
        shutil.rmtree(shared)


def test_a_read_only_compile_cache_and_an_empty_cache_variable_are_one_line_each(tmp_path, mount, monkeypatch,
                                                                                  capsys):
    from jaxhw import cli

    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    write_protect(cache_dir, mount)
    argv = mlp(None, tmp_path / "out", "--checkpoint-dir", str(tmp_path / "out" / "ck"))  # refused after the cache
    argv[argv.index("--no-compile-cache")] = "--compile-cache"
    argv.insert(argv.index("--compile-cache") + 1, str(cache_dir))
    try:
        assert classify(argv) == 2
    finally:
        cli.enable_compilation_cache(None)
    notes = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("error:")]
    assert len(notes) == 1 and notes[0].startswith(f"jaxhw: compilation cache disabled: compilation cache "
                                                   f"{str(cache_dir)!r} is not writable"), notes
    empty = subprocess.run([sys.executable, "-c", "from jaxhw import cli; print(cli.DEFAULT_COMPILE_CACHE)"],
                           env={**os.environ, "JAXHW_CACHE_DIR": ""}, capture_output=True, text=True, cwd=tmp_path)
    assert empty.stdout.strip() == str(pathlib.Path.home() / ".cache" / "jaxhw" / "jax"), empty.stderr
    monkeypatch.setenv("JAXHW_CACHE_DIR", "")
    monkeypatch.setattr(cli, "enable_compilation_cache", lambda path: None)
    argv = mlp(None, tmp_path / "loop", "--compile-cache", str(cli.DEFAULT_COMPILE_CACHE))
    argv.remove("--no-compile-cache")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert classify(argv) == 2
    assert "jaxhw: JAXHW_CACHE_DIR is empty, so the compilation cache is in its default place" in \
        capsys.readouterr().err


# ---- groups that agree before they train, sizes refused before work


def _description(config=None, data=None) -> dict:
    """What a process of a group publishes before training (as train_supervised builds it)."""
    from jaxhw.configs import ClassifyConfig
    from jaxhw.experiments.supervised import group_description

    data = data or {"name": "mnist", "train_examples": 4000, "test_examples": 1000, "fingerprint": "a1"}
    return group_description(config or ClassifyConfig(source="embedded"), data)


def _changed(**fields) -> dict:
    from jaxhw.configs import ClassifyConfig

    return _description(ClassifyConfig(**{"source": "embedded", **fields}))


@pytest.mark.parametrize("other, field", [
    (_changed(lr=0.003), "--lr is 0.003 but process 0's is 0.001"),
    (_changed(seed=1), "--seed is 1 but process 0's is 0"),
    (_changed(epochs=3), "--epochs is 3 but process 0's is 10"),
    (_changed(model="cnn"), "--model is cnn but process 0's is mlp"),
    (_changed(batch_size=256), "--batch-size is 256 but process 0's is 64"),
    (_description(data={"name": "mnist", "train_examples": 4000, "test_examples": 1000, "fingerprint": "b2"}),
     "data's fingerprint is b2 but process 0's is a1"),  # the same path on another machine, other contents
    ({**_description(), "processes": 3}, "process count is 3 but process 0's is 1"),
])
def test_the_first_field_a_process_differs_in_from_process_0_is_named(other, field):
    from jaxhw.training.distributed import first_disagreement

    assert first_disagreement([_description(), _description(), other]) == (
        f"process 2's {field}: every process of a group must be started with the same arguments and data")


def test_paths_each_machine_names_its_own_way_need_not_agree(tmp_path):
    from jaxhw.training.distributed import first_disagreement

    here, there = _changed(data_dir=tmp_path, checkpoint_dir=tmp_path), _changed(source="idx", checkpoint_dir="ck")
    assert first_disagreement([here, there]) is None


class _Coordinator:
    """The coordination service as agree and finish use it: a key-value store, barriers that time out."""

    def __init__(self, store: dict[str, str]):
        self.store = store

    def key_value_set(self, key: str, value: str) -> None:
        if key in self.store:
            raise RuntimeError(f"ALREADY_EXISTS: Config key {key} already exists.")
        self.store[key] = value

    def blocking_key_value_get(self, key: str, timeout_in_ms: int) -> str:
        if key not in self.store:
            raise RuntimeError(f"DEADLINE_EXCEEDED: GetKeyValue() timed out with key: {key}")
        return self.store[key]

    def wait_at_barrier(self, barrier: str, timeout_in_ms: int) -> None:
        if barrier == "jaxhw-finished":
            raise RuntimeError("DEADLINE_EXCEEDED: Barrier timed out. Id: jaxhw-finished")

    def get_live_nodes(self, ids):
        return [0]


@pytest.fixture()
def process_0_of_2(monkeypatch):
    """This process as process 0 of a group of 2 whose coordinator holds ``store`` (what the others published)."""
    from jaxhw.configs import ProcessGroup
    from jaxhw.training import distributed

    def joined(store: dict[str, str]):
        group = distributed._Group(ProcessGroup("localhost:1", 2, 0, heartbeat_timeout=1), lambda: "")
        group.ids = [0, 1]
        monkeypatch.setattr(distributed, "_GROUP", group)
        monkeypatch.setattr(distributed, "_client", lambda: _Coordinator(store))
        return distributed

    return joined


def test_every_process_stops_at_the_agreement_naming_the_field_a_slow_or_a_twin_process(process_0_of_2):
    from jaxhw.errors import ResourceError

    distributed = process_0_of_2({"jaxhw-agree/1/1": json.dumps(_changed(lr=0.003))})
    with pytest.raises(InputError, match=r"^process 1's --lr is 0.003 but process 0's is 0.001: every process"):
        distributed.agree(_description())
    assert distributed._GROUP.stopped.is_set()  # its watchdog names no lost process while the others stop
    distributed = process_0_of_2({})  # process 1 never publishes
    with pytest.raises(ResourceError, match=r"^process 0 waited 600 s for process 1 to load its data and describe"):
        distributed.agree(_description())
    distributed = process_0_of_2({"jaxhw-agree/1/0": "{}"})  # another process joined as process 0
    with pytest.raises(InputError, match=r"^two processes were started with --process-id 0: give each process its "
                                         r"own, from 0 to 1$"):
        distributed.agree(_description())
    distributed = process_0_of_2({"jaxhw-agree/1/1": json.dumps(_description())})
    assert distributed.agree(_description()) == [_description()] * 2


def test_a_barrier_that_times_out_at_the_end_is_one_line_naming_the_process(process_0_of_2):
    from jaxhw.errors import ResourceError

    with pytest.raises(ResourceError, match=r"^process 0 of 2 waited 600 s at the end of the run for the others, "
                                            r"and not every process came"):
        process_0_of_2({}).finish()


@pytest.mark.slow
def test_two_processes_started_with_other_arguments_both_stop_before_training_naming_the_field(tmp_path, cache):
    from test_distributed import finished, group

    out = tmp_path / "out"
    started = time.monotonic()
    processes = group(["-m", "jaxhw.classify", *mlp(cache, out, "--epochs", "2")],
                      lambda index: ["--lr", "0.003"] if index == 1 else [])
    ended = finished(processes, timeout=120)
    seconds = time.monotonic() - started
    line = ("error: process 1's --lr is 0.003 but process 0's is 0.001: every process of a group must be started "
            "with the same arguments and data")
    for code, _, err in ended:
        assert code == 2 and "Traceback" not in err, err[-2000:]
        assert [row for row in err.splitlines() if row.startswith("error:")] == [line], err[-2000:]
    assert seconds < 60 and not out.exists(), seconds  # stopped before any training; nothing written


def test_a_coordinator_port_in_use_is_one_line_before_anything_starts(cache, tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        address = f"localhost:{taken.getsockname()[1]}"
        code = classify(mlp(cache, tmp_path / "out", "--coordinator-address", address, "--num-processes", "2",
                            "--process-id", "0"))
    assert code == 2
    assert one_error_line(capsys) == (
        f"error: process 0 cannot run the coordinator at {address}: port {address[10:]} is taken by another program "
        "or another process started with --process-id 0 (Address already in use); choose a free port for "
        "--coordinator-address in every process")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_distributed_outside_any_cluster_is_one_line(tmp_path, cache):
    from test_distributed import ENV

    result = subprocess.run([sys.executable, "-m", "jaxhw.classify", *mlp(cache, tmp_path / "out"), "--distributed"],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --distributed found no cluster to join (coordinator_address should be defined.): JAX detects SLURM, "
        "Open MPI and TPU pods, and none started this process; give --coordinator-address, --num-processes and "
        "--process-id instead"]


def test_a_process_id_given_twice_is_named_when_the_group_cannot_form():
    """The coordinator (process 0) sees one process id connect twice; the relay of its stderr says so."""
    from test_distributed import ROOT

    relay = ROOT / "jaxhw" / "training" / "stderr_relay.py"
    coordinator_log = (
        "W1203 coordination_service.cc:388] ConnectAfterBarrierPasses: CANCELLED: Cancelled because there's a more "
        "recent barrier call for [Init]Wait_for_all_tasks_to_register::0 from the same task.\n"
        "F1203 client.h:80] Terminating process because the JAX distributed service detected fatal errors. "
        "absl::Status: DEADLINE_EXCEEDED: Deadline Exceeded\n\n"
        "RPC: /xla.coordination.CoordinationService/RegisterTask\n")
    result = subprocess.run([sys.executable, "-I", str(relay), "h:9", "7"], text=True, capture_output=True,
                            input=coordinator_log, timeout=60)
    assert result.stdout == ("error: two processes joined the coordinator (process 0 at h:9) with the same "
                             "--process-id: give each process its own, from 0 to --num-processes - 1 (JAX runtime: "
                             "DEADLINE_EXCEEDED: Deadline Exceeded)\n"), result.stdout


@pytest.mark.parametrize("main, what", [
    (classify, "the 100,000 members (--seeds, one per seed) need 75.8 GiB for their parameters (50,890 each)"),
    (timeseries, "the data of 400,000 members (tasks x --seeds) needs 2,384.2 GiB"),
], ids=["classify", "timeseries"])
def test_seeds_beyond_memory_are_refused_before_any_key_or_data_is_made(main, what, tmp_path, monkeypatch, capsys):
    from jaxhw.training import state

    monkeypatch.setattr(state, "available_memory", lambda device: 2**30)  # 1 GiB, on any machine
    args = ["--seeds", "100000", "--no-compile-cache", "--out", str(tmp_path / "out")]
    started = time.monotonic()
    code = main(args + (["--source", "embedded"] if main is classify else []))
    seconds = time.monotonic() - started
    line = one_error_line(capsys)
    assert code == 1 and line.startswith(f"error: {what}") and "more than the 1.0 GiB available" in line, line
    assert seconds < 10, seconds  # the keys, made one at a time, took minutes


def test_an_idx_header_whose_dimensions_overflow_64_bits_is_one_line(tmp_path, capsys):
    write_idx_dataset(tmp_path / "idx", 8)
    images_file = tmp_path / "idx" / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 4]) + (65536).to_bytes(4, "big") * 4  # 2**64 bytes: np.prod of uint32 wraps to 0
    images_file.write_bytes(gzip.compress(header + bytes(10)))
    assert classify(["--source", "idx", "--data-dir", str(tmp_path / "idx"), "--no-compile-cache",
                     "--out", str(tmp_path / "out")]) == 2
    assert one_error_line(capsys) == (
        f"error: {images_file}: header promises shape (65536, 65536, 65536, 65536) (18446744073709551636 bytes) but "
        "the file has 30 bytes (truncated)")


# ---- signals that always stop a run, checkpoints verified whole, quiet fallbacks


def _kill_self_with(number: int) -> None:
    """Send ``number`` to this process and give its handler bytecode to run in (it runs between instructions)."""
    os.kill(os.getpid(), number)
    for _ in range(1000):
        pass


def _stopped_in_process(capsys, fake_main) -> tuple[int, str, float]:
    """(exit code, the error line, seconds) of ``fake_main`` run as a command's main."""
    from jaxhw.cli import run_cli

    started = time.monotonic()
    code = run_cli(fake_main)([])
    seconds = time.monotonic() - started
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return code, one_error_line_of(err), seconds


def one_error_line_of(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


def _until_stopped(seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    raise AssertionError("the signal did not stop the run")


def test_a_signal_landing_where_an_exception_would_be_swallowed_still_stops_the_run(capsys):
    """Ctrl-C inside a garbage-collection callback (where JAX's ``_xla_gc_callback`` would print "Exception
    ignored" and let the run go on), SIGTERM inside ``__set_name__`` (which wraps it in a RuntimeError) or a weakref
    finalizer (which drops it), Ctrl-C
    in a context manager's exit (which it would cut short), and a signal whose exception the run itself swallows
    each end the run with the signal's code and one line."""
    import gc

    def in_gc_callback(phase, info):
        if phase == "start":
            gc.callbacks.remove(in_gc_callback)
            _kill_self_with(signal.SIGINT)

    def collected(argv):
        gc.callbacks.append(in_gc_callback)
        gc.collect()
        _until_stopped()

    code, line, seconds = _stopped_in_process(capsys, collected)
    assert (code, line) == (130, "error: interrupted by Ctrl-C (SIGINT)") and seconds < 2

    class Named:
        def __set_name__(self, owner, name):
            _kill_self_with(signal.SIGTERM)

    def class_body(argv):
        type("Holder", (), {"field": Named()})
        _until_stopped()

    code, line, _ = _stopped_in_process(capsys, class_body)
    assert (code, line) == (143, "error: interrupted by SIGTERM")

    class Resource:
        pass

    def finalized(argv):  # weakref.finalize, as WeakKeyDictionary's callbacks: an exception there is dropped
        resource = Resource()
        weakref.finalize(resource, _kill_self_with, signal.SIGTERM)
        del resource
        _until_stopped()

    assert _stopped_in_process(capsys, finalized)[:2] == (143, "error: interrupted by SIGTERM")
    released = []

    @contextlib.contextmanager
    def lock():
        try:
            yield
        finally:
            _kill_self_with(signal.SIGINT)  # as a command's lock is released
            released.append(True)

    def cleaning_up(argv):
        with lock():
            pass
        _until_stopped()

    assert _stopped_in_process(capsys, cleaning_up)[:2] == (130, "error: interrupted by Ctrl-C (SIGINT)")
    assert released == [True]  # the cleanup ran to its end first

    def swallowing(argv):
        try:
            _kill_self_with(signal.SIGINT)
            time.sleep(0.2)
        except BaseException:  # noqa: BLE001 - what a careless library might do
            pass
        _until_stopped()  # the signal asks again

    assert _stopped_in_process(capsys, swallowing)[:2] == (130, "error: interrupted by Ctrl-C (SIGINT)")

    def finishing(argv):
        try:
            _kill_self_with(signal.SIGTERM)
        except BaseException:  # noqa: BLE001
            pass  # and main returns as if the run had succeeded

    assert _stopped_in_process(capsys, finishing)[0] == 143


def _swap_with_signal(monkeypatch, when: str):
    """A command's main that writes ``new`` into --out, with SIGINT arriving ``when`` ("before" the swap or
    "during" it, between its two renames)."""
    from jaxhw import cli

    real_replace = files.os.replace

    def replace(source, target):
        if str(source).endswith(".staging"):
            _kill_self_with(signal.SIGINT)
        real_replace(source, target)

    def main(argv):
        args = argparse.Namespace(out=pathlib.Path(argv[0]), no_compile_cache=True, compile_cache=None,
                                  coordinator_address=None, num_processes=None, process_id=None, distributed=False)
        out = cli.start(args)
        with cli.output(out) as folder:
            (folder / "result.txt").write_text("new")
            if when == "before":
                _kill_self_with(signal.SIGINT)
            else:
                monkeypatch.setattr(files.os, "replace", replace)
    return main


@pytest.mark.parametrize("when, says, holds", [("before", "is as it was before this run", "old"),
                                               ("during", "holds this run's complete output", "new")])
def test_a_signal_at_the_output_swap_leaves_one_whole_output_and_says_which(when, says, holds, tmp_path, monkeypatch,
                                                                           capsys):
    from jaxhw.cli import run_cli

    out = tmp_path / "out"
    with files.StagedFolder(out) as folder:
        (folder / "result.txt").write_text("old")
    assert run_cli(_swap_with_signal(monkeypatch, when))([str(out)]) == 130
    monkeypatch.undo()
    assert one_error_line(capsys) == f"error: interrupted by Ctrl-C (SIGINT); {out} {says}"
    assert (out / "result.txt").read_text() == holds
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]  # nothing staged or old left


def _signal_after(marker: str, number: int, command: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run ``command``, send ``number`` once ``marker`` appears on its stderr, and wait for the end."""
    with ctrl_c_reaches_children():
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, **env})
    seen = []
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            process.send_signal(number)
            break
    else:
        raise AssertionError(f"no {marker!r} on stderr: {''.join(seen)[-2000:]}")
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, out, "".join(seen) + err)


@pytest.mark.slow
@pytest.mark.parametrize("number, code, marker, env", [
    # While JAX loads (python -X importtime names each module once it has loaded).
    (signal.SIGTERM, 143, " jax._src.config\n", {"PYTHONPROFILEIMPORTTIME": "1"}),
    # While the first epoch compiles (JAX names each program as it starts compiling it).
    (signal.SIGINT, 130, "Compiling", {"JAX_LOG_COMPILES": "1"}),
])
def test_a_signal_while_jax_loads_or_compiles_stops_the_command_with_its_code(number, code, marker, env, tmp_path,
                                                                               cache):
    out, ck = tmp_path / "out", tmp_path / "ck"
    command = [sys.executable, "-m", "jaxhw.classify", *mlp(cache, out, "--epochs", "50", "--checkpoint-dir",
                                                            str(ck))]
    ended = _signal_after(marker, number, command, env)
    assert ended.returncode == code, ended.stderr[-3000:]
    assert "Traceback" not in ended.stderr and "Exception ignored" not in ended.stderr, ended.stderr[-3000:]
    line = one_error_line_of(ended.stderr)
    assert line.startswith(f"error: interrupted by {'SIGTERM' if number == signal.SIGTERM else 'Ctrl-C (SIGINT)'}")
    assert not out.exists() and not (ck.exists() and any(p.name.isdigit() for p in ck.iterdir()))


@pytest.mark.slow
def test_sigterm_to_process_1_of_a_group_ends_it_with_143_and_the_other_within_the_bound():
    """JAX's preemption notifier would take the SIGTERM ("SIGTERM caught") and let both processes train on."""
    from test_distributed import BOUND, COLLECTIVES, finished, group

    processes = group(["-c", COLLECTIVES])
    for process in processes:
        while (line := process.stdout.readline()) != "summing\n":
            assert line, process.communicate()[1]
    processes[1].send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        processes[0].wait(timeout=BOUND + 5)
    finally:
        seconds = time.monotonic() - sent
        for process in processes:
            process.kill()
    (code_0, _, err_0), (code_1, _, err_1) = finished(processes)
    assert code_1 == 143 and err_1.strip().splitlines()[-1] == "error: interrupted by SIGTERM", err_1[-2000:]
    assert code_0 != 0 and seconds <= BOUND + 5, (code_0, seconds, err_0[-2000:])
    assert err_0.strip().splitlines()[-1].startswith("error: process 1 of 2 stopped answering"), err_0[-2000:]
    assert "Traceback" not in err_0 + err_1 and "SIGTERM caught" not in err_0 + err_1


@pytest.mark.slow
def test_an_edited_history_or_lost_manifests_are_set_aside_quietly_and_the_run_resumes_before_them(cache,
        tmp_path, monkeypatch, capsys):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)  # where orbax's abandoned reads end up
    ck, out = tmp_path / "ck", tmp_path / "out"
    assert classify(mlp(cache, out, "--epochs", "3", "--checkpoint-dir", str(ck), "--no-tensorboard")) == 0
    expected = json.loads((out / "metrics.json").read_text())["epochs"]
    meta_path = ck / "2" / "meta" / "metadata"
    meta = json.loads(meta_path.read_text())
    meta["history"][-1]["test_loss"] = 123.0
    meta_path.write_text(json.dumps(meta))
    for manifest in (ck / "3").rglob("manifest.ocdbt"):
        manifest.unlink()
    capsys.readouterr()
    assert classify(mlp(cache, out, "--epochs", "3", "--checkpoint-dir", str(ck), "--resume", "--no-tensorboard")) == 0
    import gc

    gc.collect()
    time.sleep(0.2)  # the reads orbax abandoned end in its threads
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == [
        f"jaxhw: skipped unusable checkpoints in {ck} and moved them to {ck / 'unusable'}: epoch 3 (its arrays do not "
        "restore (ValueError)); epoch 2 (its history or description does not match its checksum)"], err
    assert reported == []
    history = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [round(epoch["test_loss"], 6) for epoch in history] == [round(epoch["test_loss"], 6) for epoch in expected]
    assert sorted(p.name for p in (ck / "unusable").iterdir()) == ["2", "3"]
