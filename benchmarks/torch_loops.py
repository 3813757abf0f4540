"""The PyTorch side of the benchmarks: the homework's models, its training loop as written, and the fastest
plain loop we could write. Imports torch and numpy only (never jax), so a process running it measures
PyTorch's time and memory alone.

Run as a script it is "the PyTorch homework script": Fashion-MNIST (or MNIST) from the IDX files, the
homework MLP, Adam 1e-3, batch 64, a DataLoader over a TensorDataset, and per epoch a test evaluation in
eval mode, then metrics.json and learning_curves.png, i.e. what ``python -m jaxhw.classify`` does:

    python benchmarks/torch_loops.py --dataset fashion_mnist --epochs 10 --out runs/torch_homework
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

# jaxhw.data.* import numpy only (no jax), so both sides read the same bytes the same way.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from jaxhw.data.images import load_images  # noqa: E402
from jaxhw.torch_bridge import twins  # noqa: E402

LOOPS = ("homework", "plain", "compiled")


# ---------------------------------------------------------------------------------------------- models
# The twins of jaxhw's models (jaxhw.torch_bridge.twins imports torch and numpy only).
MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": twins.homework_mlp, "cnn": twins.cnn,
                                              "autoencoder": twins.DenseAutoencoder, "lstm": twins.LSTMClassifier}
RECONSTRUCTION = {"autoencoder"}  # trained with MSE against the (flattened) input; the others with cross-entropy


# ------------------------------------------------------------------------------------------------ data
def image_tensors(dataset: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """ToTensor's result for a whole split: float32 (N, 1, 28, 28) in [0, 1], int64 labels."""
    data = load_images(dataset, split, source="idx")
    images = twins.images_to_torch(data.images).contiguous()
    return images, torch.from_numpy(data.labels.astype(np.int64))


def sequence_tensors(task: str, split: str, num_train: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a 50x8 sequence task (jaxhw.data.sequences) as float32 (N, 50, 8) and int64 labels."""
    from jaxhw.data.sequences import load_task

    train, test = load_task(task, num_train)
    data = train if split == "train" else test
    return torch.from_numpy(data.x), torch.from_numpy(data.y.astype(np.int64))


def loss_for(model_name: str) -> nn.Module:
    return nn.MSELoss() if model_name in RECONSTRUCTION else nn.CrossEntropyLoss()


def targets_for(model_name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Labels for the classifiers; the flattened input itself for the autoencoder (homework problem 2)."""
    return x.view(x.size(0), -1) if model_name in RECONSTRUCTION else y


# ----------------------------------------------------------------------------------------------- loops
def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def homework_epochs(model: nn.Module, model_name: str, train_x: torch.Tensor, train_y: torch.Tensor,
                    epochs: int, batch_size: int = 64, lr: float = 1e-3, device: str = "cpu") -> Iterator[float]:
    """The homework's loop as written: DataLoader over a TensorDataset, zero_grad / backward / step.

    Yields each epoch's seconds. On a GPU each batch moves to the device inside the loop, as usual.
    """
    train_loader = DataLoader(TensorDataset(train_x, train_y), batch_size=batch_size, shuffle=True)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_for(model_name)
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x), targets_for(model_name, x, y))
            loss.backward()
            optimizer.step()
        _synchronize(device)
        yield time.perf_counter() - start


def plain_epochs(model: nn.Module, model_name: str, train_x: torch.Tensor, train_y: torch.Tensor, epochs: int,
                 batch_size: int = 64, lr: float = 1e-3, compiled: bool = False,
                 device: str = "cpu") -> Iterator[float]:
    """The fastest plain loop we found: tensors preloaded, a randperm per epoch, batches by index,
    Adam(fused=True), gradients set to None. ``compiled`` wraps the step's forward in torch.compile."""
    optimizer = optim.Adam(model.parameters(), lr=lr, fused=True)
    loss_fn = loss_for(model_name)
    forward = torch.compile(model) if compiled else model
    reconstruction = model_name in RECONSTRUCTION
    train_x, train_y = train_x.to(device), train_y.to(device)
    if reconstruction:
        train_x = train_x.reshape(len(train_x), -1)  # the targets, once, not a view per batch
    n = len(train_x)
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, device=device)
        for first in range(0, n, batch_size):
            index = order[first:first + batch_size]
            x = train_x[index]
            loss = loss_fn(forward(x), x if reconstruction else train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _synchronize(device)
        yield time.perf_counter() - start


@torch.no_grad()
def evaluate(model: nn.Module, model_name: str, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 1000) -> dict[str, float]:
    """Eval-mode test metrics: loss and accuracy for classifiers, per-element MSE for the autoencoder."""
    model.eval()
    loss_fn, total_loss, correct = loss_for(model_name), 0.0, 0
    for first in range(0, len(x), batch_size):
        xb, yb = x[first:first + batch_size], y[first:first + batch_size]
        outputs = model(xb)
        total_loss += float(loss_fn(outputs, targets_for(model_name, xb, yb))) * len(xb)
        if model_name not in RECONSTRUCTION:
            correct += int((outputs.argmax(dim=1) == yb).sum())
    if model_name in RECONSTRUCTION:
        return {"test_mse": total_loss / len(x)}
    return {"test_loss": total_loss / len(x), "test_accuracy": correct / len(x)}


def epochs_of(loop: str, model: nn.Module, model_name: str, train_x, train_y, epochs: int, batch_size: int = 64,
              lr: float = 1e-3, device: str = "cpu") -> Iterator[float]:
    """The epoch generator of one of LOOPS."""
    if loop == "homework":
        return homework_epochs(model, model_name, train_x, train_y, epochs, batch_size, lr, device)
    if loop in ("plain", "compiled"):
        return plain_epochs(model, model_name, train_x, train_y, epochs, batch_size, lr, loop == "compiled", device)
    raise ValueError(f"unknown loop {loop!r}: expected one of {', '.join(LOOPS)}")


# ------------------------------------------------------------------------- the homework script itself
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The PyTorch homework script: MLP on (Fashion-)MNIST.")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/torch_homework"))
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, train_y = image_tensors(args.dataset, "train")
    test_x, test_y = image_tensors(args.dataset, "test")
    model = twins.homework_mlp()
    history = []
    for epoch, seconds in enumerate(homework_epochs(model, "mlp", train_x, train_y, args.epochs, args.batch_size,
                                                    args.lr), start=1):
        history.append({"epoch": epoch, "seconds": seconds, **evaluate(model, "mlp", test_x, test_y)})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps({"epochs": history}, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([h["epoch"] for h in history], [h["test_accuracy"] for h in history], marker="o")
    ax.set(xlabel="epoch", ylabel="test accuracy", title=f"PyTorch MLP on {args.dataset}")
    fig.savefig(args.out / "learning_curves.png", dpi=100, bbox_inches="tight")
    final = history[-1]
    print(f"test accuracy {final['test_accuracy']:.4f}, test loss {final['test_loss']:.4f}, "
          f"{np.median([h['seconds'] for h in history[1:]] or [history[0]['seconds']]):.2f} s/epoch; "
          f"wrote {args.out}/metrics.json and learning_curves.png")


if __name__ == "__main__":
    main()
