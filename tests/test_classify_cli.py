"""`python -m jaxhw.classify` end to end on the embedded digits, and its answers to bad arguments."""
import json
import subprocess
import sys

import pytest
from helpers import metrics_scalars, read_tensorboard_run

from jaxhw.classify import main


def test_one_epoch_on_embedded_data(tmp_path, capsys):
    assert main(["--epochs", "1", "--source", "embedded", "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data_source"] == "embedded:mnist_5k" and metrics["model"] == "mlp"
    assert metrics["parameters"] == 784 * 64 + 64 + 64 * 10 + 10  # the homework MLP's size, counted by hand
    assert len(metrics["epochs"]) == 1 and {"train_loss", "test_loss", "test_accuracy", "seconds"} <= set(
        metrics["epochs"][0])
    # One epoch of Adam on 4,000 digits already beats chance (0.1) by far.
    assert metrics["test_accuracy"] > 0.5 and 0 < metrics["test_loss"] < 2.3
    assert (tmp_path / "learning_curves.png").stat().st_size > 1000
    assert "test accuracy" in capsys.readouterr().out
    # One seed, one TensorBoard run: TensorBoard's reader finds every number of metrics.json in it.
    assert [p.name for p in (tmp_path / "tensorboard").iterdir()] == ["seed_0"]
    events = read_tensorboard_run(tmp_path / "tensorboard" / "seed_0")
    assert events["scalars"] == metrics_scalars(metrics, 0) and events["files"] == 1
    assert events["hparams"]["model"] == "mlp" and events["hparams"]["seed"] == 0


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar"], "unknown dataset"),
    (["--model", "resnet"], "unknown model"),
    (["--source", "embedded", "--dataset", "fashion_mnist"], "only mnist is embedded"),
    (["--source", "idx", "--data-dir", "/no/such/dir"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(args + ["--out", str(tmp_path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--epochs", "0"], ["--lr", "0"], ["--lr", "-1"],
                                  ["--epochs", "two"]])
def test_bad_numbers_rejected_by_argparse(args):
    result = subprocess.run([sys.executable, "-m", "jaxhw.classify", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "expected a positive" in result.stderr or "invalid" in result.stderr


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["--out", str(blocker / "sub"), "--epochs", "1"]) == 2
    assert "not writable" in capsys.readouterr().err
