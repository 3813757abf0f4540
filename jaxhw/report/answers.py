"""The homework's questions, the student's answers as written, and jaxhw's computed answers: the report's text.

``build_document(results)`` turns what ``jaxhw.report.homework.run_homework`` computed into a Document. Nothing
here trains or measures anything; it only words and arranges the numbers.
"""
from __future__ import annotations

import math
from typing import Any

from jaxhw.experiments.timeseries import SOLVED
from jaxhw.report.document import Bullets, Code, Document, Figure, Note, Paragraph, Quote, Section, Table

QUESTIONS = {
    "1A": "Your softmax classifier outputs the vector ŷ = [0.1, 0.1, 0.0, 0.4, 0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.1] "
          "for an image of the digit '3'. Compute the cross-entropy loss. (Correct label: `y = torch.tensor([3])` "
          "or y = (0.0, 0.1, 0.0, 0.0, 0.0).)",
    "1B": "Why is the cross-entropy loss used for MNIST classification? Why is MSE a poor substitute? Assume ŷ_3 = 0.9 "
          "(for the correct label y_3 = 1) and compute ∂MSE/∂ŷ_k vs. ∂CE/∂ŷ_k. Which loss gives the larger gradient "
          "signal when the network is already confident, and why is that good?",
    "1C": "Why is there no `nn.Softmax()` layer between the final linear layer and `CrossEntropyLoss()`? Shouldn't "
          "classification produce probabilities adding up to 1?",
    "2A": "Fill in the blanks (a) through (g) of the autoencoder training loop "
          "(`optimizer = optim.Adam(model.parameters(), lr=0.001)`, `loss_fn = nn.MSELoss()`, 10 epochs over "
          "`train_loader`).",
    "2B": "What is this model learning and why does the loss function (you chose) make sense?",
    "3A": "Which sub-package hosts MNIST? Fill in: from ___ import ___",
    "3B": "Where does Adam live? from ___ import ___",
    "3C": "Which class is responsible for shuffling and batching data during training? "
          "from torch.utils.data import ___",
    "3D": "What happens if `loss.backward()` is missing?",
    "3E": "(The question's text is missing in the homework; from the answer:) what does `optimizer.zero_grad()` do, "
          "and what happens without it?",
    "3F": "What happens to Dropout and batch normalization during `model.train()` vs `model.eval()`?",
    "3G": "During training, your model achieves low loss and high accuracy, but on the test set performance is much "
          "worse. One possible cause is forgetting to switch the model to evaluation mode. What line of code should "
          "you add before running inference on the test set?",
    "4": "Problem 4 is a Colab notebook that cannot be opened here; read as: train and evaluate the homework's "
         "models end to end, with learning curves and figures.",
    "5A": "Each sample is 50 time points x 8 features, the label is 0 or 1. Why might a Multilayer Perceptron (MLP) be "
          "a poor choice for modeling this dataset?",
    "5B": "When would a CNN be most effective at modeling this dataset? When would it be the least effective?",
    "5C": "Name two other model families that would be a good choice for this dataset. For each, explain what about "
          "the model makes it useful for this type of analysis.",
}

STUDENT = {
    "1A": "(no answer written)",
    "1B": "Cross entropy loss penalizes confident wrong predictions more heavily. Using the example given, I see that "
          "cross entropy shows LARGER gradient signal. That is good because it allows for better learning of the "
          "classification.",
    "1C": "the CrossEntropyLoss() function in Pytorch has the Softmax functionality already embedded in it.",
    "2A": "(a) optimizer.zero_grad() (written last, after the step); (b) model.train(); (c) left empty; "
          "(d) loss_fn(x_hat, x); (e) loss.backward(); (f) optimizer.step(); no (g).",
    "2B": "I use an MSE loss function because it is not a classification task but is instead reconstruction task. "
          "[...] MSE is best as it average the distance between predicted vs actual pixels. This model is learning "
          "compressed representation of the numbers in MNIST dataset. It can map the original image 28 x 28 pixel on "
          "to just a few number (i.e 2 number)",
    "3A": "from torchvisions import datasets",
    "3B": "from torch.optim import Adam",
    "3C": "from torch.utils.data import DataLoader",
    "3D": "This function computes the loss gradient every input parameter. Without this the model fail to learn as the "
          "parameters will have no update during optimzer. Step()",
    "3E": "optimzer.zero_grad() clears the computed gradient for every parameter in the parameter. This prevents "
          "accumulation of gradients from previous passes and ensures that model trains on relevant/fresh gradients.",
    "3F": "Batch Normalization uses the learned running statistics in model.eval, whereas, it used batch-specific "
          "stats in model.train. Dropout is enabled is mode.train but is automatically disabled in mode.eval()",
    "3G": "mode.eval() should be called before running the model on the test set",
    "5A": "An MLP lacks the ability to extract spatial information from an image. A dog appearing at the bottom of the "
          "image vs the same dog appearing at the top of the image will be learned differently by the MLP. Also, in an "
          "MLP a pixel corresponds to 1 perceptron, which leads to an unmanageable amount of parameters for "
          "large images.",
    "5B": "A CNN would be most effective when trying to detect features from an image such as a person smiling or "
          "frowning etc. Also, positional invariant problems can be solved using a CNN, such as detecting a dog in a "
          "picture no matter where it appears. It would be least effective if the images contain a pattern that "
          "changes with time over the 50 images. Such as temperature rising shown over the 50 images. CNNs struggle "
          "with capturing long-range dependencies across the entire input",
    "5C": "LSTM is well-suited for as task like this. It excels in time series analysis because it can learn and "
          "predict sequential patterns. [...] GRU could also be used, as they are another type of RNNs just like LTSM. "
          "[...] It is not as superior in performance as LTSM but it does not have vanishing gradient problem like "
          "conventional neural networks.",
}


def f4(x: float) -> str:
    return f"{x:.4f}"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def sci(x: float) -> str:
    return f"{x:.1e}"


