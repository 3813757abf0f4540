"""Problem 1 in the report: 1A's cross-entropy, 1B's gradients, 1C's softmax question; the key and its evidence."""
from __future__ import annotations

from jaxhw.report.document import Bullets, Figure, Paragraph, Section, Table
from jaxhw.report.wording import (
    epochs_text,
    evidence_section,
    four_decimals,
    key_question,
    minus,
    number,
    over_seeds,
    scientific,
    seeds_text,
    verdict_words,
)
from jaxhw.report.wording import with_interval as interval_text


def _grad(lab: dict, variable: str, loss: str, k: int | None = None) -> float:
    table = lab["tables"]["float64"]
    return table["gradients"][variable][loss]["analytic"][table["true_class"] if k is None else k]


def _finite_or_named(record: dict, key: str):
    """A number of a record, or the name strict JSON gave it ("nan", "inf") where it is not finite."""
    value = record[key]
    return record.get(f"{key}_nonfinite", value) if value is None else value


def _other_class(lab: dict) -> int:
    return 0 if lab["tables"]["float64"]["true_class"] != 0 else 1


def key(results: dict) -> list[Section]:
    """Problem 1's questions as the key answers them."""
    lab = results["problem1"]
    a, c = lab["problem_1a"], lab["problem_1c"]
    k, p = lab["tables"]["float64"]["true_class"], lab["tables"]["float64"]["p_true"]
    extra = a["one_entry_too_many"]
    q1a = key_question(
        "q1a", "1A. Cross-entropy of the given vector", "1A",
        f"CE = −ln ŷ_{k} = −ln {a['probabilities'][k]:g} = **{a['values']['as_given']:.3f} nats**. The printed ŷ is "
        f"malformed ({a['entries']} entries summing to {a['sum']:.3g}), most likely by one 0.05 too many: "
        + (f"removing any one of them leaves a valid 10-class distribution with ŷ_{k} = {a['probabilities'][k]:g}, "
           "so the answer stands." if extra else "no single entry's removal repairs it.")
        + f" The label (0.0, 0.1, 0.0, 0.0, 0.0) is not one-hot either; `y = torch.tensor([{k}])` names class {k}.",
        f"−ln {a['probabilities'][k]:g} = {four_decimals(a['values']['as_given'])}"
        + (f"; dividing ŷ by its sum instead gives −ln({a['probabilities'][k]:g}/{a['sum']:.3g}) = "
           f"{four_decimals(a['values']['renormalized'])}" if "renormalized" in a["values"] else ""), "e-q1a")
    ce_p, mse_p = _grad(lab, "probabilities", "cross_entropy"), _grad(lab, "probabilities", "mse_sum")
    ce_z, mse_z = _grad(lab, "logits", "cross_entropy"), _grad(lab, "logits", "mse_sum")
    sweep = lab["sweep"]
    at = {round(value, 2): i for i, value in enumerate(sweep["p_true"])}
    wrong = at.get(0.01)
    mse_mean_p, mse_mean_z = _grad(lab, "probabilities", "mse_mean"), _grad(lab, "logits", "mse_mean")
    q1b = key_question(
        "q1b", "1B. Cross-entropy vs MSE", "1B",
        "Cross-entropy is the negative log-likelihood of the softmax model, so minimising it fits the class "
        "probabilities by maximum likelihood, and −ln ŷ_true grows without bound as ŷ_true falls to 0; MSE treats the "
        "outputs as independent regression targets. In general ∂CE/∂ŷ_k = −y_k/ŷ_k and ∂MSE/∂ŷ_k = 2(ŷ_k − y_k) "
        f"(summed MSE), so at ŷ_{k} = {p:g} cross-entropy gives the larger gradient: ∂CE/∂ŷ_{k} = "
        f"−1/{p:g} = {minus(ce_p)} against ∂MSE/∂ŷ_{k} = 2({p:g} − 1) = {minus(mse_p)}, and on the logit z_{k} "
        f"∂CE/∂z_{k} = {minus(ce_z)} against ∂MSE/∂z_{k} = {minus(mse_z)}. That is good because ∂CE/∂z = ŷ − y, the "
        "remaining error itself: even when confident it keeps pushing toward the right class, and when the network "
        "is confidently wrong MSE's logit gradient vanishes while CE's stays near −1"
        + (f" (at ŷ_true = 0.01, ∂CE/∂z_true = {minus(sweep['dL_dz_true']['cross_entropy'][wrong])} against "
           f"∂MSE/∂z_true = {minus(sweep['dL_dz_true']['mse_sum'][wrong])}, though with respect to ŷ_true MSE's is "
           f"{minus(sweep['dL_dyhat_true']['mse_sum'][wrong], 2)})." if wrong is not None else "."),
        f"`nn.MSELoss` averages over the 10 outputs, so its gradients are 10 times smaller: ∂MSE/∂ŷ_{k} = "
        f"{minus(mse_mean_p, 4)}, ∂MSE/∂z_{k} = {minus(mse_mean_z, 4)}", "e-q1b")
    low, high = c["double_softmax"]["bounds_formula"]
    gap, training = c["training"]["accuracy_gap"], c["training"]
    q1c = key_question(
        "q1c", "1C. Why no softmax layer before CrossEntropyLoss", "1C",
        "`nn.CrossEntropyLoss` takes raw logits and applies log-softmax itself (it is `LogSoftmax` then `NLLLoss`), "
        f"so an `nn.Softmax()` layer before it applies softmax twice: the loss is then confined to [{low:.3f}, "
        f"{high:.3f}] and its gradient vanishes for confident predictions, right or wrong; log-softmax in one step is "
        "also the numerically stable form (a softmax underflows to 0 for a far-behind class, and −ln 0 is infinite). "
        "The probabilities that add "
        "up to 1 are one call away whenever they are needed, `probs = torch.softmax(model(x), dim=1)`, and the "
        "predicted class, `model(x).argmax(1)`, is the same either way.",
        f"after {epochs_text(training['epochs'])}, {seeds_text(training['seeds'])}, the plain loss is ahead by "
        f"{interval_text(gap)} test accuracy, paired over the seeds (seed by seed, both runs sharing the seed, "
        "then averaged) on the same test images"
        + verdict_words(gap["verdict"], f"the extra softmax is behind after {epochs_text(training['epochs'])}"),
        "e-q1c",
        jax="`optax.softmax_cross_entropy_with_integer_labels(logits, y)` also takes logits; "
            "`jax.nn.softmax(logits)` gives the probabilities.")
    intro = Section("problem-1", "Problem 1: MNIST classification", "", [Paragraph(
        "The model is `nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))` with "
        "`nn.CrossEntropyLoss()`; it is trained under problem 4.")], 2)
    return [intro, q1a, q1b, q1c]


