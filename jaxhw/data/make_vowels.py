"""Build ``japanese_vowels.npz`` (the real time-series task of jaxhw.data.sequences) shipped inside jaxhw.

Provenance: the JapaneseVowels data set (M. Kudo, J. Toyama and M. Shimbo, "Multidimensional curve
classification using passing-through regions", Pattern Recognition Letters 20(11-13), 1999; UCI Machine
Learning Repository, CC BY 4.0) in the UEA/UCR ``.ts`` format, as distributed inside the wheel of the aeon
package (BSD-3-Clause), ``aeon/datasets/data/JapaneseVowels/JapaneseVowels_{TRAIN,TEST}.ts``. This script
converts the two files once into float32 frames (concatenated, 12 coefficients each), the length of
every utterance and its speaker (0-8). aeon is needed only as a download, never as a dependency:

    pip download --no-deps aeon -d /tmp/aeon
    unzip -o /tmp/aeon/aeon-*.whl 'aeon/datasets/data/JapaneseVowels/*' -d /tmp/aeon
    python -m jaxhw.data.make_vowels /tmp/aeon/aeon/datasets/data/JapaneseVowels
"""
from __future__ import annotations

import argparse
import pathlib

import numpy as np

from jaxhw.data.sequences import VOWELS_PATH

NUM_COEFFICIENTS = 12


def read_ts(path: pathlib.Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The utterances (each (frames, 12) float32) and their speakers (0-based) of one ``.ts`` file."""
    utterances, labels, in_data = [], [], False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *channels, label = line.split(":")
        if len(channels) != NUM_COEFFICIENTS:
            raise ValueError(f"{path}: expected {NUM_COEFFICIENTS} channels per line, got {len(channels)}")
        series = np.array([[float(v) for v in channel.split(",")] for channel in channels], np.float32).T
        utterances.append(series)
        labels.append(int(label) - 1)
    return utterances, np.array(labels, np.int32)


def convert(ts_dir: pathlib.Path, out: pathlib.Path = VOWELS_PATH) -> None:
    """Write the compressed ``.npz``: {train,test}_values (frames, 12), _lengths (N,), _labels (N,)."""
    arrays = {}
    for split in ("train", "test"):
        utterances, labels = read_ts(ts_dir / f"JapaneseVowels_{split.upper()}.ts")
        arrays[f"{split}_values"] = np.concatenate(utterances)
        arrays[f"{split}_lengths"] = np.array([len(u) for u in utterances], np.int32)
        arrays[f"{split}_labels"] = labels
    np.savez_compressed(out, **arrays)
    print(f"wrote {out}: {len(arrays['train_labels'])} train / {len(arrays['test_labels'])} test utterances, "
          f"{out.stat().st_size / 1e3:.0f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxhw.data.make_vowels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ts_dir", type=pathlib.Path, help="directory holding JapaneseVowels_TRAIN.ts and _TEST.ts")
    parser.add_argument("--out", type=pathlib.Path, default=VOWELS_PATH)
    args = parser.parse_args()
    convert(args.ts_dir, args.out)


if __name__ == "__main__":
    main()
