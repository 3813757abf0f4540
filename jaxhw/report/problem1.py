"""Problem 1 in the report: 1A's cross-entropy, 1B's gradients, 1C's softmax question."""
from __future__ import annotations

from jaxhw.report.document import Bullets, Figure, Paragraph, Section, Table
from jaxhw.report.wording import four_decimals, number, question, remember, scientific, seeds_text, with_interval


def _q1a(lab: dict) -> Section:
    a = lab["problem_1a"]
    k, values = a["true_class"], a["values"]
    extra = a["one_entry_too_many"]
    repair = (f"removing any one of the entries {', '.join(map(str, extra))} (each {a['probabilities'][extra[0]]:g}) "
              f"leaves a valid 10-class distribution in which ŷ_{k} is still {a['probabilities'][k]:g}"
              if extra else "no single entry's removal repairs it")
    answer = (f"CE = −ln ŷ_{k} = −ln {a['probabilities'][k]:g} = **{four_decimals(values['as_given'])} nats**. The "
              f"printed vector is malformed ({a['entries']} entries for {a['num_classes']} classes, summing to "
              f"{a['sum']:.4g}), most likely by one 0.05 too many: {repair}, so the answer stands.")
    evidence = [
        Bullets([f"ŷ: {p}" for p in a["vector_problems"]] + [f"label: {p}" for p in a["label_problems"]]
                + ["the label (0.0, 0.1, 0.0, 0.0, 0.0) is not one-hot either; `y = torch.tensor([3])` names class 3, "
                   "whose one-hot vector is (0, 0, 0, 1, 0, 0, 0, 0, 0, 0)"]),
    ]
    if "renormalized" in values:
        evidence.append(Paragraph(
            f"A side note: dividing the printed vector by its sum instead gives −ln({a['probabilities'][k]:g} / "
            f"{a['sum']:.4g}) = {four_decimals(values['renormalized'])}; the repair above is the likelier reading, "
            "because it leaves the stated ŷ_3 = 0.4 as it is."))
    return question("q1a", "1A. Cross-entropy of the given vector", "1A", answer, evidence)