def num(x: Any) -> str:
    """A float as the report prints it: inf/NaN spelt out, small values in scientific notation."""
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    if isinstance(x, float) and x != 0 and abs(x) < 1e-3:
        return sci(x)
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def unchanged(x: float) -> str:
    """A change that may be exactly zero: "0 (unchanged)" then, else the number."""
    return "0 (unchanged)" if x == 0 else num(x)


def epochs_text(count: int) -> str:
    return f"{count} epoch{'s' if count != 1 else ''}"


def section(anchor: str, title: str, key: str | None = None, blocks: list | None = None, level: int = 3) -> Section:
    question = QUESTIONS.get(key, "") if key else ""
    return Section(anchor, title, question, blocks or [], level)


def student(key: str) -> Quote:
    return Quote(STUDENT[key])


def timing_row(stage: dict) -> list[str]:
    return [stage["title"], f"{stage['wall_seconds']:.1f}", f"{stage['cpu_seconds']:.1f}"]


# ------------------------------------------------------------------------------------------------ header


def header(results: dict) -> list[tuple[str, str]]:
    env, data = results["environment"], results["data"]
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    if "torch" not in env["versions"]:
        versions += " (torch not installed: problem 3 compares with hand formulas where it can)"
    return [
        ("Device", f"`jax.devices()` = `{env['devices']}` (backend {env['backend']}, kind {env['device_kind']}; "
                   f"{env['cpu_cores']} CPU cores available)"),
        ("Versions", f"Python {env['python']}; {versions}"),
        ("Data", f"{results['dataset']} from `{data['source']}`: {data['train_examples']:,} training and "
                 f"{data['test_examples']:,} test images of {'x'.join(map(str, data['image_shape']))} "
                 f"(`--source {results['source_requested']}`)"),
        ("Run", f"`{results['budget']['name']}` budget, seed {results['seed']}, started {results['started']}"),
        ("Total run time", f"{results['wall_seconds']:.0f} s wall clock, {results['cpu_seconds']:.0f} s CPU "
                           "(user + system, all threads)"),
    ]


def overview(results: dict) -> Section:
    stages = results["stages"]
    rows = [timing_row(stage) for stage in stages.values()]
    rows.append(["total", f"{results['wall_seconds']:.1f}", f"{results['cpu_seconds']:.1f}"])
    blocks = [
        Paragraph("Every number below was computed by this run: the models are jaxhw's Flax modules trained by its one "
                  "jitted training loop with optax, the derivatives come from jaxhw's formulas checked against "
                  "`jax.grad` and finite differences, and problem 3's PyTorch concepts are compared with PyTorch "
                  "itself where it is installed. Each question shows the student's answer as written in the homework "
                  "and, where it is wrong or loose, a correction."),
        Table(["stage", "wall seconds", "CPU seconds"], rows, "Time per stage (compilation included)"),
    ]
    if results["budget"]["name"] == "quick":
        blocks.append(Note("This is a `--quick` run: one epoch per model and a reduced sequence benchmark, to check "
                           "that everything runs. The numbers are not the homework's answers; run `python -m jaxhw` "
                           "for those.", "info"))
    return Section("overview", "Overview", "", blocks, 2)


# ------------------------------------------------------------------------------------------------ problem 1


