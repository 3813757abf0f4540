"""Problem 3 in the report: PyTorch's training-loop concepts (3A-3G) measured against their jaxhw counterparts."""
from __future__ import annotations

from jaxhw.report.document import Code, Figure, Paragraph, Section, Table
from jaxhw.report.wording import (
    ci_field,
    epochs_text,
    number,
    question,
    remember,
    scientific,
    seeds_text,
    unchanged,
    with_interval,
)


def _reference(check: dict, torch_text: str, hand_text: str) -> str:
    """What a check was compared with in this run: PyTorch, or a hand formula (the header says why)."""
    return torch_text if check["reference"] == "torch" else hand_text


def _q3a_to_c(results: dict) -> list[Section]:
    c3, data = results["problem3"], results["data"]
    adam, loader = c3["adam"], c3["loader"]
    a = question("q3a", "3A. Where MNIST lives", "3A",
                 "In torchvision: `from torchvision import datasets`, then `datasets.MNIST(root, train=True, "
                 "download=True, transform=transforms.ToTensor())`; torchvision is a package of its own beside "
                 "torch.", [
                     Paragraph(f"jaxhw's counterpart is `jaxhw.data.images.load_images(name, split, source)` (and "
                               f"`load_train_test`), which this run used to read {results['dataset']} from "
                               f"`{data['source']}`: uint8 images N x {' x '.join(map(str, data['image_shape']))} and "
                               "int32 labels, from tfds, IDX files, or the 4,000 + 1,000 MNIST digits embedded in "
                               "the package."),
                 ])
    compared = _reference(adam, f"`torch.optim.Adam(lr={adam['lr']:g})` on the same gradients ends "
                                f"{scientific(adam.get('torch_difference', 0.0))} from it",
                          "PyTorch was not installed to compare with")
    b = question("q3b", "3B. Where Adam lives", "3B", "`from torch.optim import Adam`.", [
        Paragraph(f"jaxhw's counterpart is `optax.adam(lr)`, held in `TrainState.tx` with its moments in "
                  f"`TrainState.opt_state`. After {adam['steps']} steps of `optax.adam({adam['lr']:g})` on gradients "
                  f"whose scale grows from 1e-3 to 10, {compared}, and Adam written out by hand in float64 ends "
                  f"{scientific(adam['hand_difference'])} from it; over those steps the parameters moved by up to "
                  f"{scientific(adam['moved'])}, so both differences are rounding, not a different rule."),
    ])
    torch_loader = _reference(loader, f"`torch.utils.data.DataLoader` makes {loader.get('torch_batches')} batches, "
                                      f"the last of {loader.get('torch_last_batch')}", "PyTorch was not installed")
    c = question("q3c", "3C. Shuffling and batching", "3C", "`from torch.utils.data import DataLoader`.", [
        Paragraph("jaxhw's counterparts are `jaxhw.data.loader.DataLoader` on the host, and `epoch_indices`, which "
                  "draws each epoch's permutation on the device inside the jitted epoch. With "
                  f"{loader['num_examples']:,} examples and batch size {loader['batch_size']}, jaxhw makes "
                  f"{loader['batches']} batches, the last of {loader['last_batch']} (by hand: "
                  f"⌈{loader['num_examples']}/{loader['batch_size']}⌉ = {loader['hand_batches']}); {torch_loader}; "
                  f"every example appears once per epoch: {loader['every_example_once']}."),
    ])
    return [a, b, c]


