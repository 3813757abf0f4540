"""Problem 1's results as the text ``python -m jaxhw.gradients`` prints: the 1A verdict, the 1B gradient tables
(analytic, jax.grad, finite differences), the sweep, and the 1C evidence."""
from __future__ import annotations

import numpy as np

from jaxhw.experiments.extra_softmax import OVERFLOW_OFFSETS
from jaxhw.experiments.gradients import LOSS_TITLES, LOSSES, NUM_CLASSES, VARIABLES


def problem_1a_text(a: dict) -> list[str]:
    """The lines the CLI prints for problem_1a's result."""
    lines = ["Problem 1A: cross-entropy of the predicted vector",
             f"  y_hat = {a['probabilities']} ({a['entries']} entries, sum {a['sum']:.6g}); label {a['label']}"]
    if a["vector_problems"]:
        lines.append(f"  y_hat is not a probability vector over {a['num_classes']} classes:")
        lines += [f"    - {p}" for p in a["vector_problems"]]
    if a["label_problems"]:
        lines.append(f"  the label {tuple(a['label']) if isinstance(a['label'], list) else a['label']} "
                     "is not a valid label:")
        lines += [f"    - {p}" for p in a["label_problems"]]
    if "hint" in a:
        lines.append(f"  {a['hint']}")
        return lines
    k = a["true_class"]
    values = a["values"]
    if "cross_entropy" in values:
        lines.append(f"  CE = -ln y_hat_{k} = -ln {a['probabilities'][k]:g} = {values['cross_entropy']:.4f}")
        return lines
    if a["label_as_class"] is not None:
        lines.append(f"  label read as class {k} (--label-as-class {k})")
    lines.append(f"  as given:     -ln y_hat_{k} = -ln {a['probabilities'][k]:g} = {values['as_given']:.4f}"
                 f"  (the formula only: y_hat is not a probability vector over {a['num_classes']} classes)")
    if "renormalized" in values:
        lines.append(f"  renormalized: -ln (y_hat_{k} / {a['sum']:.6g}) = -ln {a['renormalized_probabilities'][k]:.6g}"
                     f" = {values['renormalized']:.4f}")
        lines += [f"    still wrong after renormalizing: {p}" for p in a["problems_after_renormalizing"]]
    else:
        lines.append("  (add --renormalize to divide y_hat by its sum first)")
    return lines


def _format_table(table: dict, variable: str) -> list[str]:
    symbol = "y_hat_k" if variable == "probabilities" else "z_k"
    ways = ("analytic", "jax_grad", "finite_differences")
    short = {"analytic": "analytic", "jax_grad": "jax.grad", "finite_differences": "fin.diff"}
    width = 10
    group = len(ways) * width
    head1 = "  k  " + "".join(f"{('dL/d' + symbol + ', ' + LOSS_TITLES[loss])[:group - 2]:<{group}}" for loss in LOSSES)
    head2 = "     " + "".join(f"{short[w]:>{width}}" for _ in LOSSES for w in ways)
    lines = [head1, head2]
    gradients = table["gradients"][variable]
    for k in range(NUM_CLASSES):
        mark = "*" if k == table["true_class"] else " "
        lines.append(f"{mark} {k:<3}" + "".join(f"{gradients[loss][w][k]:>{width}.6f}" for loss in LOSSES
                                                for w in ways))
    lines.append("  max disagreement: " + ", ".join(f"{LOSS_TITLES[loss]} {gradients[loss]['max_disagreement']:.1e}"
                                                    for loss in LOSSES))
    return lines


