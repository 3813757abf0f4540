"""Checkpoints: a run killed with SIGKILL in epoch 3 of 5 and resumed ends bitwise equal to an uninterrupted one."""
import functools
import json
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import optax
import pytest
from helpers import ctrl_c_reaches_children, metrics_scalars, read_tensorboard_run, write_idx_dataset

from jaxhw.classify import main
from jaxhw.data.loader import epoch_indices
from jaxhw.models.cnn import CNN
from jaxhw.models.mlp import MLP
from jaxhw.training import create_train_state, fit
from jaxhw.training.checkpoint import CheckpointStore
from jaxhw.training.fit import TrainingDiverged
from jaxhw.training.steps import SHUFFLE_STREAM

ARGS = ["--model", "cnn", "--epochs", "5", "--batch-size", "64"]
SAMPLE = np.zeros((1, 28, 28, 1), np.uint8)


def classify_cnn(*args, **kwargs):
    """``python -m jaxhw.classify`` of a 5-epoch CNN; it compiles through the test session's cache (JAXHW_CACHE_DIR)."""
    return subprocess.Popen([sys.executable, "-m", "jaxhw.classify", *ARGS, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def final_state(directory):
    like = create_train_state(CNN(), optax.adam(1e-3), SAMPLE)
    store = CheckpointStore(directory, resume=True)
    store.description = json.loads((directory / "5" / "meta" / "metadata").read_text())["description"]
    state, epoch, history = store.restore(like)
    store.close()
    assert epoch == 5
    return jax.device_get({"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
                           "opt_state": state.opt_state, "rng": jax.random.key_data(state.rng)}), history


@pytest.mark.slow
def test_sigkill_in_epoch_3_then_resume_is_bitwise_equal(tmp_path):
    # The uninterrupted run first: the killed and the resumed runs then load its compiled programs from the cache.
    write_idx_dataset(tmp_path / "digits", 1000)  # 16 batches an epoch, a quarter of the embedded digits
    data = ("--source", "idx", "--data-dir", str(tmp_path / "digits"))
    classify = functools.partial(classify_cnn, *data)
    whole = classify("--checkpoint-dir", str(tmp_path / "whole"), "--out", str(tmp_path / "whole_out"))
    _, err = whole.communicate(timeout=600)
    assert whole.returncode == 0, err[-2000:]
    killed = classify("--checkpoint-dir", str(tmp_path / "killed"), "--out", str(tmp_path / "killed_out"))
    deadline = time.monotonic() + 400
    while not (tmp_path / "killed" / "2").is_dir():  # orbax renames the folder into place once it is complete
        assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "3").exists()  # it died during epoch 3, before that epoch's checkpoint
    assert not (tmp_path / "killed_out" / "metrics.json").exists()

    resumed = classify("--checkpoint-dir", str(tmp_path / "killed"), "--resume", "--out", str(tmp_path / "killed_out"))
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]

    (expected, expected_history), (got, got_history) = final_state(tmp_path / "whole"), final_state(tmp_path / "killed")
    jax.tree_util.tree_map(np.testing.assert_array_equal, expected, got)  # bitwise
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(expected_history) == strip(got_history)
    # Determinism: the same command and seed give the same metrics.json, apart from the timings.
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole_out", "killed_out")]
    for record, (directory, resumed) in zip(metrics, (("whole", False), ("killed", True))):
        # the configs differ only in where the run was kept and in --resume
        assert record["config"].pop("checkpoint_dir") == str(tmp_path / directory)
        assert record["config"].pop("resume") is resumed
    timing = {"seconds_per_epoch", "first_epoch_seconds", "total_seconds", "epochs"}
    assert {k: v for k, v in metrics[0].items() if k not in timing} == {k: v for k, v in metrics[1].items()
                                                                         if k not in timing}
    assert sorted(p.name for p in (tmp_path / "killed").iterdir() if p.name.isdigit()) == ["3", "4", "5"]  # keep 3


