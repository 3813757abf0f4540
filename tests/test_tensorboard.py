"""TensorBoard events, read back with TensorBoard's own reader: every scalar equals the number the run's JSON
holds (as float32, what an event stores), the config as HParams sessions, a non-finite number left out with a
note as strict JSON leaves it null, and the main job's every training in one tree. (One seed, --resume and
--no-tensorboard are checked on the runs of tests/test_classify_cli.py and tests/test_checkpoint.py.)"""
import json
import math
import subprocess
import sys

import pytest
from helpers import history_scalars, metrics_scalars, read_tensorboard_run

from jaxhw.classify import main as classify


@pytest.mark.slow
def test_seeds_3_give_one_run_per_seed_holding_every_number_of_metrics_json(tmp_path):
    out = tmp_path / "out"
    assert classify(["--source", "embedded", "--batch-size", "512", "--epochs", "2",
                     "--seeds", "3", "--lr", "0.003", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["seed_0", "seed_1", "seed_2"]
    for k, seed in enumerate([0, 1, 2]):
        found = read_tensorboard_run(out / "tensorboard" / f"seed_{seed}")
        assert found["files"] == 1 and found["ended"] and found["texts"] == {}
        assert found["scalars"] == metrics_scalars(metrics, k)
        assert {"loss/train", "loss/test", "accuracy/train", "accuracy/test", "epoch/seconds",
                "accuracy_train_mode/test"} == set(found["scalars"])
        assert found["hparams"] == {"model": "mlp", "lr": 0.003, "batch_size": 512, "epochs": 2, "seed": seed,
                                    "seeds": 3, "dataset": "mnist", "data": "embedded:mnist_5k"}


def test_a_non_finite_number_is_left_out_with_a_note_as_strict_json_leaves_it_null(tmp_path):
    from jaxhw.files import write_json
    from jaxhw.report.tensorboard_events import supervised_runs, write_events

    history = [{"epoch": 1, "train_loss": 2.0, "test_loss": float("nan"), "test_accuracy": 0.5, "seconds": 1.5},
               {"epoch": 2, "train_loss": 1.0, "test_loss": 0.75, "test_accuracy": float("inf"), "seconds": 0.5}]
    metrics = {"config": {"model": "mlp", "lr": 0.01, "epochs": 2, "checkpoint_dir": None}, "seeds": [7],
               "data_source": "made up", "epochs": history,
               "per_seed": [{"seed": 7, "test_loss": 0.75, "test_accuracy": float("inf")}]}
    write_events(supervised_runs(metrics), tmp_path / "tensorboard")
    written = json.loads(write_json(tmp_path / "metrics.json", metrics).read_text())
    found = read_tensorboard_run(tmp_path / "tensorboard" / "seed_7")
    assert found["scalars"] == {"loss/train": [(1, 2.0), (2, 1.0)], "loss/test": [(2, 0.75)],
                                "accuracy/test": [(1, 0.5)], "epoch/seconds": [(1, 1.5), (2, 0.5)]}
    (note,) = found["texts"]["nonfinite/text_summary"]
    assert "test_loss (loss/test) at epoch 1: nan" in note and "test_accuracy (accuracy/test) at epoch 2: inf" in note
    assert written["epochs"][0]["test_loss"] is None and written["epochs"][0]["test_loss_nonfinite"] == "nan"
    assert written["epochs"][1]["test_accuracy"] is None and written["epochs"][1]["test_accuracy_nonfinite"] == "inf"
    assert found["hparams"] == {"model": "mlp", "lr": 0.01, "epochs": 2, "data": "made up", "seed": 7}


def test_the_writer_loads_without_torch_even_where_torch_is_installed():
    code = ("import sys; from jaxhw.report import tensorboard_events as t; t._tensorboardx(); "
            "print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def homework_expected(record: dict) -> dict[str, dict]:
    """Every training of the report as {run folder: its scalars}, read from report.json by the layout the docs
    give."""
    runs = {}
    for model, metrics in [(f"problem4/{model}", record["problem4"][model]) for model in ("mlp", "cnn")] + [
            ("problem2", record["problem2"])]:
        runs |= {f"{model}/seed_{seed}": metrics_scalars(metrics, k) for k, seed in enumerate(metrics["seeds"])}
    training = record["problem1"]["problem_1c"]["training"]
    for objective, history in training["runs"].items():
        runs |= {f"problem1/{objective}/seed_{seed}": history_scalars(history, k)
                 for k, seed in enumerate(training["seeds"])}
    forgotten = record["problem3"]["forgotten_zero_grad_training"]
    runs |= {f"problem3/zero_grad_forgotten/seed_{seed}": history_scalars(forgotten["history"], k)
             for k, seed in enumerate(forgotten["seeds"])}
    for run in record["problem5"]["runs"]:
        keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
        history = [{"epoch": epoch, "seconds": run["program_epoch_seconds"][epoch - 1],
                    **{key: run[f"{key}_per_epoch"][epoch - 1] for key in keys}}
                   for epoch in range(1, len(run["test_accuracy_per_epoch"]) + 1)]
        runs[f"problem5/{run['task']}/{run['model']}/seed_{run['seed']}"] = history_scalars(history, 0)
    return runs


@pytest.mark.slow
def test_the_main_job_writes_every_training_as_runs_that_hold_report_json(quick_report):
    record = json.loads((quick_report / "report.json").read_text())
    expected = homework_expected(record)
    root = quick_report / "tensorboard"
    found_runs = sorted(str(p.parent.relative_to(root)) for p in root.rglob("events.out.tfevents.*"))
    assert found_runs == sorted(expected)
    for name, scalars in expected.items():
        found = read_tensorboard_run(root / name)
        assert found["scalars"] == scalars, name
        assert found["hparams"]["seed"] == int(name.rsplit("_", 1)[1]) and found["ended"], name
    assert not any(math.isnan(v) for s in expected.values() for points in s.values() for _, v in points)
    assert read_tensorboard_run(root / "problem5/order/lstm/seed_0")["hparams"]["model"] == "lstm"
    assert not list(quick_report.glob("problem*/**/tensorboard"))  # one place for the report's events