def _q3d(results: dict) -> Section:
    swb = results["problem3"]["step_without_backward"]
    forgotten = results["problem3"]["forgotten_zero_grad_training"]
    evidence = []
    if swb["reference"] == "torch":
        moved = swb["torch_moved"]
        evidence.append(Table(
            ["what `.grad` holds when `optimizer.step()` runs without `backward()`", "PyTorch: parameters moved by",
             "jaxhw / optax"],
            [["`None`: after `zero_grad()` (its default since PyTorch 2.0)", unchanged(moved["grad_none"]),
              "not calling `apply_gradients` (there is no gradient to pass)"],
             ["zeros: after `zero_grad(set_to_none=False)`", unchanged(moved["grad_zeros"]),
              f"`apply_gradients(zeros)`: {number(swb['optax_zero_gradients_after_warm_steps_moved'])} "
              f"(PyTorch's to {scientific(swb['torch_zeros_minus_optax_zero_gradients'])})"],
             ["the last real gradient: `zero_grad()` forgotten too", unchanged(moved["grad_stale"]),
              "not expressible: gradients are values, not buffers"]],
            f"The homework MLP, Adam(lr={swb['lr']:g}), {swb['warm_steps']} correct steps, then {swb['steps']} steps "
            "without `backward()` (largest change of any parameter)"))
    else:
        evidence.append(Paragraph(
            f"In optax, after {swb['warm_steps']} correct Adam steps, {swb['steps']} steps with zero gradients moved "
            f"the parameters by {unchanged(swb['optax_zero_gradients_after_warm_steps_moved'])}; with a fresh "
            f"optimizer, by {unchanged(swb['optax_zero_gradients_fresh_optimizer_moved'])}."))
    evidence.append(Paragraph(
        f"A loop whose parameters never move keeps the untrained model's test accuracy, "
        f"{with_interval(forgotten['untrained_test_accuracy'])} here (the homework MLP at initialisation, "
        f"{seeds_text(forgotten['seeds'])}), instead of the {ci_field(results['problem4']['mlp'], 'test_accuracy')} of "
        "problem 4. Only gradients zeroed to tensors rather than to None let Adam's momentum keep moving the "
        "parameters (the table's second row), and only after real steps have filled it. In jaxhw, "
        "`jax.value_and_grad` is the only source of gradients and `apply_gradients` takes them as an argument, so "
        "a step without gradients cannot be written by accident."))
    return question("q3d", "3D. A missing loss.backward()", "3D",
                    "No gradient is computed: every `.grad` stays `None`, so `optimizer.step()` skips every parameter "
                    "and the model never changes; the loop runs and learns nothing.", evidence)


def _q3e(results: dict) -> Section:
    zg, forgotten = results["problem3"]["zero_grad"], results["problem3"]["forgotten_zero_grad_training"]
    cost = forgotten.get("cost")
    evidence = [
        Paragraph(f"`jaxhw.training.pitfalls.forgotten_zero_grad` reproduces the mistake in optax. On the homework MLP "
                  f"with SGD(lr={zg['lr']:g}) and batches of {zg['batch_size']} digits, the gradient norm each step "
                  "applies:"),
        Table(["step"] + [str(i + 1) for i in range(zg["steps"])],
              [["correct loop"] + [f"{v:.3f}" for v in zg["applied_gradient_norm"]["correct"]],
               ["`zero_grad()` forgotten"] + [f"{v:.3f}" for v in zg["applied_gradient_norm"]["forgotten"]]]),
        Paragraph(_reference(zg, "PyTorch's loop without `zero_grad()` ends with the same parameters as the optax "
                                 f"version to {scientific(zg.get('torch_difference', 0.0))}. ", "")
                  + f"Over {epochs_text(forgotten['epochs'])} with Adam, as problem 4 trains it "
                  f"({seeds_text(forgotten['seeds'])}), the MLP reaches test accuracy "
                  f"{with_interval(forgotten['test_accuracy'])} with `zero_grad()` forgotten"
                  + (f"; paired with problem 4's correct loop on the same seeds it loses {with_interval(cost)} "
                     f"(**{cost['verdict']}** that forgetting it costs accuracy)." if cost else ".")),
        Figure("problem3/zero_grad.png", "Test accuracy per epoch (mean over the seeds): the correct loop (problem "
                                         "4's MLP), zero_grad forgotten, backward forgotten"),
    ]
    return question("q3e", "3E. optimizer.zero_grad()", "3E",
                    "`optimizer.zero_grad()` resets every parameter's `.grad`. `backward()` adds into `.grad`, so "
                    "without it each step applies the sum of all gradients so far instead of the fresh one. In "
                    "jaxhw there is nothing to zero: `jax.grad` returns a fresh gradient as a value each step.",
                    evidence)


