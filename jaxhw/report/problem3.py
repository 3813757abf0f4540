"""Problem 3 in the report: PyTorch's training-loop concepts (3A-3G) measured against their jaxhw counterparts."""
from __future__ import annotations

from jaxhw.report.document import Code, Figure, Note, Paragraph, Section, Table
from jaxhw.report.wording import (
    epochs_text,
    number,
    scientific,
    section,
    student,
    unchanged,
)


def sections(results: dict) -> list[Section]:
    """Problem 3's sections of the report."""
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
                 f"{scientific(adam['torch_difference'])} apart"
                 if adam["reference"] == "torch" else
                 f"{adam['steps']} steps of `optax.adam({adam['lr']:g})` match Adam written out by hand in float64 to "
                 f"{scientific(adam['hand_difference'])} ({adam.get('note', '')})")
    b = section("q3b", "3B. Where Adam lives", "3B", [
        student("3B"),
        Paragraph(f"`{imports['3B']['statement']}`: {found(imports['3B'])}. jaxhw counterpart: `optax.adam(lr)`, "
                  f"held in `TrainState.tx` with its moments in `TrainState.opt_state`. {adam_text}; the parameters "
                  f"moved {scientific(adam['moved'])} in that time (Adam by hand in float64: "
                  f"{scientific(adam['hand_difference'])})."),
        Note("Correct.", "ok"),
    ])
    loader_text = (f"`torch.utils.data.DataLoader` makes {loader['torch_batches']} batches, the last of "
                   f"{loader['torch_last_batch']}" if loader["reference"] == "torch" else loader.get("note", ""))
    c_section = section("q3c", "3C. Shuffling and batching", "3C", [
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
              f"`apply_gradients(zeros)`: {number(swb['optax_zero_gradients_after_warm_steps_moved'])} "
              f"(equal to PyTorch's within {scientific(swb['torch_zeros_minus_optax_zero_gradients'])})"],
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
         f"{scientific(zg['torch_difference'])}; " if zg["reference"] == "torch" else f"({zg.get('note', '')}) ")
        + f"after {zg['steps']} steps they are {scientific(zg['parameters_apart_from_correct_loop'])} away from the "
          f"correct loop's. Over {epochs_text(forgotten['epochs'])} with Adam, as problem 4 trains it, the homework "
          f"MLP reaches test accuracy **{forgotten['test_accuracy']:.3f}** with `zero_grad()` forgotten against "
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
    bn_ref = (f"`torch.nn.BatchNorm2d` agrees to {scientific(max(bn['torch_difference'].values()))} (running "
              "mean, running variance, train- and eval-mode outputs)" if bn["reference"] == "torch"
              else bn.get("note", ""))
    rows = [["BatchNorm, train mode", "normalises with the batch's own mean and variance; updates running mean and "
             f"variance: r ← 0.9 r + 0.1 batch, variance unbiased (after {bn['steps']} steps, "
             f"max |jaxhw − hand formula| = {scientific(bn['hand_difference'])}; {bn_ref})"],
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
    return [intro, a, b, c_section, d, e, f, g]