def _q1b(lab: dict) -> Section:
    t64, t32 = lab["tables"]["float64"], lab["tables"]["float32"]
    p, true_class = t64["p_true"], t64["true_class"]
    g = t64["gradients"]
    other = 0 if true_class != 0 else 1

    def grad(variable: str, loss: str, k: int = true_class) -> float:
        return g[variable][loss]["analytic"][k]

    rows = [[f"∂{title}/∂{symbol}_k", four_decimals(grad(variable, loss)), four_decimals(grad(variable, loss, other)),
             scientific(g[variable][loss]["max_disagreement"])]
            for variable, symbol in (("probabilities", "ŷ"), ("logits", "z"))
            for loss, title in (("cross_entropy", "CE"), ("mse_sum", "MSE (sum)"), ("mse_mean", "MSE (mean over 10)"))]
    sweep = lab["sweep"]
    at = {round(value, 2): i for i, value in enumerate(sweep["p_true"])}
    shown = [value for value in (0.01, 0.1, 0.5, 0.9, 0.99) if value in at]
    sweep_rows = [[f"{value:.2f}", number(sweep["dL_dz_true"]["cross_entropy"][at[value]]),
                   number(sweep["dL_dz_true"]["mse_sum"][at[value]]),
                   number(sweep["dL_dyhat_true"]["cross_entropy"][at[value]]),
                   number(sweep["dL_dyhat_true"]["mse_sum"][at[value]])] for value in shown]
    ce_z, mse_z = grad("logits", "cross_entropy"), grad("logits", "mse_sum")
    ce_p, mse_p = grad("probabilities", "cross_entropy"), grad("probabilities", "mse_sum")
    answer = (f"At ŷ_{true_class} = {p:g} cross-entropy gives the larger gradient: ∂CE/∂ŷ_{true_class} = −1/{p:g} = "
              f"{four_decimals(ce_p)} against ∂MSE/∂ŷ_{true_class} = 2(ŷ − 1) = {four_decimals(mse_p)} for the "
              f"textbook (summed) MSE, and on the logits the network outputs {four_decimals(ce_z)} against "
              f"{four_decimals(mse_z)} ({abs(ce_z / mse_z):.0f}x). That is good because CE's logit gradient is "
              "ŷ − y: it fades only as fast as the error does, while MSE's fades quadratically near the right answer "
              "and vanishes when the network is confidently wrong, exactly where learning is needed.")
    low, high = at.get(0.01), at.get(0.99)
    fade = ""
    if low is not None and high is not None:
        fade = (f"At ŷ_true = 0.99 CE's logit gradient is {number(sweep['dL_dz_true']['cross_entropy'][high])} "
                f"(linear: 1 − ŷ) and MSE's {number(sweep['dL_dz_true']['mse_sum'][high])} (quadratic); at ŷ_true "
                f"= 0.01, confidently wrong, CE's is still {number(sweep['dL_dz_true']['cross_entropy'][low])} "
                f"while MSE's is {number(sweep['dL_dz_true']['mse_sum'][low])}.")
    convex = lab["convexity"]["min_hessian_eigenvalue"]
    worst = min(convex, key=lambda row: row["mse_sum"])
    evidence = [
        Paragraph(f"ŷ_{true_class} = {p:g} for the true class {true_class} and the other nine share the rest evenly "
                  f"({(1 - p) / 9:.4f} each); z = ln ŷ are logits with softmax(z) = ŷ. Each value is computed three "
                  "ways, jaxhw's analytic formula, `jax.grad` and central finite differences, in float64; they agree "
                  f"to {scientific(t64['max_disagreement'])} (float32: {scientific(t32['max_disagreement'])})."),
        Table(["gradient", f"k = {true_class} (true class)", f"k = {other} (any other)", "max disagreement"], rows),
        Paragraph("`nn.MSELoss` averages over the 10 outputs, which divides every gradient by 10 more: that factor "
                  "is only the reduction, and Adam, which divides each step by the gradient's own scale, cancels a "
                  "constant factor anyway. The comparison that matters is how each gradient changes with ŷ_true:"),
        Table(["ŷ_true", "∂CE/∂z_true", "∂MSE/∂z_true (sum)", "∂CE/∂ŷ_true", "∂MSE/∂ŷ_true (sum)"], sweep_rows),
        Paragraph(fade + f" Cross-entropy with softmax is also convex in the logits and MSE with softmax is not: the "
                  "smallest eigenvalue of the Hessian in z is 0 for CE at every margin tried (to rounding, "
                  f"{scientific(min(row['cross_entropy'] for row in convex))}: adding a constant to every logit "
                  f"changes nothing) and {worst['mse_sum']:.3f} for summed MSE at margin {worst['margin']:g}."),
        Figure("problem1/gradients.png", "|∂L/∂ŷ_true| and |∂L/∂z_true| against ŷ_true for CE and MSE (log scale); "
                                         f"the dotted line marks ŷ_true = {p:g}."),
    ]
    return question("q1b", "1B. Cross-entropy vs MSE gradients", "1B", answer, evidence)


