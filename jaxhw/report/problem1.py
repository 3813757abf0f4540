"""Problem 1 in the report: 1A's cross-entropy, 1B's gradients, 1C's softmax question."""
from __future__ import annotations

from jaxhw.report.document import Bullets, Figure, Note, Paragraph, Section, Table
from jaxhw.report.wording import four_decimals, number, scientific, section, student


def sections(results: dict) -> list[Section]:
    """Problem 1's sections of the report."""
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
    rows = [["ŷ as given (not a distribution)", f"−ln {a['probabilities'][k]:g}", four_decimals(values["as_given"])]]
    if "renormalized" in values:
        rows.append([f"ŷ divided by its sum {a['sum']:.4g}", f"−ln ({a['probabilities'][k]:g} / {a['sum']:.4g}) = "
                     f"−ln {a['renormalized_probabilities'][k]:.4f}", four_decimals(values["renormalized"])])
    blocks.append(Table(["vector", "formula", "cross-entropy"], rows))
    as_given, renormalized = four_decimals(values["as_given"]), four_decimals(values.get("renormalized", float("nan")))
    blocks.append(Note(f"The answer is CE = −ln 0.4 = {as_given} nats only if the vector is taken as "
                       f"printed; it is not a probability vector (its entries sum to {a['sum']:.4g}, not 1.1 as some "
                       f"notes on this homework say, and there is an 11th class). Renormalized it gives "
                       f"{renormalized}. The label (0.0, 0.1, 0.0, 0.0, 0.0) is not "
                       "one-hot: for class 3 out of 10 it is (0, 0, 0, 1, 0, 0, 0, 0, 0, 0)."))
    sections.append(section("q1a", "1A. Cross-entropy of the given vector", "1A", blocks))

    t64, t32 = lab["tables"]["float64"], lab["tables"]["float32"]
    p, true_class = t64["p_true"], t64["true_class"]
    g = t64["gradients"]
    other = 0 if true_class != 0 else 1
    rows = []
    for variable, symbol in (("probabilities", "ŷ"), ("logits", "z")):
        for loss, title in (("cross_entropy", "CE"), ("mse_mean", "MSE (mean over 10)"), ("mse_sum", "MSE (sum)")):
            entry = g[variable][loss]
            rows.append([f"∂{title}/∂{symbol}_k", four_decimals(entry["analytic"][true_class]),
                         four_decimals(entry["analytic"][other]), scientific(entry["max_disagreement"])])
    sweep = lab["sweep"]
    at = {round(pv, 2): i for i, pv in enumerate(sweep["p_true"])}
    sweep_rows = [[f"{pv:.2f}", number(sweep["dL_dz_true"]["cross_entropy"][at[pv]]),
                   number(sweep["dL_dz_true"]["mse_mean"][at[pv]]), number(sweep["dL_dz_true"]["mse_sum"][at[pv]])]
                  for pv in (0.01, 0.1, 0.5, 0.9, 0.99) if pv in at]
    ce_z, mse_z = g["logits"]["cross_entropy"]["analytic"][true_class], g["logits"]["mse_mean"]["analytic"][true_class]
    low = at.get(0.01)
    ce_p = four_decimals(g["probabilities"]["cross_entropy"]["analytic"][true_class])
    mse_p = four_decimals(g["probabilities"]["mse_mean"]["analytic"][true_class])
    blocks = [
        student("1B"),
        Paragraph(f"ŷ_{true_class} = {p:g} for the true class {true_class} and the other nine share the rest evenly "
                  f"({(1 - p) / 9:.4f} each); z = ln ŷ are logits with softmax(z) = ŷ. MSE compares ŷ with the one-hot "
                  f"label as `nn.MSELoss` does (mean over the 10 outputs) and as a sum. Each value is computed three "
                  f"ways, jaxhw's analytic formula, `jax.grad` and central finite differences, in float64; they agree "
                  f"to {scientific(t64['max_disagreement'])} (float32: {scientific(t32['max_disagreement'])})."),
        Table(["gradient", f"k = {true_class} (true class)", f"k = {other} (any other)", "max disagreement"], rows),
        Paragraph("The sweep of the true class's probability shows where the two losses really differ:"),
        Table(["ŷ_true", "∂CE/∂z_true", "∂MSE/∂z_true (mean)", "∂MSE/∂z_true (sum)"], sweep_rows),
        Figure("problem1/gradients.png", "|∂L/∂z_true| against ŷ_true for CE and MSE (linear and log scale); the "
                                         f"dotted line marks ŷ_true = {p:g}."),
        Note(f"Right conclusion, loose reasons. At ŷ_{true_class} = {p:g}, CE's gradient is the larger: "
             f"∂CE/∂ŷ_{true_class} = −1/{p:g} = {ce_p} against ∂MSE/∂ŷ_{true_class} = {mse_p}, and on the logits "
             f"the network actually outputs {four_decimals(ce_z)} against {four_decimals(mse_z)} "
             f"({abs(ce_z / mse_z):.0f}x). Why that is good: CE is the negative "
             "log-likelihood of the label, its logit gradient is simply ŷ − y, so the push is proportional to the "
             "remaining error and never vanishes while the answer is uncertain. MSE's gradient carries an extra "
             "softmax-derivative factor ŷ(1 − ŷ) that kills it at both ends"
             + (f": when the network is confidently **wrong** (ŷ_true = 0.01) CE still gives "
                f"{four_decimals(sweep['dL_dz_true']['cross_entropy'][low])} while MSE gives "
                f"{four_decimals(sweep['dL_dz_true']['mse_mean'][low])}, so an MSE-trained network learns slowest "
                "exactly where it is most wrong." if low is not None else ".")),
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
            f"`log_softmax` then NLL = {nll['log_softmax_then_nll']:.7f} "
            f"(difference {scientific(nll['abs_difference'])}; "
            f"float64 reference {nll['float64_reference']:.7f}).",
            f"Float32 logits around 1000, true class {overflow['true_class']}: exp(z)/Σexp(z) then log gives "
            f"**{number(overflow['naive_softmax_then_log'])}** (exp(1000) overflows), `softmax` then log gives "
            f"**{number(overflow['softmax_then_log'])}** (ŷ_true underflows to {overflow['softmax_of_true_class']:g}), "
            f"while `log_softmax` gives {four_decimals(overflow['log_softmax'])} and `cross_entropy` "
            f"{four_decimals(overflow['cross_entropy'])} (exact: {four_decimals(overflow['exact'])}).",
        ]),
        Table(["training loss", "test accuracy per epoch", "final test CE of the logits"],
              [[name.replace("_", " "), ", ".join(f"{h['test_accuracy']:.3f}" for h in history),
                four_decimals(history[-1]["test_loss"])] for name, history in runs.items()],
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