def report_text(result: dict) -> str:
    """The lab's results as the text the CLI prints."""
    t64, t32 = result["tables"]["float64"], result["tables"]["float32"]
    k, p = t64["true_class"], t64["p_true"]
    lines = problem_1a_text(result["problem_1a"]) + [""]
    lines.append(f"Problem 1B: gradients for true class {k} with y_hat_{k} = {p:g} and the rest "
                 f"{(1 - p) / (NUM_CLASSES - 1):.6g} each; z = ln y_hat (softmax(z) = y_hat); "
                 "MSE against the one-hot label")
    lines.append("Values in float64 (jax.enable_x64); * marks the true class.")
    for variable in VARIABLES:
        lines.append("")
        lines.append(f"With respect to the {'probabilities y_hat' if variable == 'probabilities' else 'logits z'}:")
        lines += _format_table(t64, variable)
    lines.append("")
    lines.append("Largest difference between analytic, jax.grad and central finite differences: "
                 f"float64 {t64['max_disagreement']:.1e}, float32 {t32['max_disagreement']:.1e}")
    lines.append(f"  (finite-difference step eps^(1/3) = {t64['finite_difference_step']:.1e} in float64, "
                 f"{t32['finite_difference_step']:.1e} in float32, times max(|y_hat_k|, 0.001) or max(|z_k|, 1))")
    g = t64["gradients"]
    lines.append(f"At y_hat_{k} = {p:g}: dCE/dy_hat_{k} = {g['probabilities']['cross_entropy']['analytic'][k]:.4f} vs "
                 f"dMSE/dy_hat_{k} = {g['probabilities']['mse_mean']['analytic'][k]:.4f} (mean) / "
                 f"{g['probabilities']['mse_sum']['analytic'][k]:.4f} (sum);")
    indent = " " * len(f"At y_hat_{k} = {p:g}: ")
    lines.append(f"{indent}dCE/dz_{k} = {g['logits']['cross_entropy']['analytic'][k]:.4f} vs "
                 f"dMSE/dz_{k} = {g['logits']['mse_mean']['analytic'][k]:.4f} (mean) / "
                 f"{g['logits']['mse_sum']['analytic'][k]:.4f} (sum)")
    sweep = result["sweep"]
    lines.append("")
    lines.append(f"Sweep of y_hat_{k} (float64; analytic, jax.grad and finite differences agree to "
                 f"{max(sweep['max_disagreement'].values()):.1e}): dL/dz_{k}")
    lines.append(f"  {'p_true':>7}" + "".join(f"{LOSS_TITLES[loss]:>32}" for loss in LOSSES))
    for p_show in (0.01, 0.1, 0.5, 0.9, 0.99):
        i = int(np.argmin(np.abs(np.asarray(sweep["p_true"]) - p_show)))
        lines.append(f"  {sweep['p_true'][i]:>7.2f}" + "".join(f"{sweep['dL_dz_true'][loss][i]:>32.6f}"
                                                              for loss in LOSSES))
    lines.append("  Confidently wrong (p_true -> 0): CE's gradient tends to -1, MSE's to 0 (it vanishes).")
    c = result["problem_1c"]
    a, b, train = c["log_softmax_nll"], c["overflow"], c["training"]
    lines.append("")
    lines.append("Problem 1C: why no nn.Softmax() before nn.CrossEntropyLoss()")
    lines.append(f"  (a) CE on logits = log_softmax then NLL, on {a['batch']} random float32 rows: "
                 f"{a['cross_entropy']:.7f} vs {a['log_softmax_then_nll']:.7f}, difference {a['abs_difference']:.1e}")
    lines.append(f"      (float64 mean of logsumexp(z) - z_y: {a['float64_reference']:.7f})")
    lines.append(f"  (b) float32 logits 1000 + {list(OVERFLOW_OFFSETS)}, true class {b['true_class']}, "
                 f"-ln p_{b['true_class']} by:")
    lines.append(f"      exp(z)/sum exp(z), then log -> {b['naive_softmax_then_log']} (exp(1000) overflows: inf/inf)")
    lines.append(f"      softmax, then log           -> {b['softmax_then_log']} (p_{b['true_class']} underflows to "
                 f"{b['softmax_of_true_class']:g})")
    lines.append(f"      log_softmax                 -> {b['log_softmax']:.4f}; cross_entropy -> "
                 f"{b['cross_entropy']:.4f}; exact {b['exact']:.4f}")
    double = c["double_softmax"]
    low, high = double["bounds_formula"]
    lines.append(f"  (c) with an extra softmax the loss of 10 classes lies in [ln(e+9) - 1, ln(e+9)] = [{low:.3f}, "
                 f"{high:.3f}]; dL/dz_true by jax.grad at logit margins:")
    lines.append(f"      {'margin':>7}{'CE on logits':>16}{'CE after softmax':>20}{'MSE on y_hat':>16}")
    for row in double["rows"]:
        grads = row["dL_dz_true"]
        lines.append(f"      {row['margin']:>+7g}{grads['cross_entropy_on_logits']:>16.3e}"
                     f"{grads['softmax_then_cross_entropy']:>20.3e}{grads['mse_on_probabilities']:>16.3e}")
    lines.append(f"  (d) homework MLP, Adam({train['lr']:g}), batch {train['batch_size']}, {train['epochs']} epoch(s), "
                 f"seeds {train['seeds']}, {train['train_examples']} embedded MNIST training digits, test on "
                 f"{train['test_examples']}: test accuracy, mean [95% interval]")
    for name, found in train["test_accuracy"].items():
        interval = f" [{found['low']:.3f}, {found['high']:.3f}]" if found["low"] is not None else ""
        lines.append(f"      {name:<28} {found['mean']:.3f}{interval}")
    gap = train["accuracy_gap"]
    interval = f" [{gap['low']:.3f}, {gap['high']:.3f}]" if gap["low"] is not None else ""
    lines.append(f"      paired difference {gap['mean']:+.3f}{interval}: {gap['verdict']} that the extra softmax "
                 f"is behind after {train['epochs']} epoch(s)")
    return "\n".join(lines)