def _q1c(lab: dict) -> Section:
    c = lab["problem_1c"]
    nll, overflow, double, training = c["log_softmax_nll"], c["overflow"], c["double_softmax"], c["training"]
    low, high = double["bounds_formula"]
    gap = training["accuracy_gap"]
    answer = ("Because `nn.CrossEntropyLoss` applies log-softmax to the logits itself (it is LogSoftmax followed by "
              "NLLLoss), a softmax layer in front would apply softmax twice; the model ends in raw logits, and the "
              "probabilities are one `softmax` of them away whenever they are needed (the predicted class, the "
              "argmax, is the same either way).")
    accuracy = training["test_accuracy"]
    evidence = [
        Bullets([
            f"Exact: on {nll['batch']} random float32 rows `cross_entropy(z, y)` = {nll['cross_entropy']:.7f} and "
            f"`log_softmax` then NLL = {nll['log_softmax_then_nll']:.7f} (difference "
            f"{scientific(nll['abs_difference'])}; float64 reference {nll['float64_reference']:.7f}).",
            f"Stable: with float32 logits around 1000 (true class {overflow['true_class']}), exp(z)/Σexp(z) then log "
            f"gives **{number(overflow['naive_softmax_then_log'])}** (exp(1000) overflows) and `softmax` then log "
            f"**{number(overflow['softmax_then_log'])}** (ŷ_true underflows to {overflow['softmax_of_true_class']:g}), "
            f"while `log_softmax` gives {four_decimals(overflow['log_softmax'])} (exact: "
            f"{four_decimals(overflow['exact'])}).",
            f"With an extra softmax the loss of 10 classes can only lie in [−ln(e/(e + 9)), ln(e + 9)] = "
            f"[{low:.3f}, {high:.3f}]: the inner softmax's outputs are in [0, 1], so the outer one sees logits at most "
            f"1 apart (at logits ±60: {double['bounds_at_logit_60'][0]:.3f} and "
            f"{double['bounds_at_logit_60'][1]:.3f}).",
        ]),
        Table(["margin of the true logit", "ŷ_true", "∂L/∂z_true, CE on logits", "CE after an extra softmax",
               "MSE on ŷ"],
              [[f"{row['margin']:+g}", number(row["p_true"]), number(row["dL_dz_true"]["cross_entropy_on_logits"]),
                number(row["dL_dz_true"]["softmax_then_cross_entropy"]),
                number(row["dL_dz_true"]["mse_on_probabilities"])] for row in double["rows"]],
              "The gradient on the true class's logit by jax.grad (float64): the extra softmax's Jacobian makes it "
              "vanish when the network is confidently right and when it is confidently wrong, as MSE's does"),
        Table(["training loss", "test accuracy, mean [95% interval]"],
              [[name.replace("_", " "), with_interval(found)] for name, found in accuracy.items()],
              f"The homework MLP, Adam({training['lr']:g}), batch {training['batch_size']}, "
              f"{training['epochs']} epoch(s), {training['train_examples']:,} embedded MNIST training digits, "
              f"{training['test_examples']:,} test digits, {seeds_text(training['seeds'])}"),
        Paragraph(f"Paired over the same seeds, the plain loss is ahead by {with_interval(gap)} test accuracy: "
                  f"**{gap['verdict']}** that the extra softmax learns slower in this budget."),
    ]
    return question("q1c", "1C. Why no softmax layer before CrossEntropyLoss", "1C", answer, evidence)


def sections(results: dict) -> list[Section]:
    """Problem 1's sections of the report."""
    lab = results["problem1"]
    g = lab["tables"]["float64"]["gradients"]
    true_class = lab["tables"]["float64"]["true_class"]
    gap = lab["problem_1c"]["training"]["accuracy_gap"]
    low, high = lab["problem_1c"]["double_softmax"]["bounds_formula"]
    intro = Section("problem-1", "Problem 1: MNIST classification, cross-entropy and its gradients", "", [
        Paragraph("The homework's classifier `nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), "
                  "nn.Linear(64, 10))` with `nn.CrossEntropyLoss()` is `jaxhw.models.mlp.MLP` with "
                  "`jaxhw.losses.cross_entropy` (on logits); problem 4 below trains it. Problem 1 is computed by "
                  "`jaxhw.experiments.gradients` and `jaxhw.experiments.extra_softmax` (`python -m jaxhw.gradients`)."),
    ], 2)
    bullets = [
        f"Cross-entropy of a class is −ln of its predicted probability: −ln 0.4 = "
        f"{lab['problem_1a']['values']['as_given']:.3f} nats for 1A.",
        f"On the logits CE's gradient is ŷ − y ({g['logits']['cross_entropy']['analytic'][true_class]:.2f} at "
        f"ŷ = 0.9); summed MSE's is {g['logits']['mse_sum']['analytic'][true_class]:.2f} there and vanishes when the "
        "network is confidently wrong.",
        f"Never a softmax before CrossEntropyLoss: it bounds the loss to [{low:.3f}, {high:.3f}] and kills the "
        f"gradient at both ends (test accuracy gap over seeds {with_interval(gap)}).",
    ]
    return [intro, _q1a(lab), _q1b(lab), _q1c(lab), remember("remember-1", bullets)]
