"""Problem 2 in the report: the autoencoder's training loop (2A) and what it learns (2B)."""
from __future__ import annotations

from jaxhw.experiments.autoencoding import HOMEWORK_BLANKS
from jaxhw.report.document import Figure, Note, Paragraph, Section, Table
from jaxhw.report.wording import epochs_text, section, student


def sections(results: dict) -> list[Section]:
    """Problem 2's sections of the report."""
    ae = results["problem2"]
    figures = set(ae.get("figures", []))
    intro = Section("problem-2", "Problem 2: the autoencoder", "", [
        Paragraph(f"`jaxhw.experiments.autoencoding.train_autoencoder` (`python -m jaxhw.autoencode`) trains the dense "
                  f"autoencoder 784-128-64-{ae['latent']}-64-128-784 (ReLU, sigmoid output, {ae['parameters']:,} "
                  f"parameters) with MSE and Adam({ae['lr']:g}), batch {ae['batch_size']}, "
                  f"{epochs_text(ae['epochs_run'])}, through the same training loop as every other model."),
    ], 2)
    a = section("q2a", "2A. The blanks of the training loop", "2A", [
        student("2A"),
        Table(["blank", "PyTorch", "jaxhw", "why"], [list(row) for row in HOMEWORK_BLANKS]),
        Paragraph(f"The loop ran: test MSE **{ae['test_mse']:.4f}** after {epochs_text(ae['epochs_run'])} (train MSE "
                  f"{ae['train_mse']:.4f}); per epoch: "
                  + ", ".join(f"{h['test_mse']:.4f}" for h in ae["epochs"]) + "."),
        Figure("problem2/learning_curves.png", "Train and test MSE per epoch"),
        Note("(c) was left empty, so `x` is never defined and the loop stops with a NameError at `model(x)`; it must "
             "flatten the batch, `x = images.view(images.size(0), -1)` (for a dense model; a convolutional one keeps "
             "N x 1 x 28 x 28). The order of the student's lines is fine: calling `zero_grad()` after `step()` clears "
             "the gradients before the next `backward()` just as well as calling it first. There is no blank (g)."),
    ])
    blocks = [student("2B")]
    if "reconstructions.png" in figures:
        blocks.append(Figure("problem2/reconstructions.png", "Test images (top) and their reconstructions from the "
                                                             f"{ae['latent']}-number code (bottom)"))
    if "latent.png" in figures:
        blocks.append(Figure("problem2/latent.png", "Each test image's 2-number code, coloured by its class (the "
                                                    "labels were never used in training)"))
    if "manifold.png" in figures:
        blocks.append(Figure("problem2/manifold.png", "What the decoder draws for a grid of codes"))
    blocks.append(Paragraph(
        f"It learns a compression: the encoder must squeeze 784 pixels into {ae['latent']} numbers and the decoder "
        f"must redraw the image from them alone. The best image that ignores its input, the mean training image, "
        f"scores test MSE {ae['mean_image_mse']:.4f}; the {ae['latent']}-number code brings it to "
        f"{ae['test_mse']:.4f}. Classes form regions of the code space although no label was used."))
    blocks.append(Note(
        "Essentially right. Two precisions: MSE averages the squared pixel differences (not the distances), so it "
        "is the Gaussian negative log-likelihood of the pixels and punishes large errors most; and it is not the only "
        "sensible choice: with pixels in [0, 1] and a sigmoid output, per-pixel binary cross-entropy is common too. "
        "What makes either make sense is that the target is the input itself, so no labels are needed."))
    return [intro, a, section("q2b", "2B. What the model learns, and why MSE", "2B", blocks)]

