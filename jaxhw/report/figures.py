"""PNG figures written with matplotlib's Agg backend (no display needed)."""
from __future__ import annotations

import io
import pathlib

from jaxhw.common import ModuleOnFirstUse
from jaxhw.files import write_bytes


def _use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


plt = ModuleOnFirstUse("matplotlib.pyplot", prepare=_use_agg)  # 1 s to import: loaded when a figure is drawn


def save(fig, path: pathlib.Path) -> pathlib.Path:
    """Save a figure as PNG atomically (rendered in memory, then written aside and renamed) and close it. The
    layout leaves room for a figure title and the canvas grows to hold legends placed outside the axes."""
    fig.tight_layout(rect=(0, 0, 1, 0.94) if fig._suptitle is not None else (0, 0, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png", bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return write_bytes(path, buffer.getvalue())


AXIS_LABELS = {"loss": "cross-entropy (nats per example)", "accuracy": "accuracy (fraction correct)",
               "mse": "mean squared error (per pixel, [0, 1] scale)"}


def learning_curves(history: list[dict], path: pathlib.Path, title: str = "") -> pathlib.Path:
    """Per-epoch train/test loss and, when present, accuracy, side by side; a history over several seeds (records
    with ``<metric>_ci95``) is drawn as the mean with its 95% interval as a band."""
    epochs = [h["epoch"] for h in history]
    metrics = sorted({k.split("_", 1)[1] for h in history for k in h
                      if k.startswith(("train_", "test_")) and not k.endswith(("_ci95", "_per_seed"))})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for split in ("train", "test"):
            key = f"{split}_{metric}"
            if any(key in h for h in history):
                line, = ax.plot(epochs, [h.get(key) for h in history], marker="o", label=split)
                bands = [h.get(f"{key}_ci95") for h in history]
                if all(band is not None for band in bands):
                    ax.fill_between(epochs, [b[0] for b in bands], [b[1] for b in bands], color=line.get_color(),
                                    alpha=0.2, label=f"{split}, 95% interval")
        ax.set_xlabel("epoch")
        ax.set_ylabel(AXIS_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def reconstruction_pairs(originals, reconstructions, path: pathlib.Path, labels=None, title: str = "") -> pathlib.Path:
    """Images (N, H, W) in [0, 1] in the top row, their reconstructions beneath, one column each."""
    count = len(originals)
    fig, axes = plt.subplots(2, count, figsize=(1.2 * count, 2.9), squeeze=False)
    for column in range(count):
        for row, images in enumerate((originals, reconstructions)):
            ax = axes[row, column]
            ax.imshow(images[column], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        if labels is not None:
            axes[0, column].set_title(str(labels[column]), fontsize=8)
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("output")
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def latent_scatter(codes, labels, class_names, path: pathlib.Path, title: str = "") -> pathlib.Path:
    """2-D codes (N, 2) as points coloured by class, with a legend naming the classes."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    colours = plt.get_cmap("tab10")
    for index, name in enumerate(class_names):
        chosen = labels == index
        if chosen.any():
            ax.scatter(codes[chosen, 0], codes[chosen, 1], s=3, alpha=0.5, color=colours(index % 10), label=name,
                       rasterized=True)
    ax.set_xlabel("code z1 (no unit: the encoder's output)")
    ax.set_ylabel("code z2")
    ax.legend(markerscale=4, fontsize=8, loc="best", framealpha=0.8)
    ax.set_title(title or "test set in the latent plane", fontsize=10)
    return save(fig, path)


def latent_manifold(images, extent, path: pathlib.Path, title: str = "") -> pathlib.Path:
    """A grid of decoded images (rows, cols, H, W), top row at the largest z2, tiled over its latent extent."""
    import numpy as np

    rows, cols = images.shape[:2]
    # A one-pixel grey frame around each tile keeps neighbouring decodings apart.
    framed = np.pad(np.asarray(images), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=0.35)
    height, width = framed.shape[2:]
    tiled = framed.transpose(0, 2, 1, 3).reshape(rows * height, cols * width)
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    z1_low, z1_high, z2_low, z2_high = extent
    # Each tile is centred on its grid point: widen the extent by half a step on each side.
    half_z1 = (z1_high - z1_low) / max(cols - 1, 1) / 2
    half_z2 = (z2_high - z2_low) / max(rows - 1, 1) / 2
    ax.imshow(tiled, cmap="gray", vmin=0.0, vmax=1.0, aspect="auto",
              extent=(z1_low - half_z1, z1_high + half_z1, z2_low - half_z2, z2_high + half_z2))
    ax.set_xlabel("code z1 (no unit: the encoder's output)")
    ax.set_ylabel("code z2")
    ax.set_title(title or "decoded latent grid", fontsize=10)
    return save(fig, path)


def gradient_sweep(p_true, panels: dict[str, dict], path: pathlib.Path, title: str = "",
                   marks: tuple = ()) -> pathlib.Path:
    """Gradient magnitudes against the true-class probability on a log scale, one panel per quantity
    (``panels`` maps a y-axis label to {legend label: magnitudes}); ``marks`` are probabilities drawn dotted."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (label, curves) in zip(axes[0], panels.items()):
        for name, values in curves.items():
            ax.plot(p_true, values, label=name)
        for p in marks:
            ax.axvline(p, color="grey", linestyle=":", linewidth=1, label=f"ŷ_true = {p:g}")
        ax.set_yscale("log")
        ax.set_xlabel("predicted probability of the true class, ŷ_true")
        ax.set_ylabel(f"{label} (log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def grouped_bars(rows: list[dict], path: pathlib.Path, group: str, series: str, value: str = "accuracy_mean",
                 interval: str = "accuracy_ci95", title: str = "", ylabel: str = "test accuracy (fraction correct)",
                 reference: float | None = None) -> pathlib.Path:
    """Bars of ``row[value]`` with their 95% intervals ``row[interval]`` (none for one seed) as error bars: a
    cluster per ``row[group]``, a colour per ``row[series]``; ``reference`` is a dashed line named in the legend."""
    groups = list(dict.fromkeys(r[group] for r in rows))
    names = list(dict.fromkeys(r[series] for r in rows))
    lookup = {(r[group], r[series]): r for r in rows}
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(groups) + 0.2 * len(groups) * len(names)), 4.6))
    for index, name in enumerate(names):
        xs = [g + (index - (len(names) - 1) / 2) * width for g in range(len(groups))]
        found = [(x, lookup[(g, name)]) for x, g in zip(xs, groups) if (g, name) in lookup]
        means = [r[value] for _, r in found]
        errors = [[r[value] - r[interval][0] if r.get(interval) else 0.0 for _, r in found],
                  [r[interval][1] - r[value] if r.get(interval) else 0.0 for _, r in found]]
        ax.bar([x for x, _ in found], means, width, yerr=errors, capsize=2, label=name)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=0.8, label=f"solved ({reference:g})")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlabel("task")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=min(len(names) + 1, 4), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, path)


def confusion_matrix(matrix, class_names, path: pathlib.Path, title: str = "") -> pathlib.Path:
    """A confusion matrix (rows: true class, columns: predicted) with counts written in the cells."""
    import numpy as np

    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        if count:
            ax.text(col, row, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > threshold else "black")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if max(map(len, class_names)) > 2 else 0, ha="right"
                  if max(map(len, class_names)) > 2 else "center", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix", fontsize=10)
    return save(fig, path)


def image_grid(images, captions, path: pathlib.Path, title: str = "", columns: int = 6) -> pathlib.Path:
    """Grey images (N, H, W) in [0, 1] in a grid, each with a caption (up to two lines) above it."""
    count = len(images)
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 2.1 * rows + 0.4), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index < count:
            ax.imshow(images[index], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(captions[index], fontsize=7)
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def compare_curves(series: dict, path: pathlib.Path, xlabel: str = "epoch", ylabel: str = "test accuracy",
                   title: str = "") -> pathlib.Path:
    """One line per label: ``series`` maps a legend label to (xs, ys)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, path)