def problem1(results: dict) -> list[Section]:
    lab = results["problem1"]
    a = lab["problem_1a"]
    k = a["true_class"]
    values = a["values"]
    sections = [Section("problem-1", "Problem 1: MNIST classification, cross-entropy and its gradients", "", [
        Paragraph("The homework's classifier `nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), "
                  "nn.Linear(64, 10))` with `nn.CrossEntropyLoss()` is `jaxhw.models.mlp.MLP` with "
                  "`jaxhw.losses.cross_entropy` (on logits); problem 4 below trains it. Problem 1 is computed by "
                  "`jaxhw.experiments.gradients` (`python -m jaxhw.gradients`)."),
    ], 2)]

    blocks = [student("1A"),
              Paragraph(f"The question's data are malformed, and jaxhw says so before computing anything: ŷ has "
                        f"**{a['entries']} entries** for {a['num_classes']} classes and **sums to {a['sum']:.4g}**, "
                        "not 1; the 'one-hot' label (0.0, 0.1, 0.0, 0.0, 0.0) has 5 entries and no 1 in it."),
              Bullets([f"ŷ: {p}" for p in a["vector_problems"]] + [f"label: {p}" for p in a["label_problems"]])]
    blocks.append(Paragraph(
        f"Reading the label as class {k} (the image is a '3', `y = torch.tensor([3])`), CE = −ln ŷ_{k}:"))
    rows = [["ŷ as given (not a distribution)", f"−ln {a['probabilities'][k]:g}", f4(values["as_given"])]]
    if "renormalized" in values:
        rows.append([f"ŷ divided by its sum {a['sum']:.4g}", f"−ln ({a['probabilities'][k]:g} / {a['sum']:.4g}) = "
                     f"−ln {a['renormalized_probabilities'][k]:.4f}", f4(values["renormalized"])])
    blocks.append(Table(["vector", "formula", "cross-entropy"], rows))
    blocks.append(Note(f"The answer is CE = −ln 0.4 = {f4(values['as_given'])} nats only if the vector is taken as "
                       f"printed; it is not a probability vector (its entries sum to {a['sum']:.4g}, not 1.1 as some "
                       f"notes on this homework say, and there is an 11th class). Renormalized it gives "
                       f"{f4(values.get('renormalized', float('nan')))}. The label (0.0, 0.1, 0.0, 0.0, 0.0) is not "
                       "one-hot: for class 3 out of 10 it is (0, 0, 0, 1, 0, 0, 0, 0, 0, 0)."))
    sections.append(section("q1a", "1A. Cross-entropy of the given vector", "1A", blocks))

    t64, t32 = lab["tables"]["float64"], lab["tables"]["float32"]
    p, kk = t64["p_true"], t64["true_class"]
    g = t64["gradients"]
    other = 0 if kk != 0 else 1
    rows = []
    for variable, symbol in (("probabilities", "ŷ"), ("logits", "z")):
        for loss, title in (("cross_entropy", "CE"), ("mse_mean", "MSE (mean over 10)"), ("mse_sum", "MSE (sum)")):
            entry = g[variable][loss]
            rows.append([f"∂{title}/∂{symbol}_k", f4(entry["analytic"][kk]), f4(entry["analytic"][other]),
                         sci(entry["max_disagreement"])])
    sweep = lab["sweep"]
    at = {round(pv, 2): i for i, pv in enumerate(sweep["p_true"])}
    sweep_rows = [[f"{pv:.2f}", num(sweep["dL_dz_true"]["cross_entropy"][at[pv]]),
                   num(sweep["dL_dz_true"]["mse_mean"][at[pv]]), num(sweep["dL_dz_true"]["mse_sum"][at[pv]])]
                  for pv in (0.01, 0.1, 0.5, 0.9, 0.99) if pv in at]
    ce_z, mse_z = g["logits"]["cross_entropy"]["analytic"][kk], g["logits"]["mse_mean"]["analytic"][kk]
    low = at.get(0.01)
    blocks = [
        student("1B"),
        Paragraph(f"ŷ_{kk} = {p:g} for the true class {kk} and the other nine share the rest evenly "
                  f"({(1 - p) / 9:.4f} each); z = ln ŷ are logits with softmax(z) = ŷ. MSE compares ŷ with the one-hot "
                  f"label as `nn.MSELoss` does (mean over the 10 outputs) and as a sum. Each value is computed three "
                  f"ways, jaxhw's analytic formula, `jax.grad` and central finite differences, in float64; they agree "
                  f"to {sci(t64['max_disagreement'])} (float32: {sci(t32['max_disagreement'])})."),
        Table(["gradient", f"k = {kk} (true class)", f"k = {other} (any other)", "max disagreement"], rows),
        Paragraph("The sweep of the true class's probability shows where the two losses really differ:"),
        Table(["ŷ_true", "∂CE/∂z_true", "∂MSE/∂z_true (mean)", "∂MSE/∂z_true (sum)"], sweep_rows),
        Figure("problem1/gradients.png", "|∂L/∂z_true| against ŷ_true for CE and MSE (linear and log scale); the "
                                         f"dotted line marks ŷ_true = {p:g}."),
        Note(f"Right conclusion, loose reasons. At ŷ_{kk} = {p:g}, CE's gradient is the larger: ∂CE/∂ŷ_{kk} = "
             f"−1/{p:g} = {f4(g['probabilities']['cross_entropy']['analytic'][kk])} against ∂MSE/∂ŷ_{kk} = "
             f"{f4(g['probabilities']['mse_mean']['analytic'][kk])}, and on the logits the network actually outputs "
             f"{f4(ce_z)} against {f4(mse_z)} ({abs(ce_z / mse_z):.0f}x). Why that is good: CE is the negative "
             "log-likelihood of the label, its logit gradient is simply ŷ − y, so the push is proportional to the "
             "remaining error and never vanishes while the answer is uncertain. MSE's gradient carries an extra "
             "softmax-derivative factor ŷ(1 − ŷ) that kills it at both ends"
             + (f": when the network is confidently **wrong** (ŷ_true = 0.01) CE still gives "
                f"{f4(sweep['dL_dz_true']['cross_entropy'][low])} while MSE gives "
                f"{f4(sweep['dL_dz_true']['mse_mean'][low])}, so an MSE-trained network learns slowest exactly where "
                "it is most wrong." if low is not None else ".")),
    ]
    sections.append(section("q1b", "1B. Cross-entropy vs MSE gradients", "1B", blocks))

    c = lab["problem_1c"]
    nll, overflow, training = c["log_softmax_nll"], c["overflow"], c["training"]
    runs = training["runs"]
    blocks = [
        student("1C"),
        Paragraph("`nn.CrossEntropyLoss` takes logits: it computes `log_softmax` (as z − logsumexp(z), never forming "
                  "exp(z) on its own) followed by the negative log-likelihood. jaxhw's `cross_entropy` does the same:"),
        Bullets([
            f"On {nll['batch']} random float32 rows: `cross_entropy(z, y)` = {nll['cross_entropy']:.7f}, "
            f"`log_softmax` then NLL = {nll['log_softmax_then_nll']:.7f} (difference {sci(nll['abs_difference'])}; "
            f"float64 reference {nll['float64_reference']:.7f}).",
            f"Float32 logits around 1000, true class {overflow['true_class']}: exp(z)/Σexp(z) then log gives "
            f"**{num(overflow['naive_softmax_then_log'])}** (exp(1000) overflows), `softmax` then log gives "
            f"**{num(overflow['softmax_then_log'])}** (ŷ_true underflows to {overflow['softmax_of_true_class']:g}), "
            f"while `log_softmax` gives {f4(overflow['log_softmax'])} and `cross_entropy` "
            f"{f4(overflow['cross_entropy'])} (exact: {f4(overflow['exact'])}).",
        ]),
        Table(["training loss", "test accuracy per epoch", "final test CE of the logits"],
              [[name.replace("_", " "), ", ".join(f"{h['test_accuracy']:.3f}" for h in history),
                f4(history[-1]["test_loss"])] for name, history in runs.items()],
              f"The homework MLP, Adam({training['lr']:g}), batch {training['batch_size']}, seed {training['seed']}, "
              f"{training['train_examples']:,} embedded MNIST training digits, "
              f"{training['test_examples']:,} test digits"),
        Note("Loose. CrossEntropyLoss does not contain a softmax layer to be fed probabilities; it applies "
             "`log_softmax` to logits and then NLL, which is exact and stable where softmax followed by log is not "
             "(above). An extra `nn.Softmax()` would make the loss apply softmax twice: the network still trains, but "
             f"its gradients are squashed and it learns slower (test accuracy "
             f"{training['test_accuracy']['softmax_then_cross_entropy']:.3f} vs "
             f"{training['test_accuracy']['cross_entropy_on_logits']:.3f} above). Probabilities are still available: "
             "apply `softmax` to the logits when they are needed (jaxhw: "
             "`jaxhw.experiments.classification.predict_probabilities`); the predicted class, the argmax, is the "
             "same either way."),
    ]
    sections.append(section("q1c", "1C. Why no softmax layer before CrossEntropyLoss", "1C", blocks))
    return sections