def _q3f(results: dict) -> Section:
    bn, dropout = results["problem3"]["batchnorm"], results["problem3"]["dropout"]
    cnn = results["problem4"]["cnn"]
    bn_torch = _reference(bn, f"; `torch.nn.BatchNorm2d` agrees to "
                              f"{scientific(max(bn.get('torch_difference', {0: 0.0}).values()))}", "")
    rows = [["BatchNorm, train mode", "normalises with the batch's own mean and variance; updates the running mean "
             f"and variance: r ← 0.9 r + 0.1 batch, variance unbiased (after {bn['steps']} steps, max |jaxhw − hand "
             f"formula| = {scientific(bn['hand_difference'])}{bn_torch})"],
            ["BatchNorm, eval mode", "normalises with the running statistics and changes nothing; on a new batch its "
             f"output differs from train mode's by up to {bn['train_minus_eval_output_on_a_new_batch']:.3f}"],
            ["Dropout(p), train mode", f"zeroes each value with probability p and scales the kept ones by 1/(1−p): "
             f"p = {dropout['p']:g}, kept {dropout['train']['kept_fraction']:.4f} of {dropout['n']:,} (expected "
             f"{dropout['expected_kept_fraction']:g} ± {dropout['kept_fraction_std']:.4f}), kept values scaled by "
             f"{dropout['train']['scale_min']:.6f}-{dropout['train']['scale_max']:.6f} (1/(1−p) = "
             f"{dropout['expected_scale']:.6f})"],
            ["Dropout, eval mode", f"the identity: largest change {unchanged(dropout['eval_max_change'])}"]]
    return question("q3f", "3F. Dropout and BatchNorm in train vs eval mode", "3F",
                    "In train mode Dropout zeroes each activation with probability p and scales the others by "
                    "1/(1−p), and BatchNorm normalises with the batch's own statistics while updating its running "
                    "averages; in eval mode Dropout is the identity and BatchNorm uses the running averages and "
                    "changes nothing.", [
                        Table(["layer and mode", "what it does, measured"], rows),
                        Paragraph(f"Flax's own `nn.BatchNorm(momentum=0.9)` stores the biased variance: after the "
                                  f"same steps its running variance is {bn['flax_minus_torch_running_var']:.4f} off "
                                  "PyTorch's, which is why jaxhw has `jaxhw.models.layers.TorchBatchNorm`. jaxhw's "
                                  "models take `train=` as an argument: `train_step` passes True, evaluation False. "
                                  f"Problem 4's CNN scores {ci_field(cnn, 'test_accuracy')} in eval mode and "
                                  f"{ci_field(cnn, 'test_accuracy_train_mode')} in train mode."),
                    ])


def _q3g(results: dict) -> Section:
    fe = results["problem3"]["forgotten_eval"]
    rows = [[str(row["batch_size"]), with_interval(fe["eval_accuracy"]), with_interval(row["train_mode_accuracy"]),
             with_interval(row["cost"]), f"**{row['cost']['verdict']}**"] for row in fe["rows"]]
    worst = max(fe["rows"], key=lambda row: row["cost"]["mean"])
    return question("q3g", "3G. The line before inference", "3G", "`model.eval()` (jaxhw: `train=False`).", [
        Table(["test batch size", "accuracy, `model.eval()`", "accuracy, eval forgotten", "cost (paired)",
               "costs accuracy"], rows,
              f"Problem 4's CNN on the {fe['test_examples']:,} test images, {seeds_text(fe['seeds'])}: eval mode (the "
              "same at every batch size) against train mode (dropout on, BatchNorm with each test batch's "
              "statistics), paired over the seeds"),
        Paragraph(f"The largest cost here is at batch size {worst['batch_size']}: {with_interval(worst['cost'])}. In "
                  "train mode predictions are random (dropout) and depend on which other images share the batch "
                  "(BatchNorm); PyTorch would also fold the test batches' statistics into the running ones, while "
                  "jaxhw's evaluation never changes the state. `torch.no_grad()` is a useful companion that saves "
                  "memory and time by not recording the graph; it changes no prediction."),
        Code("model.eval()              # jaxhw: model.apply(variables, x, train=False)\n"
             "with torch.no_grad():     # jaxhw: eval_step takes no gradient and returns no new state\n"
             "    logits = model(x)"),
    ])


def sections(results: dict) -> list[Section]:
    """Problem 3's sections of the report."""
    c3 = results["problem3"]
    intro = Section("problem-3", "Problem 3: PyTorch's training-loop concepts, and their jaxhw counterparts", "", [
        Paragraph("The checks of `jaxhw.experiments.concepts`, run now. In jaxhw the training state is a value "
                  "(`TrainState`: params, batch_stats, Adam's moments, step, PRNG key) and train/eval is an argument, "
                  "so several of these mistakes cannot happen by accident; `jaxhw.training.pitfalls` reproduces them "
                  "on purpose to measure them."),
    ], 2)
    fe = c3["forgotten_eval"]
    worst = max(fe["rows"], key=lambda row: row["cost"]["mean"])
    bullets = [
        "Every PyTorch name has one jaxhw counterpart: `optax.adam` for `torch.optim.Adam`, `jax.value_and_grad` for "
        "`backward()`, the `train=` argument for `model.train()`/`model.eval()`.",
        f"Forgetting `zero_grad()` applies the sum of all past gradients; forgetting `backward()` trains nothing "
        f"(test accuracy stays at {with_interval(c3['forgotten_zero_grad_training']['untrained_test_accuracy'])}).",
        f"Forgetting `model.eval()` cost the CNN {with_interval(worst['cost'])} test accuracy at batch size "
        f"{worst['batch_size']}.",
    ]
    return [intro, *_q3a_to_c(results), _q3d(results), _q3e(results), _q3f(results), _q3g(results),
            remember("remember-3", bullets)]
