"""Problem 2 in the report: the autoencoder's training loop (2A) and what it learns (2B); the key and its evidence."""
from __future__ import annotations

from jaxhw.experiments.autoencoding import HOMEWORK_BLANKS
from jaxhw.report.document import Figure, Paragraph, Section, Table
from jaxhw.report.wording import (
    ci_field,
    epochs_text,
    evidence_section,
    key_question,
    percent,
    seeds_text,
    with_interval,
)


def _trained(ae: dict) -> str:
    return (f"{epochs_text(ae['epochs_run'])} on {ae['train_examples']:,} {ae['dataset']} images, "
            f"{seeds_text(ae['seeds'])}")


def _worst(names: list[str], recognised: dict, count: int) -> str:
    """The digits whose reconstructions the classifier reads right least often, with their intervals."""
    rates = recognised["reconstructions_per_class"]
    intervals = recognised.get("reconstructions_per_class_ci95") or [None] * len(rates)
    order = sorted(range(len(rates)), key=lambda i: rates[i])[:count]
    return ", ".join(f"{names[i]}: {with_interval(rates[i], 3, *(intervals[i] or (None, None)))}" for i in order)


def key(results: dict) -> list[Section]:
    """Problem 2's questions as the key answers them."""
    ae = results["problem2"]
    q2a = key_question(
        "q2a", "2A. The blanks of the training loop", "2A",
        "(a) `optimizer.zero_grad()`, (b) `model.train()`, (c) `x = images.view(images.size(0), -1)` (each image "
        "flattened to 784 numbers, the input and the target; `x = images` if the model flattens inside), (d) "
        "`loss = loss_fn(x_hat, x)`, (e) `loss.backward()`, "
        "(f) `optimizer.step()`; the listing has no blank (g). The listing puts `zero_grad()` last in the loop; "
        "that works as well as putting it first, since it still clears the gradients before the next `backward()`.",
        f"the same loop, run as its Flax/optax counterpart (the *JAX:* line), trains: test MSE "
        f"{ci_field(ae, 'test_mse', 4)} after {_trained(ae)}", "e-q2a",
        jax="(a) has no counterpart, since `jax.grad` returns fresh gradients on every call; (b) is the argument "
            "`train=True`; (e) and (f) are `grads = jax.grad(loss_fn)(params)` and "
            "`state.apply_gradients(grads=grads)`.")
    mean_image, by_class = ae["mean_image_mse"], ae["by_class"]
    digit_mean = by_class["digit_mean_image_overall"]
    drop = 1 - ae["test_mse"] / mean_image
    worse = sum(ae_error > digit_error for ae_error, digit_error in zip(by_class["autoencoder"],
                                                                       by_class["digit_mean_image"]))
    recognised = ae.get("recognised")
    read = ""
    if recognised:
        mean = sum(recognised["reconstructions_per_seed"]) / len(recognised["reconstructions_per_seed"])
        original = sum(recognised["originals_per_seed"]) / len(recognised["originals_per_seed"])
        read = (f", and the CNN trained for problem 4 reads only {percent(mean)} of the reconstructions as the right "
                f"digit ({percent(original)} of the originals): several digits come back as one another")
    kept = (f"keeps only a coarse shape: its test MSE is {percent(drop)} below the mean image's but only "
            f"{abs(digit_mean - ae['test_mse']):.4f} {'below' if ae['test_mse'] < digit_mean else 'above'} that of "
            f"the right digit's mean image (the best guess from the label alone), worse on {worse} of "
            f"{len(by_class['autoencoder'])} digits")
    names = by_class["class_names"]
    q2b = key_question(
        "q2b", "2B. What the model learns, and why MSE", "2B",
        f"It learns to squeeze each 784-pixel image into a short code ({ae['latent']} numbers, this key's choice: the "
        "homework leaves `Autoencoder()` undefined) and to redraw it from the code, without labels; MSE fits "
        "because the target is the input itself, a pixel-by-pixel regression (per-pixel binary cross-entropy is the "
        f"other common choice). A {ae['latent']}-number code "
        f"{kept}{read}. The code plane ([latent figure](#e-q2b)) shows why: digits whose codes overlap come back "
        "alike.",
        f"test MSE {ci_field(ae, 'test_mse', 4)}; the mean image {mean_image:.4f}; each digit's mean image "
        f"{digit_mean:.4f}"
        + (f"; the digits read right least often: {_worst(names, recognised, 3)} (share of their test images, mean "
           "over the seeds)" if recognised else ""),
        "e-q2b")
    intro = Section("problem-2", "Problem 2: the autoencoder", "", [Paragraph(
        f"The dense autoencoder 784-128-64-{ae['latent']}-64-128-784 (ReLU, sigmoid output, {ae['parameters']:,} "
        f"parameters), trained with `nn.MSELoss()` and Adam({ae['lr']:g}), batch {ae['batch_size']}, "
        f"{_trained(ae)}.")], 2)
    return [intro, q2a, q2b]


def evidence(results: dict) -> list[Section]:
    """Problem 2's tables, figures and method notes."""
    ae = results["problem2"]
    figures = set(ae.get("figures", []))
    e2a = evidence_section("e-q2a", "2A", [
        Table(["blank", "PyTorch", "JAX (in jaxhw)", "why"], [list(row) for row in HOMEWORK_BLANKS]),
        Paragraph(f"Train MSE {ci_field(ae, 'train_mse', 4)}, test MSE {ci_field(ae, 'test_mse', 4)} after "
                  f"{_trained(ae)} (`jaxhw.experiments.autoencoding.train_autoencoder`, "
                  "`python -m jaxhw.autoencode`)."),
        Figure("problem2/learning_curves.png",
               "Train and test MSE per epoch (mean over the seeds, band: 95% interval)"),
    ])
    by_class, recognised = ae["by_class"], ae.get("recognised")
    headers = ["digit", "autoencoder MSE (mean over seeds)", "mean image", "the digit's mean image"]
    if recognised:
        headers += ["CNN names the digit: reconstruction", "original"]
    rows = []
    for i, name in enumerate(by_class["class_names"]):
        row = [name, f"{by_class['autoencoder'][i]:.4f}", f"{by_class['mean_image'][i]:.4f}",
               f"{by_class['digit_mean_image'][i]:.4f}"]
        if recognised:
            row += [percent(recognised["reconstructions_per_class"][i]), percent(recognised["originals_per_class"][i])]
        rows.append(row)
    blocks = [Table(headers, rows, "Test MSE per digit of the autoencoder and of two images that ignore the code: "
                                   "the mean training image (knows nothing) and the digit's mean training image "
                                   "(knows only which digit); then how often the CNN trained for problem 4 (same seed) "
                                   "names "
                                   "the right digit for the reconstruction and for the original")]
    for name, caption in (("reconstructions.png", f"Test images (top) and their reconstructions from the "
                                                  f"{ae['latent']}-number code (bottom), seed {ae['seeds'][0]}"),
                          ("latent.png", "Each test image's 2-number code, coloured by its digit (the labels were "
                                         f"never used in training), seed {ae['seeds'][0]}"),
                          ("manifold.png", "What the decoder draws for a grid of codes")):
        if name in figures:
            blocks.append(Figure(f"problem2/{name}", caption))
    return [e2a, evidence_section("e-q2b", "2B", blocks)]
