"""Problem 2 in the report: the autoencoder's training loop (2A) and what it learns (2B)."""
from __future__ import annotations

from jaxhw.experiments.autoencoding import HOMEWORK_BLANKS
from jaxhw.report.document import Figure, Paragraph, Section, Table
from jaxhw.report.wording import ci_field, epochs_text, question, remember, seeds_text


def sections(results: dict) -> list[Section]:
    """Problem 2's sections of the report."""
    ae = results["problem2"]
    figures = set(ae.get("figures", []))
    trained = (f"{epochs_text(ae['epochs_run'])} on {ae['train_examples']:,} {ae['dataset']} images "
               f"(`{ae['data_source']}`), {seeds_text(ae['seeds'])}")
    intro = Section("problem-2", "Problem 2: the autoencoder", "", [
        Paragraph(f"`jaxhw.experiments.autoencoding.train_autoencoder` (`python -m jaxhw.autoencode`) trains the dense "
                  f"autoencoder 784-128-64-{ae['latent']}-64-128-784 (ReLU, sigmoid output, {ae['parameters']:,} "
                  f"parameters) with MSE and Adam({ae['lr']:g}), batch {ae['batch_size']}, {trained}, one member per "
                  "seed in one program, through the same training loop as every other model."),
    ], 2)
    a = question("q2a", "2A. The blanks of the training loop", "2A",
                 "(a) `optimizer.zero_grad()`, (b) `model.train()`, (c) `x = images.view(images.size(0), -1)`, "
                 "(d) `loss_fn(x_hat, x)`, (e) `loss.backward()`, (f) `optimizer.step()`; the code shows no blank (g). "
                 "Calling `zero_grad()` after `step()`, as the listing places (a), clears the gradients before the "
                 "next `backward()` just as well as calling it first.", [
                     Table(["blank", "PyTorch", "jaxhw", "why"], [list(row) for row in HOMEWORK_BLANKS]),
                     Paragraph(f"The loop ran: test MSE **{ci_field(ae, 'test_mse', 4)}** after {trained} (mean "
                               "and 95% interval over the seeds; train MSE "
                               f"{ci_field(ae, 'train_mse', 4)})."),
                     Figure("problem2/learning_curves.png", "Train and test MSE per epoch (mean over the seeds, band: "
                                                           "95% interval)"),
                 ])
    evidence = []
    if "reconstructions.png" in figures:
        evidence.append(Figure("problem2/reconstructions.png", "Test images (top) and their reconstructions from the "
                                                               f"{ae['latent']}-number code (bottom), seed "
                                                               f"{ae['seeds'][0]}"))
    if "latent.png" in figures:
        evidence.append(Figure("problem2/latent.png", "Each test image's 2-number code, coloured by its class (the "
                                                      f"labels were never used in training), seed {ae['seeds'][0]}"))
    if "manifold.png" in figures:
        evidence.append(Figure("problem2/manifold.png", "What the decoder draws for a grid of codes"))
    evidence.append(Paragraph(
        f"The best image that ignores its input, the mean training image, scores test MSE {ae['mean_image_mse']:.4f}; "
        f"the {ae['latent']}-number code brings it to {ci_field(ae, 'test_mse', 4)}. MSE averages the squared pixel "
        "differences, so it is the Gaussian negative log-likelihood of the pixels and punishes large errors most; "
        "with pixels in [0, 1] and a sigmoid output, per-pixel binary cross-entropy is a common alternative."))
    b = question("q2b", "2B. What the model learns, and why MSE", "2B",
                 f"It learns to compress each 784-pixel image into a {ae['latent']}-number code and to redraw the "
                 "image from the code alone, a dimensionality reduction learned without labels; MSE fits because the "
                 "target is the input itself, so the loss is a pixel-by-pixel regression error.", evidence)
    bullets = [
        "`optimizer.zero_grad()` has no JAX counterpart: `jax.grad` returns fresh gradients each step.",
        f"A {ae['latent']}-number code reconstructs test images to MSE {ci_field(ae, 'test_mse', 4)}, against "
        f"{ae['mean_image_mse']:.4f} for the mean image.",
        "The target of an autoencoder is its input, so it trains without labels.",
    ]
    return [intro, a, b, remember("remember-2", bullets)]