# ------------------------------------------------------------------------------------------------ problem 2


def problem2(results: dict) -> list[Section]:
    ae = results["problem2"]
    figures = set(ae.get("figures", []))
    intro = Section("problem-2", "Problem 2: the autoencoder", "", [
        Paragraph(f"`jaxhw.experiments.autoencoding.train_autoencoder` (`python -m jaxhw.autoencode`) trains the dense "
                  f"autoencoder 784-128-64-{ae['latent']}-64-128-784 (ReLU, sigmoid output, {ae['parameters']:,} "
                  f"parameters) with MSE and Adam({ae['lr']:g}), batch {ae['batch_size']}, "
                  f"{epochs_text(ae['epochs_run'])}, through the same training loop as every other model."),
    ], 2)
    blanks = [
        ["(a)", "`optimizer.zero_grad()`", "nothing: `jax.value_and_grad` returns fresh gradients every step, "
                                           "nothing accumulates"],
        ["(b)", "`model.train()`", "`train=True`, passed explicitly by `train_step` (evaluation passes `False`)"],
        ["(c)", "`x = images.view(images.size(0), -1)`", "the objective's `prepare`: uint8 → [0, 1] floats, "
                                                         "flattened to (N, 784)"],
        ["(d)", "`loss = loss_fn(x_hat, x)`", "`jaxhw.losses.mse(x_hat, x)`: the target is the input itself"],
        ["(e)", "`loss.backward()`", "`jax.value_and_grad(loss_of)(params)` in `train_step`"],
        ["(f)", "`optimizer.step()`", "`state.apply_gradients(grads)`: `tx.update` + `optax.apply_updates`"],
        ["(g)", "(no blank (g) in the code shown)", "-"],
    ]
    a = section("q2a", "2A. The blanks of the training loop", "2A", [
        student("2A"),
        Table(["blank", "PyTorch", "jaxhw"], blanks),
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


# ------------------------------------------------------------------------------------------------ problem 3


def problem3(results: dict) -> list[Section]:
    c3 = results["problem3"]
    torch_version = c3["torch_version"]
    compared = f"PyTorch {torch_version}" if torch_version else "hand formulas (torch is not installed)"
    intro = Section("problem-3", "Problem 3: PyTorch's training-loop concepts, and their jaxhw counterparts", "", [
        Paragraph(f"The checks of `jaxhw.experiments.concepts`, run now and compared with {compared}. In jaxhw the "
                  "training state is a value (`TrainState`: params, batch_stats, Adam's moments, step, PRNG key) and "
                  "train/eval is an argument, so several of these mistakes cannot happen by accident; "
                  "`jaxhw.training.pitfalls` reproduces them on purpose to measure them."),
    ], 2)
    imports = {entry["question"]: entry for entry in c3["imports"]}
    loader = c3["loader"]

    def found(entry):
        if not entry["module_found"]:
            return f"no module `{entry['module']}` here"
        return "found" if entry.get("name_found") else f"`{entry['module']}` has no `{entry['name']}`"

    data = results["data"]
    a = section("q3a", "3A. Where MNIST lives", "3A", [
        student("3A"),
        Table(["statement", "in this environment"],
              [[f"`{imports[q]['statement']}`", found(imports[q])] for q in ("3A as answered", "3A corrected")]),
        Paragraph(f"jaxhw counterpart: `jaxhw.data.images.load_images(name, split, source)` (and `load_train_test`), "
                  f"which this run used to read {results['dataset']} from `{data['source']}`: uint8 images "
                  f"N x {' x '.join(map(str, data['image_shape']))} and int32 labels; sources: tfds, IDX files, or the "
                  "4,000 + 1,000 MNIST digits embedded in the package."),
        Note("The package is `torchvision` (no s): `from torchvision import datasets`, then `datasets.MNIST(root, "
             "train=True, download=True, transform=transforms.ToTensor())`. torchvision is a separate install from "
             "torch" + (" (and is not installed here, which is why neither line imports)." if not
                        imports["3A corrected"]["module_found"] else ".")),
    ])
    adam = c3["adam"]
    adam_text = (f"{adam['steps']} steps of `optax.adam({adam['lr']:g})` and "
                 f"`torch.optim.Adam(lr={adam['lr']:g})` on the same gradients (scales 1e-3 to 10) end "
                 f"{sci(adam['torch_difference'])} apart"
                 if adam["reference"] == "torch" else
                 f"{adam['steps']} steps of `optax.adam({adam['lr']:g})` match Adam written out by hand in float64 to "
                 f"{sci(adam['hand_difference'])} ({adam.get('note', '')})")
    b = section("q3b", "3B. Where Adam lives", "3B", [
        student("3B"),
        Paragraph(f"`{imports['3B']['statement']}`: {found(imports['3B'])}. jaxhw counterpart: `optax.adam(lr)`, "
                  f"held in `TrainState.tx` with its moments in `TrainState.opt_state`. {adam_text}; the parameters "
                  f"moved {sci(adam['moved'])} in that time (Adam by hand in float64: "
                  f"{sci(adam['hand_difference'])})."),
        Note("Correct.", "ok"),
    ])
    loader_text = (f"`torch.utils.data.DataLoader` makes {loader['torch_batches']} batches, the last of "
                   f"{loader['torch_last_batch']}" if loader["reference"] == "torch" else loader.get("note", ""))
    cc = section("q3c", "3C. Shuffling and batching", "3C", [
        student("3C"),
        Paragraph(f"`{imports['3C']['statement']}`: {found(imports['3C'])}. jaxhw counterparts: "
                  "`jaxhw.data.loader.DataLoader` on the host, and `epoch_indices`, which draws each epoch's "
                  "permutation on the device inside the jitted epoch. With "
                  f"{loader['num_examples']:,} examples and batch size {loader['batch_size']}, jaxhw makes "
                  f"{loader['batches']} batches, the last of {loader['last_batch']} (by hand: ⌈{loader['num_examples']}"
                  f"/{loader['batch_size']}⌉ = {loader['hand_batches']}); {loader_text}; every example appears once "
                  f"per epoch: {loader['every_example_once']}."),
        Note("Correct.", "ok"),
    ])

    swb = c3["step_without_backward"]
    forgotten = c3["forgotten_zero_grad_training"]
    blocks = [student("3D")]
    if swb["reference"] == "torch":
        moved = swb["torch_moved"]
        blocks.append(Table(
            ["what `.grad` holds when `optimizer.step()` runs without `backward()`", "PyTorch: parameters moved by",
             "jaxhw / optax"],
            [["`None`: `zero_grad()` (its default `set_to_none=True` since PyTorch 2.0)", unchanged(moved["grad_none"]),
              "not calling `apply_gradients` (there is no gradient to pass)"],
             ["zeros: `zero_grad(set_to_none=False)`", unchanged(moved["grad_zeros"]),
              f"`apply_gradients(zeros)`: {num(swb['optax_zero_gradients_after_warm_steps_moved'])} "
              f"(equal to PyTorch's within {sci(swb['torch_zeros_minus_optax_zero_gradients'])})"],
             ["the last real gradient: `zero_grad()` forgotten too", unchanged(moved["grad_stale"]),
              "not expressible: gradients are values, not buffers"]],
            f"The homework MLP, Adam(lr={swb['lr']:g}), {swb['warm_steps']} correct steps, then {swb['steps']} steps "
            "without `backward()` (largest change of any parameter)"))
    else:
        blocks.append(Paragraph(
            f"optax, after {swb['warm_steps']} correct Adam steps, {swb['steps']} steps with zero gradients moved the "
            f"parameters by {unchanged(swb['optax_zero_gradients_after_warm_steps_moved'])}; with a fresh "
            f"optimizer, by {unchanged(swb['optax_zero_gradients_fresh_optimizer_moved'])}. ({swb.get('note', '')})"))
    blocks.append(Paragraph(
        f"Over a whole run, a loop whose parameters never move keeps the untrained model's test accuracy, "
        f"{forgotten['untrained_test_accuracy']:.3f} here (the homework MLP at initialisation, seed "
        f"{forgotten['seed']}), instead of the {results['problem4']['mlp']['test_accuracy']:.3f} of problem 4."))
    blocks.append(Note(
        "Mostly right, but loose twice. `backward()` computes the gradient of the loss with respect to every "
        "parameter (every tensor with `requires_grad`), not every input. And \"no update\" is true only when "
        "`.grad` is `None` (then `step()` skips the parameter); with zeroed gradients Adam keeps moving the "
        "parameters by its momentum, and with `zero_grad()` forgotten too the stale gradient is applied again (the "
        "table). In jaxhw, `jax.value_and_grad` is the only source of gradients and `apply_gradients` takes them as an "
        "argument, so a step without gradients cannot be written by accident."))
    d = section("q3d", "3D. A missing loss.backward()", "3D", blocks)

    zg = c3["zero_grad"]
    mlp = results["problem4"]["mlp"]
    blocks = [student("3E"),
              Paragraph(f"PyTorch's `backward()` adds into each parameter's `.grad`. Without `zero_grad()` the "
                        f"optimizer sees the sum of every gradient so far. "
                        f"`jaxhw.training.pitfalls.forgotten_zero_grad` reproduces that in optax; on the homework "
                        f"MLP with SGD(lr={zg['lr']:g}) and batches of {zg['batch_size']} digits, the gradient norm "
                        f"each step applies:")]
    blocks.append(Table(["step"] + [str(i + 1) for i in range(zg["steps"])],
                        [["correct loop"] + [f"{v:.3f}" for v in zg["applied_gradient_norm"]["correct"]],
                         ["`zero_grad()` forgotten"] + [f"{v:.3f}" for v in zg["applied_gradient_norm"]["forgotten"]]]))
    blocks.append(Paragraph(
        (f"PyTorch's loop without `zero_grad()` ends with the same parameters as the optax version to "
         f"{sci(zg['torch_difference'])}; " if zg["reference"] == "torch" else f"({zg.get('note', '')}) ")
        + f"after {zg['steps']} steps they are {sci(zg['parameters_apart_from_correct_loop'])} away from the correct "
          f"loop's. Over {epochs_text(forgotten['epochs'])} with Adam, as problem 4 trains it, the homework MLP "
          f"reaches test accuracy **{forgotten['test_accuracy']:.3f}** with `zero_grad()` forgotten against "
          f"{mlp['test_accuracy']:.3f} with it."))
    blocks.append(Figure("problem3/zero_grad.png", "Test accuracy per epoch: the correct loop (problem 4's MLP), "
                                                   "zero_grad forgotten, backward forgotten"))
    blocks.append(Note("Correct (\"for every parameter in the parameter\" means every parameter of the model). "
                       "In jaxhw there is nothing to zero: `jax.grad` returns a fresh gradient as a value each step. "
                       "Deliberate accumulation over micro-batches is `jaxhw.training.pitfalls.accumulate_gradients` "
                       "(`optax.MultiSteps`).", "ok"))
    e = section("q3e", "3E. optimizer.zero_grad()", "3E", blocks)

    bn, dropout = c3["batchnorm"], c3["dropout"]
    cnn = results["problem4"]["cnn"]
    bn_ref = (f"`torch.nn.BatchNorm2d` agrees to {sci(max(bn['torch_difference'].values()))} (running mean, running "
              "variance, train- and eval-mode outputs)" if bn["reference"] == "torch" else bn.get("note", ""))
    rows = [["BatchNorm, train mode", "normalises with the batch's own mean and variance; updates running mean and "
             f"variance: r ← 0.9 r + 0.1 batch, variance unbiased (after {bn['steps']} steps, "
             f"max |jaxhw − hand formula| = {sci(bn['hand_difference'])}; {bn_ref})"],
            ["BatchNorm, eval mode", "normalises with the running statistics, changes nothing; on a new batch its "
             f"output differs from train mode's by up to {bn['train_minus_eval_output_on_a_new_batch']:.3f}"],
            ["Dropout(p), train mode", f"zeroes each value with probability p and scales the kept ones by 1/(1−p): "
             f"p = {dropout['p']:g}, kept {dropout['train']['kept_fraction']:.4f} of {dropout['n']:,} (expected "
             f"{dropout['expected_kept_fraction']:g} ± {dropout['kept_fraction_std']:.4f}), kept values scaled by "
             f"{dropout['train']['scale_min']:.6f}-{dropout['train']['scale_max']:.6f} (1/(1−p) = "
             f"{dropout['expected_scale']:.6f})"
             + (f"; torch: kept {dropout['torch_train']['kept_fraction']:.4f}, scaled "
                f"{dropout['torch_train']['scale_min']:.6f}-{dropout['torch_train']['scale_max']:.6f}"
                if "torch_train" in dropout else "")],
            ["Dropout, eval mode", f"the identity: largest change {unchanged(dropout['eval_max_change'])}"
             + (f" (torch: {unchanged(dropout['torch_eval_max_change'])})" if "torch_eval_max_change" in dropout
                else "")]]
    f = section("q3f", "3F. Dropout and BatchNorm in train vs eval mode", "3F", [
        student("3F"),
        Table(["layer and mode", "what it does, measured"], rows),
        Paragraph(f"Flax's own `nn.BatchNorm(momentum=0.9)` stores the biased variance: after the same steps its "
                  f"running variance is {bn['flax_minus_torch_running_var']:.4f} off PyTorch's, which is why jaxhw has "
                  "`jaxhw.models.layers.TorchBatchNorm`. jaxhw's models take `train=` as an argument: `train_step` "
                  f"passes True, evaluation False. On problem 4's CNN (Conv-BatchNorm-ReLU blocks, Dropout 0.25) the "
                  f"test accuracy is {cnn['test_accuracy']:.3f} in eval mode and {cnn['test_accuracy_train_mode']:.3f} "
                  "in train mode."),
        Note("Right in substance, loose in wording: `mode.train`/`mode.eval()` should be `model.train()` / "
             "`model.eval()`, and BatchNorm's running statistics are not learned by gradient descent: train mode "
             "updates them as a moving average of the batch statistics (momentum 0.1, unbiased variance). Dropout "
             "also rescales the kept activations by 1/(1−p) in train mode, so eval mode needs no rescaling."),
    ])

    fe = c3["forgotten_eval"]
    # train_classifier scored the test set in train mode in batches of its eval_batch_size.
    rows = [{"batch_size": min(cnn["eval_batch_size"], fe["test_examples"]),
             "train_mode_accuracy": cnn["test_accuracy_train_mode"]},
            *fe["rows"]]
    table_rows = [[str(r["batch_size"]), f"{cnn['test_accuracy']:.3f}", f"{r['train_mode_accuracy']:.3f}"]
                  for r in rows]
    worst = min(rows, key=lambda r: r["train_mode_accuracy"])
    lead = ("costs accuracy at every test batch size tried"
            if all(r["train_mode_accuracy"] < cnn["test_accuracy"] for r in rows) else "changes the results")
    g = section("q3g", "3G. The line before inference", "3G", [
        student("3G"),
        Table(["test batch size", "accuracy, `model.eval()`", "accuracy, eval forgotten"], table_rows,
              f"Problem 4's CNN on the {fe['test_examples']:,} test images, scored in eval mode (the same at every "
              "batch size) and in train mode (dropout on, BatchNorm with each test batch's statistics)"),
        Paragraph(f"Forgetting `model.eval()` {lead}; the worst here is batch size {worst['batch_size']}, where "
                  f"accuracy goes from {cnn['test_accuracy']:.3f} to {worst['train_mode_accuracy']:.3f}. Predictions "
                  "also become random (dropout) and depend on which other images share the batch (BatchNorm). In "
                  "PyTorch, train mode would moreover fold the test batches' statistics into the running statistics; "
                  "jaxhw's evaluation never changes the state."),
        Code("model.eval()              # jaxhw: model.apply(variables, x, train=False)\n"
             "with torch.no_grad():     # jaxhw: eval_step takes no gradient and returns no new state\n"
             "    logits = model(x)"),
        Note("`mode.eval()` is a typo for `model.eval()`, and it is half the answer: inference should also run under "
             "`torch.no_grad()` (or `torch.inference_mode()`), which stops PyTorch from recording the graph; "
             "`model.eval()` alone does not."),
    ])
    return [intro, a, b, cc, d, e, f, g]


# ------------------------------------------------------------------------------------------------ problem 4


def _top_confusions(matrix: list[list[int]], names: list[str], count: int = 3) -> str:
    pairs = sorted(((matrix[i][j], i, j) for i in range(len(matrix)) for j in range(len(matrix)) if i != j),
                   reverse=True)[:count]
    return ", ".join(f"{names[i]} taken for {names[j]} ({n}x)" for n, i, j in pairs if n)


def problem4(results: dict) -> list[Section]:
    p4 = results["problem4"]
    names = {"mlp": "MLP (the homework's, 784-64-10)", "cnn": "CNN (2 conv blocks with BatchNorm, Dropout 0.25)"}
    rows = [[names[m], f"{r['parameters']:,}", str(r["epochs_run"]), f"{r['test_accuracy']:.4f}", f4(r["test_loss"]),
             f"{r['test_accuracy_train_mode']:.4f}", f"{r['first_epoch_seconds']:.1f}",
             f"{r['seconds_per_epoch']:.2f}" if r["epochs_run"] > 1 else "-"]
            for m, r in p4.items()]
    blocks = [
        Paragraph("`jaxhw.experiments.classification.train_classifier` (`python -m jaxhw.classify --model mlp|cnn`) "
                  f"trains both with cross-entropy on logits and Adam({p4['mlp']['lr']:g}), batch "
                  f"{p4['mlp']['batch_size']}, on {p4['mlp']['train_examples']:,} training images, and evaluates on "
                  f"{p4['mlp']['test_examples']:,} test images after every epoch."),
        Table(["model", "parameters", "epochs", "test accuracy", "test loss", "accuracy if eval is forgotten",
               "first epoch s (compiling)", "s per later epoch"], rows),
    ]
    for model in p4:
        blocks.append(Figure(f"problem4/{model}/learning_curves.png", f"{model.upper()}: loss and accuracy per epoch"))
    class_names = p4["cnn"]["evaluation"]["class_names"]
    blocks.append(Table(["class"] + [m.upper() for m in p4],
                        [[name] + [f"{p4[m]['evaluation']['per_class_accuracy'][i]:.3f}" for m in p4]
                         for i, name in enumerate(class_names)], "Test accuracy per class"))
    for model in p4:
        evaluation = p4[model]["evaluation"]
        blocks.append(Figure(f"problem4/{model}_confusion.png",
                             f"{model.upper()}: test confusion matrix. Most frequent confusions: "
                             f"{_top_confusions(evaluation['confusion_matrix'], class_names) or 'none'}"))
        mistakes = evaluation["most_confident_mistakes"]
        if mistakes:
            blocks.append(Figure(f"problem4/{model}_mistakes.png",
                                 f"{model.upper()}: the {len(mistakes)} test images it got wrong with the highest "
                                 f"confidence (from {pct(mistakes[0]['confidence'])} down to "
                                 f"{pct(mistakes[-1]['confidence'])}), with the test index, the true class and "
                                 "the prediction"))
    better = max(p4, key=lambda m: p4[m]["test_accuracy"])
    worse = min(p4, key=lambda m: p4[m]["test_accuracy"])
    blocks.append(Paragraph(
        f"The {better.upper()} is the more accurate ({p4[better]['test_accuracy']:.4f} against "
        f"{p4[worse]['test_accuracy']:.4f}), with {p4[better]['parameters'] / p4[worse]['parameters']:.1f}x the "
        f"parameters and {p4[better]['seconds_per_epoch'] / max(p4[worse]['seconds_per_epoch'], 1e-9):.0f}x the time "
        "per epoch on this machine. The images it gets wrong with near-certainty are the first place to look for "
        "what it has not learned (or for test labels a person would dispute)."))
    return [Section("problem-4", "Problem 4: training and evaluating the classifiers end to end", QUESTIONS["4"],
                    blocks, 2)]


# ------------------------------------------------------------------------------------------------ problem 5




def _claims_for(claims: list[dict], letter: str) -> list[dict]:
    return [c for c in claims if c["claim"].startswith(letter)]


def _claims_table(claims: list[dict]) -> Table:
    return Table(["claim", "numbers (mean test accuracy)", "verdict"],
                 [[c["claim"], ", ".join(f"{k} {v:.3f}" if isinstance(v, (int, float)) else f"{k} -"
                                         for k, v in c["numbers"].items()), f"**{c['verdict']}**"] for c in claims])


def problem5(results: dict) -> list[Section]:
    p5 = results["problem5"]
    config, summary, claims = p5["config"], p5["summary"], p5["claims"]
    models = list(dict.fromkeys(r["model"] for r in summary))
    tasks = list(dict.fromkeys(r["task"] for r in summary))
    cell = {(r["task"], r["model"]): f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}" for r in summary}
    rows = [[t] + [cell.get((t, m), "-") for m in models] for t in tasks]
    sizes = {r["model"]: r["parameters"] for r in summary if r["task"] != "vowels"}
    if sizes:
        rows.append(["parameters (8 features)"] + [f"{sizes[m]:,}" if m in sizes else "-" for m in models])
    seconds = {m: [r["seconds_mean"] for r in summary if r["model"] == m] for m in models}
    rows.append(["training seconds per run"] + [f"{sum(v) / len(v):.1f}" for v in seconds.values()])
    descriptions = p5.get("task_descriptions", {})
    intro_blocks = [
        Paragraph("`jaxhw.experiments.timeseries.compare_sequence_models` (`python -m jaxhw.timeseries`) trains every "
                  "model family on tasks of 50 time steps x 8 features, each built so that one inductive bias decides "
                  f"it, with the same budget for all: Adam({config['lr']:g}), {config['epochs']} epochs, "
                  f"{config['num_train']} training and {config['num_test']} test samples per synthetic task, "
                  f"{len(config['seeds'])} seed(s) ({', '.join(map(str, config['seeds']))})."),
        Bullets([f"`{t}`: {descriptions[t]}" for t in tasks if t in descriptions]),
        Table(["task"] + models, rows, "Test accuracy, mean ± std over seeds"),
        Figure("problem5/results.png", "Test accuracy per task and model (dashed: the 'solved' line)"),
    ]
    if any(c["verdict"] == "not measured" for c in claims):
        intro_blocks.append(Note("Some claims need tasks this run did not train (a `--quick` run trains one task): "
                                 "they are marked 'not measured'.", "info"))
    intro = Section("problem-5", "Problem 5: sequence models for 50 x 8 time series", "", intro_blocks, 2)
    mlp_size = sizes.get("mlp")
    accuracy = {(r["task"], r["model"]): r["accuracy_mean"] for r in summary}
    mlp_good = [f"`{t}` ({accuracy[(t, 'mlp')]:.3f})" for t in tasks if accuracy.get((t, "mlp"), 0) >= SOLVED]

    def measured(*names: str) -> Paragraph:
        return Paragraph("Mean test accuracy in this run: " + "; ".join(
            f"{name.upper()}: " + ", ".join(f"`{t}` {accuracy[(t, name)]:.3f}" for t in tasks if (t, name) in accuracy)
            for name in names if any((t, name) in accuracy for t in tasks)) + ".")

    a = section("q5a", "5A. Why an MLP may be a poor choice", "5A", [
        student("5A"), measured("mlp", "cnn_local"), _claims_table(_claims_for(claims, "A")),
        Note("The answer is about images, but the data are time series: 50 time steps x 8 features. The point carries "
             "over: an MLP flattens the 400 numbers and gives every time step its own weights, so a pattern learned at "
             "one time is not recognised at another (no weight sharing, no notion of order or neighbourhood), and it "
             "needs a fixed sequence length. The parameter argument does not: "
             + (f"the MLP here has {mlp_size:,} parameters, about as many as the others. " if mlp_size else "")
             + (f"And an MLP is not poor everywhere: it reaches {', '.join(mlp_good)}, where the class depends on the "
                "whole sequence rather than on where a pattern sits." if mlp_good else "")),
    ])
    trend = next((c for c in claims if c["claim"].startswith("B, the student's example")), None)
    trend_text = ""
    if trend and trend["verdict"] == "refuted":
        trend_text = (" The student's own example fails here: on `trend` the CNNs reach "
                      + " and ".join(f"{v:.3f}" for v in trend["numbers"].values())
                      + "; a rising trend is a local slope present at every step, which is what a convolution "
                        "detects, not a long-range dependency.")
    elif trend and trend["verdict"] == "supported":
        trend_text = " The student's example holds here: both CNNs stay below the solved line on `trend`."
    b = section("q5b", "5B. When a CNN works best, and worst", "5B", [
        student("5B"), measured("cnn", "cnn_local"), _claims_table(_claims_for(claims, "B")),
        Note("The answer talks about images (smiles, dogs) and about '50 images'; here a 1-D CNN slides its filters "
             "along time. It is most effective when the class is decided by short local patterns that may occur at "
             "any time (weight sharing gives translation invariance); least effective when the class depends on "
             "relations between time steps farther apart than its receptive field (ordering, long-range "
             "dependencies); dilated convolutions or pooling widen that field." + trend_text),
    ])
    recurrent_misses = [f"`{t}` (LSTM {accuracy[(t, 'lstm')]:.3f}, GRU {accuracy[(t, 'gru')]:.3f})" for t in tasks
                        if (t, "lstm") in accuracy and (t, "gru") in accuracy
                        and min(accuracy[(t, "lstm")], accuracy[(t, "gru")]) < SOLVED]
    aside = next((c for c in claims if c["claim"].startswith("C, the student's aside")), None)
    aside_text = ""
    if aside and aside["verdict"] != "not measured":
        lstm_mean, gru_mean = aside["numbers"]["mean/lstm"], aside["numbers"]["mean/gru"]
        aside_text = (f" Here the GRU's mean accuracy over the tasks is {gru_mean:.3f} against the LSTM's "
                      f"{lstm_mean:.3f}" + (", so the aside does not hold." if gru_mean >= lstm_mean else "."))
    c = section("q5c", "5C. Two other model families", "5C", [
        student("5C"), measured("lstm", "gru", "transformer"), _claims_table(_claims_for(claims, "C")),
        Note("LSTM and GRU are reasonable answers: recurrent models read the sequence step by step and carry a state, "
             "so they handle order and variable lengths with few parameters. Loose points: both are recurrent "
             "networks, arguably one family, so a second family is worth naming, e.g. attention-based Transformers "
             "(every time step sees every other, with position encodings) or temporal convolutional networks "
             "(dilated 1-D CNNs); "
             "gating mitigates the vanishing gradient problem, it does not remove it."
             + (" Nor do recurrent models suit every task: they miss " + ", ".join(recurrent_misses) + "."
                if recurrent_misses else "")
             + aside_text),
    ])
    return [intro, a, b, c]


# ------------------------------------------------------------------------------------------------ document


def reproduce(results: dict) -> Section:
    dataset = results["dataset"]
    extra = "" if dataset == "mnist" else f" --dataset {dataset}"
    quick = " --quick" if results["budget"]["name"] == "quick" else ""
    return Section("reproduce", "Reproduce", "", [
        Code(f"pip install -e . && python -m jaxhw{extra}{quick} --seed {results['seed']}\n"
             "python -m jaxhw.gradients --label-as-class 3 --renormalize   # problem 1\n"
             "python -m jaxhw.autoencode                                   # problem 2\n"
             "python -m jaxhw.classify --model cnn                         # problem 4 (and 3G)\n"
             "python -m jaxhw.timeseries                                   # problem 5\n"
             "python -m pytest                                             # the parity tests behind problem 3"),
        Paragraph("Each problem's own files (metrics JSON, figures) are in `problem1/` ... `problem5/` beside this "
                  "report; `report.json` holds every number shown here."),
    ], 2)


def build_document(results: dict) -> Document:
    """The whole report as a Document."""
    banner = ("Quick run (--quick): a smoke test with one epoch per model; the numbers are not the answers."
              if results["budget"]["name"] == "quick" else "")
    sections = [overview(results), *problem1(results), *problem2(results), *problem3(results), *problem4(results),
                *problem5(results), reproduce(results)]
    return Document("HW 3 computed in JAX: jaxhw's report", header(results), sections, banner)
