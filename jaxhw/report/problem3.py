"""Problem 3 in the report: PyTorch's training-loop concepts (3A-3G), answered in PyTorch first, each measured
against its JAX counterpart; the key and its evidence."""
from __future__ import annotations

from jaxhw.report.document import Code, Figure, Paragraph, Section, Table
from jaxhw.report.wording import (
    ci_field,
    epochs_text,
    evidence_section,
    key_question,
    number,
    over_seeds,
    percent,
    scientific,
    seeds_text,
    unchanged,
    verdict_words,
    with_interval,
)


def _with_torch(check: dict) -> bool:
    return check["reference"] == "torch"


def _costs(fe: dict) -> str:
    costs = [f"{with_interval(row['cost'])} {'with test batches of ' if k == 0 else 'of '}{row['batch_size']}"
             for k, row in enumerate(fe["rows"])]
    return costs[0] if len(costs) == 1 else ", ".join(costs[:-1]) + " and " + costs[-1]


def _batch_effect(fe: dict) -> str:
    """What the seeds say about the batch size's effect on the cost of forgetting eval mode."""
    effect = fe.get("larger_minus_smaller_batch")
    if effect is None:
        return ""
    if effect["verdict"] == "not shown":
        return (f"; the seeds do not separate the batch sizes (train-mode accuracy at {effect['larger']} minus at "
                f"{effect['smaller']}: {with_interval(effect)})")
    better, worse = ((effect["larger"], effect["smaller"]) if effect["verdict"] == "supported"
                     else (effect["smaller"], effect["larger"]))
    return f"; in train mode, batches of {better} score higher than of {worse} (by {with_interval(effect)})"


def key(results: dict) -> list[Section]:
    """Problem 3's questions as the key answers them: the PyTorch a student writes, then its JAX counterpart."""
    c3 = results["problem3"]
    loader, swb = c3["loader"], c3["step_without_backward"]
    zg, forgotten, dropout, fe = (c3["zero_grad"], c3["forgotten_zero_grad_training"], c3["dropout"],
                                  c3["forgotten_eval"])
    a = key_question("q3a", "3A. Where MNIST lives", "3A",
                     "`from torchvision import datasets`, then `datasets.MNIST('data', train=True, download=True, "
                     "transform=transforms.ToTensor())`; torchvision is a package of its own beside torch.", "",
                     "e-q3a", jax="no dataset package of its own; TensorFlow Datasets (`tfds.load('mnist')`) is the "
                                  "usual source.")
    b = key_question("q3b", "3B. Where Adam lives", "3B",
                     "`from torch.optim import Adam`, used as `Adam(model.parameters(), lr=1e-3)`.", "", "e-q3b",
                     jax="`optax.adam(1e-3)`, whose moments are a value carried beside the parameters.")
    c = key_question("q3c", "3C. Shuffling and batching", "3C",
                     "`from torch.utils.data import DataLoader`; `DataLoader(train_set, batch_size=64, shuffle=True)` "
                     "draws a new order every epoch and keeps the last, smaller batch.",
                     f"{loader['num_examples']:,} examples in batches of {loader['batch_size']}: {loader['batches']} "
                     f"batches, the last of {loader['last_batch']}"
                     + (", as PyTorch's DataLoader makes them" if _with_torch(loader) else ""), "e-q3c",
                     jax="no loader class is needed: a permutation per epoch (`jax.random.permutation`) and slices "
                         "of the arrays do the same.")
    untrained = forgotten["untrained_test_accuracy"]
    d = key_question("q3d", "3D. A missing loss.backward()", "3D",
                     "No gradient is computed: every `.grad` stays `None` (as `zero_grad()` leaves it since PyTorch "
                     "2.0), so `optimizer.step()` skips every parameter and the model never changes; the loop runs "
                     "without an error and learns nothing.",
                     (f"without `backward()` PyTorch moved the parameters by "
                      f"{unchanged(swb['torch_moved']['grad_none'])}; " if _with_torch(swb) else "")
                     + f"an MLP that never moves keeps its untrained test accuracy, {with_interval(untrained)}, "
                     f"instead of {ci_field(results['problem4']['mlp'], 'test_accuracy')}", "e-q3d",
                     jax="the gradients are an argument, `state.apply_gradients(grads=jax.grad(loss_fn)(params))`, "
                         "so there is no call to forget.")
    norms = zg["applied_gradient_norm"]["forgotten"]
    cost = forgotten.get("cost")
    e = key_question("q3e", "3E. optimizer.zero_grad() (no question is printed for E)", "3E",
                     "`optimizer.zero_grad()` resets every parameter's `.grad`. `backward()` adds into `.grad`, so "
                     "without it each step applies the sum of all gradients so far instead of the fresh one.",
                     f"with `zero_grad()` forgotten the applied gradient's norm grows from {norms[0]:.3f} to "
                     f"{norms[-1]:.3f} in {len(norms)} SGD steps"
                     + (f"; over {epochs_text(forgotten['epochs'])} of Adam the correct loop is ahead by "
                        f"{with_interval(cost)} test accuracy, paired over the seeds"
                        + verdict_words(cost["verdict"], "forgetting it costs accuracy") if cost else ""), "e-q3e",
                     jax="nothing to zero: `jax.grad` returns a fresh gradient on every call.")
    f = key_question("q3f", "3F. Dropout and BatchNorm in train vs eval mode", "3F",
                     "`model.train()`: Dropout zeroes each activation with probability p and scales the kept ones by "
                     "1/(1−p); BatchNorm normalises with the batch's own mean and variance and updates its running "
                     "averages (r ← 0.9 r + 0.1 · batch). `model.eval()`: Dropout is the identity, and BatchNorm "
                     "normalises with the running averages and leaves them unchanged.",
                     f"Dropout(p = {dropout['p']:g}) kept {percent(dropout['train']['kept_fraction'])} of "
                     f"{dropout['n']:,} values, each scaled by {dropout['train']['scale_min']:.4f} = 1/(1 − p)",
                     "e-q3f", jax="the mode is an argument, `model.apply(variables, x, train=False)`, which sets "
                                  "Flax's `nn.Dropout(deterministic=True)` and "
                                  "`nn.BatchNorm(use_running_average=True)`.")
    g = key_question("q3g", "3G. The line before inference", "3G",
                     "`model.eval()`, usually with inference inside `with torch.no_grad():` (which saves memory and "
                     "time and changes no prediction).",
                     f"forgetting it cost the CNN trained for problem 4 test accuracy: {_costs(fe)} (paired over "
                     "the seeds)"
                     + _batch_effect(fe), "e-q3g", jax="`model.apply(variables, x, train=False)`.")
    intro = Section("problem-3", "Problem 3: PyTorch's training-loop concepts", "", [], 2)
    return [intro, a, b, c, d, e, f, g]