def _e1a(lab: dict) -> Section:
    a = lab["problem_1a"]
    k = a["true_class"]
    label = ", ".join(f"{v:g}" for v in a["label"]) if isinstance(a["label"], list) else str(a["label"])
    one_hot = ", ".join("1" if i == k else "0" for i in range(a["num_classes"]))
    return evidence_section("e-q1a", "1A", [Bullets([
        f"ŷ has {a['entries']} entries for {a['num_classes']} classes and sums to {a['sum']:.3g}: not a probability "
        "vector over the classes.",
        f"The label ({label}) is not one-hot: {len(a['label']) if isinstance(a['label'], list) else 1} entries and "
        f"no 1. `y = torch.tensor([{k}])` names class {k}, whose one-hot vector is ({one_hot}).",
        f"As printed, −ln ŷ_{k} = {four_decimals(a['values']['as_given'])}; dropping any one of the entries "
        f"{', '.join(map(str, a['one_entry_too_many']))} leaves a valid distribution with the same ŷ_{k}."
        if a["one_entry_too_many"] else f"As printed, −ln ŷ_{k} = {four_decimals(a['values']['as_given'])}.",
    ])])


def _e1b(lab: dict) -> Section:
    t64, t32 = lab["tables"]["float64"], lab["tables"]["float32"]
    p, true_class, g = t64["p_true"], t64["true_class"], t64["gradients"]
    other = _other_class(lab)
    rows = [[f"∂{title}/∂{symbol}_k", four_decimals(_grad(lab, variable, loss)),
             four_decimals(_grad(lab, variable, loss, other)), scientific(g[variable][loss]["max_disagreement"])]
            for variable, symbol in (("probabilities", "ŷ"), ("logits", "z"))
            for loss, title in (("cross_entropy", "CE"), ("mse_sum", "MSE (sum over the 10 outputs)"),
                                ("mse_mean", "MSE (mean over the 10, as nn.MSELoss)"))]
    sweep = lab["sweep"]
    at = {round(value, 2): i for i, value in enumerate(sweep["p_true"])}
    sweep_rows = [[f"{value:.2f}", number(sweep["dL_dz_true"]["cross_entropy"][at[value]]),
                   number(sweep["dL_dz_true"]["mse_sum"][at[value]]),
                   number(sweep["dL_dyhat_true"]["cross_entropy"][at[value]]),
                   number(sweep["dL_dyhat_true"]["mse_sum"][at[value]])]
                  for value in (0.01, 0.1, 0.5, 0.9, 0.99) if value in at]
    convex = lab["convexity"]["min_hessian_eigenvalue"]
    worst = min(convex, key=lambda row: row["mse_sum"])
    return evidence_section("e-q1b", "1B", [
        Paragraph(f"ŷ_{true_class} = {p:g} for the true class and {(1 - p) / 9:.4f} for each of the other nine; "
                  "z = ln ŷ are logits with softmax(z) = ŷ. Every value is computed three ways, the analytic formula, "
                  "`jax.grad` and central finite differences, in float64; they agree to "
                  f"{scientific(t64['max_disagreement'])} (float32: {scientific(t32['max_disagreement'])})."),
        Table(["gradient", f"k = {true_class} (true class)", f"k = {other} (any other)", "max disagreement"], rows),
        Paragraph("The mean over the 10 outputs divides every MSE gradient by 10 more; that factor is only the "
                  "reduction (Adam, which divides each step by the gradient's own scale, cancels it). What matters is "
                  "how each gradient changes with ŷ_true:"),
        Table(["ŷ_true", "∂CE/∂z_true", "∂MSE/∂z_true (sum)", "∂CE/∂ŷ_true", "∂MSE/∂ŷ_true (sum)"], sweep_rows),
        Paragraph("CE with softmax is convex in the logits and MSE with softmax is not: the smallest eigenvalue of "
                  "the Hessian in z is 0 for CE at every margin tried (to rounding, "
                  f"{scientific(min(row['cross_entropy'] for row in convex))}: adding a constant to every logit "
                  f"changes nothing) and {worst['mse_sum']:.3f} for summed MSE at margin {worst['margin']:g}."),
        Figure("problem1/gradients.png", "|∂L/∂ŷ_true| and |∂L/∂z_true| against ŷ_true for CE and MSE (summed and "
                                         f"mean; log scale); the dotted line marks ŷ_true = {p:g}."),
    ])


