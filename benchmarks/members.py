"""K seeds trained one after another against K seeds as one program, in jaxhw and in PyTorch.

Two parts, each written to benchmarks/RESULTS.md (a section of its own) and, raw, to benchmarks/members.json:

- ``seeds`` (homework models, batch 64, Adam 1e-3): the MLP on Fashion-MNIST and the LSTM classifier on the
  50x8 ``order`` task, K = 1, 4, 16 seeds trained (a) one after another with ``create_train_state`` + ``fit``,
  (b) as one program with ``create_train_states`` + ``fit(..., members=K)`` and the backend's default members
  side by side (one at a time on the CPU), (c) the same with all K vmapped side by side, (d) PyTorch's plain
  loop once per seed (one thread), (e) PyTorch's ``torch.func.stack_module_state`` + ``functional_call`` +
  ``vmap``. Each run is its own process; the runs alternate. Reported: whole wall time (compilation included)
  and steady seconds per epoch, both per member.
- ``problem5`` (the target "members no slower per member than one member alone"): problem 5's models (1,000
  examples of ``order`` per member, its own data for each member, batch 25, Adam 2e-3) and the homework CNN
  (4,000 Fashion-MNIST images shared by the members, batch 64, Adam 1e-3), one jitted epoch per K and per way
  (all K vmapped side by side, or one member at a time inside the program), steady epochs alternating in one
  process; per-member epoch at K over the epoch at K = 1.

    PYTHONPATH=. python benchmarks/members.py                        # both parts, half an hour or more
    PYTHONPATH=. python benchmarks/members.py --parts problem5 --problem5-members 1,4,8,16
    PYTHONPATH=. python benchmarks/members.py --from-json benchmarks/members.json   # rewrite the section only
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import sys
import time

BENCHMARKS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
import compare_torch as common  # noqa: E402  (process running, machine and version reports)

MODES = ("jaxhw_sequential", "jaxhw_one_program", "jaxhw_vmapped", "torch_loop", "torch_vmap")
SIDE_BY_SIDE_MODELS = ("mlp", "cnn", "cnn_local", "lstm", "gru", "transformer", "homework_cnn")
WAYS = {"vmapped": None, "one_at_a_time": 1}  # members side by side in one step (over_members' at_once)
BATCH_SIZE, LEARNING_RATE = 64, 1e-3
HOMEWORK_CNN_TRAIN = 4_000
SECTION = "## Many seeds: one after another against one program"


# ============================================================================ workers (one per process)
def _module_and_data(model: str, train_size: int):
    from jaxhw.models.mlp import MLP
    from jaxhw.models.sequence import build_sequence_model

    train, _ = common.arrays_for(model, train_size)
    return (MLP(num_classes=10) if model == "mlp" else build_sequence_model("lstm", 2)), train


def worker_jaxhw(model: str, members: int, epochs: int, train_size: int, mode: str) -> dict:
    """K seeds through jaxhw: one ``fit`` per seed, or one ``fit(..., members=K)`` with the default members side
    by side or all K vmapped; epoch seconds per program."""
    import jax
    import optax

    from jaxhw.training import create_train_state, fit
    from jaxhw.training.state import create_train_states

    module, train = _module_and_data(model, train_size)
    sample = train["x"][:1]
    started = time.perf_counter()
    if mode != "jaxhw_sequential":
        states = create_train_states(module, optax.adam(LEARNING_RATE), sample, list(range(members)))
        _, history = fit(states, train, None, epochs=epochs, batch_size=BATCH_SIZE, members=members,
                         members_at_once=members if mode == "jaxhw_vmapped" else None, progress=False)
        programs = [[h["seconds"] for h in history]]
    else:
        programs = []
        for seed in range(members):
            state = create_train_state(module, optax.adam(LEARNING_RATE), sample, seed)
            _, history = fit(state, train, None, epochs=epochs, batch_size=BATCH_SIZE, progress=False)
            programs.append([h["seconds"] for h in history])
    return {"wall_seconds": time.perf_counter() - started, "programs": programs, "backend": jax.default_backend()}


def _torch_tensors(model: str, train_size: int):
    import numpy as np
    import torch
    import torch_loops

    train, _ = common.arrays_for(model, train_size)
    x = torch_loops.twins.images_to_torch(train["x"]).contiguous()
    return x, torch.from_numpy(train["y"].astype(np.int64))


def worker_torch_loop(model: str, members: int, epochs: int, train_size: int) -> dict:
    """K seeds one after another through the plain PyTorch loop (benchmarks/torch_loops.py), one thread."""
    import torch
    import torch_loops

    torch.set_num_threads(1)
    x, y = _torch_tensors(model, train_size)
    started = time.perf_counter()
    programs = []
    for seed in range(members):
        torch.manual_seed(seed)
        network = torch_loops.MODELS[model]()
        programs.append(list(torch_loops.plain_epochs(network, model, x, y, epochs, BATCH_SIZE, LEARNING_RATE)))
    return {"wall_seconds": time.perf_counter() - started, "programs": programs}


def worker_torch_vmap(model: str, members: int, epochs: int, train_size: int) -> dict:
    """K seeds as one program with torch.func: stacked parameters, vmap(grad(functional_call)), one Adam over the
    stacks (Adam is elementwise, so a stack steps as K separate optimizers would); each member its own batch order."""
    import copy

    import torch
    import torch_loops
    from torch.func import functional_call, grad, stack_module_state, vmap

    torch.set_num_threads(1)
    x, y = _torch_tensors(model, train_size)
    started = time.perf_counter()
    networks = []
    for seed in range(members):
        torch.manual_seed(seed)
        networks.append(torch_loops.MODELS[model]())
    params, buffers = stack_module_state(networks)
    skeleton = copy.deepcopy(networks[0]).to("meta")

    def loss_of(p, b, xb, yb):
        return torch.nn.functional.cross_entropy(functional_call(skeleton, (p, b), (xb,)), yb)

    gradients = vmap(grad(loss_of), randomness="different")
    optimizer = torch.optim.Adam(list(params.values()), lr=LEARNING_RATE)
    n = len(x)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        orders = torch.stack([torch.randperm(n) for _ in range(members)])
        for first in range(0, n, BATCH_SIZE):
            index = orders[:, first:first + BATCH_SIZE]
            found = gradients(params, buffers, x[index], y[index])
            for name, value in params.items():
                value.grad = found[name]
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return {"wall_seconds": time.perf_counter() - started, "programs": [seconds]}


def _side_by_side_setup(name: str, members: int, num_train: int, batch_size: int):
    """(module, data, data_per_member, batch size, learning rate) of one model of the problem5 part."""
    import jax
    import numpy as np

    from jaxhw.data.sequences import load_task
    from jaxhw.models.cnn import CNN
    from jaxhw.models.sequence import build_sequence_model

    if name == "homework_cnn":  # the homework CNN of problem 4: every member the same images in its own order
        train, _ = common.arrays_for("cnn", HOMEWORK_CNN_TRAIN)
        return CNN(num_classes=10), jax.device_put(train), False, BATCH_SIZE, LEARNING_RATE
    splits = [load_task("order", num_train, 100, seed)[0].arrays() for seed in range(members)]
    data = {key: jax.device_put(np.stack([s[key] for s in splits])) for key in ("x", "y")}
    return build_sequence_model(name, 2), data, True, batch_size, 2e-3


def worker_problem5(models: list[str], members: list[int], reps: int, num_train: int, batch_size: int) -> dict:
    """Steady seconds of one epoch for each K and each way of running the members (all vmapped side by side,
    or one at a time inside the program), all alternating (K1 K2 K3 K1 K2 K3 ...) so the load moves them
    alike. K = 1 is one member alone (``create_train_state``, the unstacked epoch), the program ``fit`` runs for
    one seed."""
    import jax
    import optax

    from jaxhw.training import classification, make_epoch_fn
    from jaxhw.training.state import create_train_state, create_train_states

    found = {}
    for name in models:
        runs = {}
        for k in members:
            module, data, per_member, size, lr = _side_by_side_setup(name, k, num_train, batch_size)
            sample = (data["x"][0] if per_member else data["x"])[:1]
            for way, at_once in WAYS.items():
                if k == 1 and at_once is not None:
                    continue
                if k == 1:  # the baseline: one member alone, the program create_train_state + fit run
                    states = create_train_state(module, optax.adam(lr), sample, 0)
                    epoch = make_epoch_fn(classification, size)
                    data = {key: values[0] for key, values in data.items()} if per_member else data
                else:
                    states = create_train_states(module, optax.adam(lr), sample, list(range(k)))
                    epoch = make_epoch_fn(classification, size, members=True, data_per_member=per_member,
                                          at_once=at_once)
                start = time.perf_counter()
                states, totals, _ = epoch(states, data, 0)
                jax.block_until_ready(totals)
                runs[k, way] = {"epoch": epoch, "state": states, "data": data,
                                "first": time.perf_counter() - start, "steady": []}
        for rep in range(reps):
            for run in runs.values():
                start = time.perf_counter()
                run["state"], totals, _ = run["epoch"](run["state"], run["data"], rep + 1)
                jax.block_until_ready(totals)
                run["steady"].append(time.perf_counter() - start)
        found[name] = {f"{k} {way}": {"first_seconds": run["first"], "steady_seconds": run["steady"]}
                       for (k, way), run in runs.items()}
        print(f"{name:12s} " + "  ".join(f"K={k} {way}: {statistics.median(r['steady']) / k:.4f} s/member"
                                        for (k, way), r in runs.items()), file=sys.stderr, flush=True)
    return {"models": found, "backend": jax.default_backend()}


def run_worker(args: argparse.Namespace) -> None:
    if args.worker == "problem5":
        result = worker_problem5(args.models, args.members, args.reps, args.problem5_train, args.problem5_batch)
    elif args.worker.startswith("jaxhw"):
        result = worker_jaxhw(args.model, args.member_count, args.epochs, args.train_size, args.worker)
    elif args.worker == "torch_loop":
        result = worker_torch_loop(args.model, args.member_count, args.epochs, args.train_size)
    else:
        result = worker_torch_vmap(args.model, args.member_count, args.epochs, args.train_size)
    print(common.RESULT_PREFIX + json.dumps(result), flush=True)


# ================================================================================ the driver
def launch(args: argparse.Namespace, extra: list[str]) -> dict:
    command = [sys.executable, str(pathlib.Path(__file__).resolve()), *extra]
    finished = common.run_process(command, common.worker_env(), args.run_timeout)
    line = [text for text in finished["output"].splitlines() if text.startswith(common.RESULT_PREFIX)][-1]
    result = json.loads(line[len(common.RESULT_PREFIX):])
    result.update(process_seconds=finished["wall_seconds"], peak_rss_mb=finished["peak_rss_mb"],
                  load=common.load_average())
    return result


def measure_seeds(args: argparse.Namespace) -> list[dict]:
    rows = []
    for model in args.seed_models:
        size = args.train_size[model]
        for rep in range(args.seed_reps):
            for k in args.members:
                for mode in args.modes:
                    extra = ["--worker", mode, "--model", model, "--member-count", str(k), "--epochs",
                             str(args.epochs), "--train-size-one", str(size)]
                    try:
                        result = launch(args, extra)
                    except RuntimeError as e:
                        message = str(e).splitlines()[0][:300]
                        tail = [line for line in str(e).splitlines() if line.strip()][-1:]
                        print(f"{model} K={k} {mode}: FAILED {message} {tail}", flush=True)
                        rows.append({"model": model, "members": k, "mode": mode, "rep": rep,
                                     "failed": " ".join([message, *tail])[:400]})
                        continue
                    result.update(model=model, members=k, mode=mode, rep=rep, train_examples=size)
                    rows.append(result)
                    print(f"{model} K={k:2d} {mode:17s} wall {result['wall_seconds']:7.2f} s  per member "
                          f"{result['wall_seconds'] / k:6.2f} s, steady epoch per member "
                          f"{steady_per_member(result, k):.4f} s (load {result['load']:.1f})", flush=True)
    return rows


def steady_per_member(result: dict, members: int) -> float:
    """Steady seconds per epoch per member: the median over epochs 2..N of each program, summed over programs
    (one program per seed when trained one after another), over K."""
    total = sum(statistics.median(p[1:] or p) for p in result["programs"])
    return total / members


# ================================================================================ the report
def seeds_table(rows: list[dict]) -> list[str]:
    lines = ["| model | K | run | wall s, K seeds (compilation included) | wall s per member | steady s per epoch "
             "per member | per member, K over K = 1 |", "|---|---|---|---|---|---|---|"]
    good = [r for r in rows if "failed" not in r]
    for model in dict.fromkeys(r["model"] for r in rows):
        for mode in MODES:
            base = [steady_per_member(r, 1) for r in good if (r["model"], r["mode"], r["members"]) == (model, mode, 1)]
            for k in sorted({r["members"] for r in rows}):
                same = [r for r in rows if (r["model"], r["mode"], r["members"]) == (model, mode, k)]
                mine, failed = [r for r in same if "failed" not in r], [r for r in same if "failed" in r]
                if not mine:
                    if failed:
                        lines.append(f"| {model} | {k} | {mode} | failed: {failed[0]['failed'][:160]} | | | |")
                    continue
                wall = statistics.median(r["wall_seconds"] for r in mine)
                steady = statistics.median(steady_per_member(r, k) for r in mine)
                ratio = f"{steady / statistics.median(base):.2f}x" if base else "n/a"
                lines.append(f"| {model} | {k} | {mode} | {wall:.2f} | {wall / k:.2f} | {steady:.4f} | {ratio} |")
    return lines


def problem5_table(result: dict) -> list[str]:
    """Per model: K = 1, then for each larger K the per-member epoch of each way and its ratio to K = 1."""
    runs_of = {name: {tuple(key.split(" ", 1)): r for key, r in runs.items()}
               for name, runs in result["models"].items()}
    keys = sorted({(int(k), way) for runs in runs_of.values() for k, way in runs if k != "1"})
    head = ["K = 1"] + [f"K = {k} {way.replace('_', ' ')}" for k, way in keys]
    lines = ["| model | " + " | ".join(f"{h}: s per member-epoch" for h in head) + " | "
             + " | ".join(f"{h} / K = 1" for h in head[1:]) + " |", "|---|" + "---|" * (2 * len(head) - 1)]
    for name, runs in runs_of.items():
        alone = next(r for (k, _), r in runs.items() if k == "1")["steady_seconds"]
        per = [[s / k for s in runs[str(k), way]["steady_seconds"]] for k, way in keys]
        ratios = [statistics.median(a / b for a, b in zip(p, alone)) for p in per]
        lines.append(f"| {name} | {statistics.median(alone):.4f} | "
                     + " | ".join(f"{statistics.median(p):.4f}" for p in per) + " | "
                     + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    return lines


def write_section(path: pathlib.Path, saved: dict) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md."""
    out = [SECTION, "",
           f"Written by `benchmarks/members.py` on {saved['started']} UTC (`{saved['command']}`); raw figures in "
           "`benchmarks/members.json`. Machine: " + saved["machine"] + "; load average (1 min) "
           f"{saved['loads'][0]:.1f} at the start, {saved['loads'][1]:.1f} at the end, shared with other "
           "engineers, so read the ratios. Versions: " + ", ".join(f"{k} {v}" for k, v in saved["versions"].items())
           + ".", ""]
    if saved.get("seeds"):
        out += ["K seeds of the homework MLP (Fashion-MNIST) and the LSTM classifier (50x8 `order`), batch 64, "
                f"Adam 1e-3, {saved['epochs']} epochs; each run its own process, the runs alternating. "
                "`jaxhw_sequential`: one `fit` per seed; `jaxhw_one_program`: `fit(..., members=K)`, its default "
                "members side by side (one at a time on the CPU); `jaxhw_vmapped`: the same with all K vmapped "
                "(`members_at_once=K`); `torch_loop`: the "
                "plain PyTorch loop once per seed (one thread); `torch_vmap`: `torch.func.stack_module_state` + "
                "`functional_call` + `vmap(grad(...))` and one Adam over the stacks (one thread). Training sets: "
                + ", ".join(f"{m} {n:,} examples" for m, n in saved["train_size"].items()) + ".", "",
                *seeds_table(saved["seeds"]), ""]
    if saved.get("problem5"):
        rerun = saved.get("problem5_started")  # the part run again on its own and merged into this record
        out += [(f"Measured again on its own on {rerun} UTC (`PYTHONPATH=. python benchmarks/members.py --parts "
                 "problem5`): " if rerun else "")
                + f"Problem 5's models, each member its own {saved['problem5_train']:,} examples of `order`, batch "
                f"{saved['problem5_batch']}, Adam 2e-3, and the homework CNN (`homework_cnn`: {HOMEWORK_CNN_TRAIN:,} "
                "Fashion-MNIST images shared by the members, batch 64, Adam 1e-3): the steady epoch of one program "
                "(`make_epoch_fn(members=True, at_once=...)`) per member, with all K members vmapped side by side or "
                "one at a time inside the program (`at_once=1`), against one member alone (K = 1: "
                "`create_train_state` and the unstacked epoch), the runs alternating in one process (median over "
                "repetitions of the per-repetition ratio).", "",
                *problem5_table(saved["problem5"]), ""]
    text = path.read_text() if path.exists() else ""
    if SECTION in text:
        before, after = text.split(SECTION, 1)
        rest = after.split("\n## ", 1)
        text = before + "\n".join(out) + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip() + "\n\n" + "\n".join(out)
    path.write_text(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=lambda s: s.split(","), default=["seeds", "problem5"])
    parser.add_argument("--members", type=lambda s: [int(k) for k in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--seed-models", type=lambda s: s.split(","), default=["mlp", "lstm"])
    parser.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES))
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run of the seeds part (>= 2)")
    parser.add_argument("--seed-reps", type=int, default=1, help="repetitions of every run of the seeds part")
    parser.add_argument("--mlp-train", type=int, default=12_800, help="Fashion-MNIST training images for the MLP")
    parser.add_argument("--lstm-train", type=int, default=4_000, help="order sequences for the LSTM")
    parser.add_argument("--models", type=lambda s: s.split(","), default=list(SIDE_BY_SIDE_MODELS),
                        help="the models measured by the problem5 part (problem 5's and homework_cnn)")
    parser.add_argument("--problem5-members", type=lambda s: [int(k) for k in s.split(",")], default=[1, 8, 16],
                        help="K measured by the problem5 part (1 first: the reference)")
    parser.add_argument("--reps", type=int, default=5, help="steady epochs per K in the problem5 part")
    parser.add_argument("--problem5-train", type=int, default=1000)
    parser.add_argument("--problem5-batch", type=int, default=25)
    parser.add_argument("--run-timeout", type=float, default=1800.0)
    parser.add_argument("--results", type=pathlib.Path, default=BENCHMARKS / "RESULTS.md")
    parser.add_argument("--json", type=pathlib.Path, default=BENCHMARKS / "members.json")
    parser.add_argument("--from-json", type=pathlib.Path, default=None)
    parser.add_argument("--worker", choices=(*MODES, "problem5"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--member-count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--train-size-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.train_size = {"mlp": args.mlp_train, "lstm": args.lstm_train}
    if args.worker:
        args.train_size = args.train_size_one
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    if args.from_json:
        write_section(args.results, json.loads(args.from_json.read_text()))
        print(f"rewrote the members section of {args.results}")
        return
    saved = {"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
             "command": "PYTHONPATH=. python benchmarks/members.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
             "machine": common.machine(), "versions": common.versions(), "commit": common.git_commit(),
             "epochs": args.epochs, "train_size": args.train_size, "problem5_train": args.problem5_train,
             "problem5_batch": args.problem5_batch}
    start_load = common.load_average()
    if "seeds" in args.parts:
        saved["seeds"] = measure_seeds(args)
    if "problem5" in args.parts:
        extra = ["--worker", "problem5", "--models", ",".join(args.models), "--members",
                 ",".join(map(str, args.problem5_members)), "--reps", str(args.reps), "--problem5-train",
                 str(args.problem5_train), "--problem5-batch", str(args.problem5_batch)]
        saved["problem5"] = launch(args, extra)
    saved["loads"] = [start_load, common.load_average()]
    args.json.write_text(json.dumps(saved, indent=1))
    write_section(args.results, saved)
    print(f"wrote {args.json} and the members section of {args.results}")


if __name__ == "__main__":
    main()