def _e3a_to_c(results: dict) -> list[Section]:
    c3, data = results["problem3"], results["data"]
    adam, loader = c3["adam"], c3["loader"]
    a = evidence_section("e-q3a", "3A", [Paragraph(
        f"jaxhw reads {results['dataset']} with `jaxhw.data.images.load_train_test` (this run: `{data['source']}`, "
        f"uint8 images N x {' x '.join(map(str, data['image_shape']))} and int32 labels), from tfds, IDX files or "
        "the 4,000 + 1,000 MNIST digits embedded in the package.")])
    compared = (f"`torch.optim.Adam(lr={adam['lr']:g})` on the same gradients ends "
                f"{scientific(adam['torch_difference'])} from it and " if _with_torch(adam) else "")
    differences = "both differences are" if _with_torch(adam) else "the difference is"
    b = evidence_section("e-q3b", "3B", [Paragraph(
        f"`optax.adam({adam['lr']:g})` is held in jaxhw's `TrainState.tx`, its moments in `TrainState.opt_state`. "
        f"After {adam['steps']} steps on gradients whose scale grows from 1e-3 to 10, {compared}Adam written out by "
        f"hand in float64 ends {scientific(adam['hand_difference'])} from it; the parameters moved by up to "
        f"{scientific(adam['moved'])} over those steps, so {differences} rounding, not a different rule.")])
    torch_loader = (f"; `torch.utils.data.DataLoader` makes {loader['torch_batches']} batches, the last of "
                    f"{loader['torch_last_batch']}" if _with_torch(loader) else "")
    once = "every example appears exactly once per epoch" if loader["every_example_once"] else \
        "some example does not appear exactly once per epoch"
    c = evidence_section("e-q3c", "3C", [Paragraph(
        "jaxhw's counterparts are `jaxhw.data.loader.DataLoader` on the host and `epoch_indices`, which draws each "
        f"epoch's permutation on the device inside the jitted epoch. With {loader['num_examples']:,} examples and "
        f"batch size {loader['batch_size']} it makes {loader['batches']} batches, the last of {loader['last_batch']} "
        f"(by hand: ⌈{loader['num_examples']}/{loader['batch_size']}⌉ = {loader['hand_batches']}){torch_loader}; "
        f"{once}.")])
    return [a, b, c]