@pytest.mark.slow
def test_checkpoint_of_another_model_is_refused(tmp_path, capsys):
    common = ["--source", "embedded", "--epochs", "1", "--out", str(tmp_path / "o"),
              "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(common) == 0
    assert main(common + ["--model", "cnn", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "different run" in err and "model was 'mlp', now 'cnn'" in err


def test_resume_without_checkpoint_dir(capsys, tmp_path):
    assert main(["--resume", "--out", str(tmp_path)]) == 2
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err


@pytest.mark.slow
def test_nan_loss_names_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    clean = {"x": rng.uniform(0, 1, (64, 28, 28, 1)).astype(np.float32), "y": rng.integers(0, 10, 64).astype(np.int32)}
    store = CheckpointStore(tmp_path, description={"model": "mlp"})
    state = create_train_state(MLP(), optax.adam(1e-3), clean["x"][:1], seed=0)
    fit(state, clean, None, epochs=2, batch_size=16, checkpoints=store, progress=False)

    poisoned = {"x": clean["x"].copy(), "y": clean["y"]}
    poisoned["x"][37] = 3e38  # finite, but its logits overflow to inf and the loss to NaN
    state = create_train_state(MLP(), optax.adam(1e-3), clean["x"][:1], seed=0)
    restored, _, _ = store.restore(state)
    # The step of epoch 3 that draws example 37, from the same on-device permutation the epoch uses:
    batches, _ = epoch_indices(jax.random.fold_in(jax.random.fold_in(restored.rng, SHUFFLE_STREAM), 2), 64, 16)
    step = int(np.flatnonzero((np.asarray(batches) == 37).any(axis=1))[0]) + 1
    with pytest.raises(TrainingDiverged, match=rf"epoch 3, step {step} of the epoch .*last good checkpoint: epoch 2"):
        fit(state, poisoned, None, epochs=4, batch_size=16, checkpoints=store, resume=True, progress=False)
    assert store.latest_epoch() == 2
    again, epoch, history = store.restore(state)
    assert epoch == 2 and len(history) == 2 and np.isfinite(history[-1]["train_loss"])
    store.close()


INTERRUPTED_SAVE = """
import os, signal, sys
import numpy as np, optax
from jaxhw.models.mlp import MLP
from jaxhw.training import create_train_state
from jaxhw.training.checkpoint import CheckpointStore

state = create_train_state(MLP(), optax.adam(1e-3), np.zeros((1, 28, 28, 1), np.float32), seed=0)
store = CheckpointStore(sys.argv[1], description={"model": "mlp"})
writing = store.manager.save

def save_interrupted(*args, **kwargs):  # Ctrl-C lands as orbax begins to write
    os.kill(os.getpid(), signal.SIGINT)
    return writing(*args, **kwargs)

store.manager.save = save_interrupted
try:
    store.save(1, state, [{"epoch": 1}])
except KeyboardInterrupt:
    print("interrupted after", store.steps())
"""


@pytest.mark.slow
def test_ctrl_c_while_a_checkpoint_is_written_takes_effect_once_the_write_has_ended(tmp_path):
    with ctrl_c_reaches_children():
        child = subprocess.Popen([sys.executable, "-c", INTERRUPTED_SAVE, str(tmp_path / "ck")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 0 and stdout.strip() == "interrupted after [1]", stderr[-3000:]
    assert "Traceback" not in stderr and "Error" not in stderr, stderr[-3000:]
    store = CheckpointStore(tmp_path / "ck", description={"model": "mlp"}, resume=True)
    state = create_train_state(MLP(), optax.adam(1e-3), np.zeros((1, 28, 28, 1), np.float32), seed=0)
    restored, epoch, history = store.restore(state)  # whole: it passes the checksum
    assert epoch == 1 and history == [{"epoch": 1}]
    jax.tree_util.tree_map(np.testing.assert_array_equal, state.params, restored.params)
    store.close()


def test_nan_in_float_data_is_rejected_before_training():
    data = {"x": np.zeros((8, 28, 28, 1), np.float32), "y": np.zeros(8, np.int32)}
    data["x"][3, 0, 0, 0] = np.nan
    state = create_train_state(MLP(), optax.adam(1e-3), data["x"][:1])
    with pytest.raises(Exception, match="1 NaN or infinite values"):
        fit(state, data, None, epochs=1, batch_size=4)


@pytest.mark.slow
def test_autoencode_resumes_to_the_same_history_as_an_uninterrupted_run(tmp_path):
    from jaxhw.autoencode import main as autoencode

    common = ["--source", "embedded", "--batch-size", "256"]
    assert autoencode(common + ["--epochs", "3", "--out", str(tmp_path / "whole")]) == 0
    # --no-tensorboard is no part of the run's description: the second leg resumes without it.
    assert autoencode(common + ["--epochs", "2", "--out", str(tmp_path / "part"), "--checkpoint-dir",
                                str(tmp_path / "ck"), "--no-tensorboard"]) == 0
    assert (tmp_path / "part" / "metrics.json").exists() and not (tmp_path / "part" / "tensorboard").exists()
    first_leg = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert autoencode(common + ["--epochs", "3", "--out", str(tmp_path / "part"), "--checkpoint-dir",
                                str(tmp_path / "ck"), "--resume"]) == 0
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "part")]
    histories = [m["epochs"] for m in metrics]
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert len(histories[1]) == 3 and strip(histories[0]) == strip(histories[1])
    # TensorBoard: each epoch once, the first leg's restored from the checkpoint with its own numbers.
    for folder, record in zip(("whole", "part"), metrics):
        events = read_tensorboard_run(tmp_path / folder / "tensorboard" / "seed_0")
        assert events["scalars"] == metrics_scalars(record, 0) and events["files"] == 1
        assert set(events["scalars"]) == {"mse/train", "mse/test", "epoch/seconds"}
        assert all([step for step, _ in points] == [1, 2, 3] for points in events["scalars"].values())
    resumed = read_tensorboard_run(tmp_path / "part" / "tensorboard" / "seed_0")["scalars"]
    assert {tag: points[:2] for tag, points in resumed.items()} == metrics_scalars(first_leg, 0)