def _e1c(lab: dict) -> Section:
    c = lab["problem_1c"]
    nll, overflow, double, training = c["log_softmax_nll"], c["overflow"], c["double_softmax"], c["training"]
    return evidence_section("e-q1c", "1C", [
        Bullets([
            f"Exact: on {nll['batch']} random float32 rows, cross-entropy on logits = {nll['cross_entropy']:.7f} and "
            f"log-softmax then NLL = {nll['log_softmax_then_nll']:.7f} (difference "
            f"{scientific(nll['abs_difference'])}; float64 reference {nll['float64_reference']:.7f}).",
            f"Stable: with float32 logits around 1000 (true class {overflow['true_class']}), exp(z)/Σexp(z) then log "
            f"gives **{number(_finite_or_named(overflow, 'naive_softmax_then_log'))}** (exp(1000) overflows) and "
            f"softmax then log **{number(_finite_or_named(overflow, 'softmax_then_log'))}** (ŷ_true underflows to "
            f"{overflow['softmax_of_true_class']:g} and −ln 0 is infinite), "
            f"while log-softmax gives {four_decimals(overflow['log_softmax'])} (exact: "
            f"{four_decimals(overflow['exact'])}).",
            "With an extra softmax the loss of 10 classes lies in [−ln(e/(e + 9)), ln(e + 9)] = "
            f"[{double['bounds_formula'][0]:.3f}, {double['bounds_formula'][1]:.3f}]: the inner softmax's outputs lie "
            "in [0, 1], so the outer one sees logits at most 1 apart.",
        ]),
        Table(["margin of the true logit", "ŷ_true", "∂L/∂z_true: CE on logits", "CE after an extra softmax",
               "MSE on ŷ (mean over the 10)"],
              [[f"{row['margin']:+g}", number(row["p_true"]), number(row["dL_dz_true"]["cross_entropy_on_logits"]),
                number(row["dL_dz_true"]["softmax_then_cross_entropy"]),
                number(row["dL_dz_true"]["mse_on_probabilities"])] for row in double["rows"]],
              "The gradient on the true class's logit by jax.grad (float64): the extra softmax's Jacobian makes it "
              "vanish when the network is confidently right and when it is confidently wrong, as MSE's does"),
        Table(["training loss", "test accuracy, mean [95% interval]"],
              [[name.replace("_", " "), interval_text(found)] for name, found in training["test_accuracy"].items()],
              over_seeds(f"The homework MLP, Adam({training['lr']:g}), batch {training['batch_size']}, "
                         f"{epochs_text(training['epochs'])}, {training['train_examples']:,} training and "
                         f"{training['test_examples']:,} test digits, {seeds_text(training['seeds'])}")),
        Paragraph(f"Cross entropy on logits minus softmax then cross entropy, paired over the seeds (seed by seed, "
                  f"both runs sharing the seed's initial weights and batch order): "
                  f"{interval_text(training['accuracy_gap'])} test accuracy, "
                  f"{training['accuracy_gap']['verdict']}. This says where the two stand after "
                  f"{epochs_text(training['epochs'])}, not why, nor where they would end with longer training."),
    ])


def evidence(results: dict) -> list[Section]:
    """Problem 1's tables, figures and method notes."""
    lab = results["problem1"]
    return [_e1a(lab), _e1b(lab), _e1c(lab)]