def _e3d(results: dict) -> Section:
    swb = results["problem3"]["step_without_backward"]
    forgotten = results["problem3"]["forgotten_zero_grad_training"]
    blocks = []
    if _with_torch(swb):
        moved = swb["torch_moved"]
        blocks.append(Table(
            ["what `.grad` holds when `optimizer.step()` runs without `backward()`", "PyTorch: parameters moved by",
             "JAX (optax)"],
            [["`None`: after `zero_grad()` (its default since PyTorch 2.0)", unchanged(moved["grad_none"]),
              "no `apply_gradients` call (there is no gradient to pass)"],
             ["zeros: after `zero_grad(set_to_none=False)`", unchanged(moved["grad_zeros"]),
              f"`apply_gradients(zeros)`: {number(swb['optax_zero_gradients_after_warm_steps_moved'])} "
              f"(PyTorch's to {scientific(swb['torch_zeros_minus_optax_zero_gradients'])})"],
             ["the last real gradient: `zero_grad()` forgotten too", unchanged(moved["grad_stale"]),
              "not expressible: gradients are values, not buffers"]],
            f"The homework MLP, Adam(lr={swb['lr']:g}), {swb['warm_steps']} correct steps, then {swb['steps']} steps "
            "without `backward()` (largest change of any parameter)"))
        caveat = ("Besides forgetting `zero_grad()` too (the third row: the last gradient is applied again), the "
                  "exception is the second row: gradients zeroed to tensors rather than to `None` let Adam's momentum "
                  "keep moving the parameters, and only after real steps have filled it.")
    else:
        caveat = (f"The exception: gradients zeroed to tensors rather than to `None` let Adam's momentum keep "
                  f"moving the parameters; in optax, {swb['steps']} steps with zero gradients after "
                  f"{swb['warm_steps']} real ones moved them by "
                  f"{unchanged(swb['optax_zero_gradients_after_warm_steps_moved'])}, and with a fresh optimizer by "
                  f"{unchanged(swb['optax_zero_gradients_fresh_optimizer_moved'])}.")
    blocks.append(Paragraph(
        f"A loop whose parameters never move keeps the untrained model's test accuracy, "
        f"{with_interval(forgotten['untrained_test_accuracy'])} (the homework MLP at initialisation, "
        f"{seeds_text(forgotten['seeds'])}). {caveat} In jaxhw `jax.value_and_grad` is the only source of gradients "
        "and `apply_gradients` takes them as an argument."))
    return evidence_section("e-q3d", "3D", blocks)


def _e3e(results: dict) -> Section:
    zg, forgotten = results["problem3"]["zero_grad"], results["problem3"]["forgotten_zero_grad_training"]
    same = (f"PyTorch's loop without `zero_grad()` ends with the same parameters as the optax version to "
            f"{scientific(zg['torch_difference'])}. " if _with_torch(zg) else "")
    return evidence_section("e-q3e", "3E", [
        Paragraph(f"`jaxhw.training.pitfalls.forgotten_zero_grad` reproduces the mistake in optax. The homework MLP, "
                  f"SGD(lr={zg['lr']:g}), batches of {zg['batch_size']} digits: the norm of the gradient each step "
                  "applies."),
        Table(["step"] + [str(i + 1) for i in range(zg["steps"])],
              [["correct loop"] + [f"{v:.3f}" for v in zg["applied_gradient_norm"]["correct"]],
               ["`zero_grad()` forgotten"] + [f"{v:.3f}" for v in zg["applied_gradient_norm"]["forgotten"]]]),
        Paragraph(f"{same}Over {epochs_text(forgotten['epochs'])} with Adam, as problem 4 trains it "
                  f"({seeds_text(forgotten['seeds'])}), the MLP reaches test accuracy "
                  f"{with_interval(forgotten['test_accuracy'])} with `zero_grad()` forgotten."),
        Figure("problem3/zero_grad.png", "Test accuracy per epoch (mean over the seeds): the correct loop (problem "
                                         "4's MLP), zero_grad forgotten, backward forgotten"),
    ])


