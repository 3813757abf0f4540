"""The report as a Document: the header and overview, every problem's sections, and how to reproduce it."""
from __future__ import annotations

from jaxhw.report import problem1, problem2, problem3, problem4, problem5
from jaxhw.report.document import Code, Document, Note, Paragraph, Section, Table
from jaxhw.report.wording import timing_row


def header(results: dict) -> list[tuple[str, str]]:
    """The facts shown first: device, versions, data, budget and seed, run time."""
    env, data = results["environment"], results["data"]
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    if "torch" not in env["versions"]:
        versions += (" (PyTorch is not installed: problem 3 compares jaxhw with hand formulas where it can and "
                     "reports the jaxhw side alone elsewhere; `pip install torch` adds the PyTorch side)")
    return [
        ("Device", f"`jax.devices()` = `{env['devices']}` (backend {env['backend']}, kind {env['device_kind']}; "
                   f"{env['cpu_cores']} CPU cores available)"),
        ("Versions", f"Python {env['python']}; {versions}"),
        ("Data", f"{results['dataset']} from `{data['source']}`: {data['train_examples']:,} training and "
                 f"{data['test_examples']:,} test images of {'x'.join(map(str, data['image_shape']))} "
                 f"(`--source {results['source_requested']}`)"),
        ("Run", f"`{results['budget']}` budget, seed {results['seed']} (models trained over "
                f"{results['config']['seeds']} seeds from it), started {results['started']}"),
        ("Total run time", f"{results['wall_seconds']:.0f} s wall clock, {results['cpu_seconds']:.0f} s CPU "
                           "(user + system, all threads)"),
    ]


def overview(results: dict) -> Section:
    """What the numbers are and how long each stage took."""
    stages = results["stages"]
    rows = [timing_row(stage) for stage in stages.values()]
    rows.append(["total", f"{results['wall_seconds']:.1f}", f"{results['cpu_seconds']:.1f}"])
    blocks = [
        Paragraph("Every number below was computed by this run: the models are jaxhw's Flax modules trained by its one "
                  "jitted training loop with optax, several seeds at once as one program, and every result "
                  "over seeds is a mean with its 95% interval; the derivatives come from jaxhw's formulas checked "
                  f"against `jax.grad` and finite differences; {_compared_with_torch(results)} Each question "
                  "gives the answer first, then the evidence, then the student's answer as written with its grade."),
        Table(["stage", "wall seconds", "CPU seconds"], rows, "Time per stage (compilation included)"),
    ]
    if results["budget"] == "quick":
        blocks.append(Note("This is a `--quick` run: one epoch per model and a reduced sequence benchmark, to check "
                           "that everything runs. The numbers are not the homework's answers; run `python -m jaxhw` "
                           "for those.", "info"))
    return Section("overview", "Overview", "", blocks, 2)


def _compared_with_torch(results: dict) -> str:
    """Which of problem 3's checks this run compared with PyTorch itself."""
    checks = {name: check for name, check in results["problem3"].items()
              if isinstance(check, dict) and "reference" in check}
    names = {"loader": "batching", "batchnorm": "BatchNorm", "dropout": "dropout", "adam": "Adam",
             "zero_grad": "the loop without zero_grad()", "step_without_backward": "step() without backward()"}
    with_torch = [names.get(name, name) for name, check in checks.items() if check["reference"] == "torch"]
    if not with_torch:
        return "no check was compared with PyTorch in this run (it is not installed)."
    return f"problem 3 compared {', '.join(with_torch)} with PyTorch {results['problem3']['torch_version']} itself."


def reproduce(results: dict) -> Section:
    """The commands that recompute this report and each problem on its own."""
    dataset = results["dataset"]
    extra = "" if dataset == "mnist" else f" --dataset {dataset}"
    quick = " --quick" if results["budget"] == "quick" else ""
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
              if results["budget"] == "quick" else "")
    sections = [overview(results), *problem1.sections(results), *problem2.sections(results),
                *problem3.sections(results), *problem4.sections(results), *problem5.sections(results),
                reproduce(results)]
    return Document("HW 3 computed in JAX: jaxhw's report", header(results), sections, banner)