def _e3f(results: dict) -> Section:
    bn, dropout = results["problem3"]["batchnorm"], results["problem3"]["dropout"]
    cnn = results["problem4"]["cnn"]
    bn_torch = (f"; `torch.nn.BatchNorm2d` agrees to {scientific(max(bn['torch_difference'].values()))}"
                if _with_torch(bn) else "")
    rows = [["BatchNorm, train mode", "normalises with the batch's own mean and variance; updates the running mean "
             f"and variance: r ← 0.9 r + 0.1 batch, variance unbiased (after {bn['steps']} steps, max |jaxhw − hand "
             f"formula| = {scientific(bn['hand_difference'])}{bn_torch})"],
            ["BatchNorm, eval mode", "normalises with the running statistics and leaves them unchanged; on a new "
             f"batch its output differs from train mode's by up to {bn['train_minus_eval_output_on_a_new_batch']:.3f}"],
            ["Dropout(p), train mode", f"zeroes each value with probability p and scales the kept ones by 1/(1−p): "
             f"p = {dropout['p']:g}, kept {dropout['train']['kept_fraction']:.4f} of {dropout['n']:,} (expected "
             f"{dropout['expected_kept_fraction']:g} ± {dropout['kept_fraction_std']:.4f}), "
             + (f"every kept value scaled by {dropout['train']['scale_min']:.6f}"
                if dropout['train']['scale_min'] == dropout['train']['scale_max'] else
                f"kept values scaled by {dropout['train']['scale_min']:.6f} to {dropout['train']['scale_max']:.6f}")
             + f" (1/(1−p) = {dropout['expected_scale']:.6f})"],
            ["Dropout, eval mode", f"the identity: largest change {unchanged(dropout['eval_max_change'])}"]]
    return evidence_section("e-q3f", "3F", [
        Table(["layer and mode", "what it does, measured"], rows),
        Paragraph(f"Flax's own `nn.BatchNorm(momentum=0.9)` keeps the biased variance: after the same steps its "
                  f"running variance is {bn['flax_minus_torch_running_var']:.4f} off the unbiased one PyTorch keeps "
                  f"({'PyTorch itself and ' if _with_torch(bn) else ''}the hand formula), which is why jaxhw has "
                  "`jaxhw.models.layers.TorchBatchNorm`. The CNN trained for problem 4 scores "
                  f"{ci_field(cnn, 'test_accuracy')} in eval mode and {ci_field(cnn, 'test_accuracy_train_mode')} in "
                  "train mode."),
    ])


def _e3g(results: dict) -> Section:
    fe = results["problem3"]["forgotten_eval"]
    rows = [[str(row["batch_size"]), with_interval(fe["eval_accuracy"]), with_interval(row["train_mode_accuracy"]),
             with_interval(row["cost"]), f"**{row['cost']['verdict']}**"] for row in fe["rows"]]
    return evidence_section("e-q3g", "3G", [
        Table(["test batch size", "accuracy, `model.eval()`", "accuracy, eval forgotten", "cost (paired)",
               "costs accuracy"], rows,
              over_seeds(f"The CNN trained for problem 4, on the {fe['test_examples']:,} test images, "
                         f"{seeds_text(fe['seeds'])}: eval mode (the same at every batch size) against train mode "
                         "(dropout on, BatchNorm with each test batch's statistics), paired over the seeds")),
        Paragraph("In train mode predictions are random (dropout) and depend on which other images share the batch "
                  "(BatchNorm); PyTorch would also fold the test batches' statistics into the running ones, while "
                  "jaxhw's evaluation never changes the state."),
        Code("model.eval()              # JAX: model.apply(variables, x, train=False)\n"
             "with torch.no_grad():     # JAX: evaluation takes no gradient and returns no new state\n"
             "    logits = model(x)"),
    ])


def evidence(results: dict) -> list[Section]:
    """Problem 3's tables, figures and method notes."""
    return [*_e3a_to_c(results), _e3d(results), _e3e(results), _e3f(results), _e3g(results)]
