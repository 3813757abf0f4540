"""The report as two Documents: the answer key (grades at a glance, then every question answered and graded) and
its evidence (tables, figures, method notes, the run's facts), and as one page holding both."""
from __future__ import annotations

from jaxhw.intervals import COVERS, sampling_error
from jaxhw.report import problem1, problem2, problem3, problem4, problem5
from jaxhw.report.document import Bullets, Code, Document, Note, Paragraph, Section, Table
from jaxhw.report.questions import GRADES, PROBLEM_POINTS, points
from jaxhw.report.wording import timing_row

PROBLEMS = (problem1, problem2, problem3, problem4, problem5)
ANCHORS = {"4": "problem-4"}  # every other question's section is q + its key in lower case
KEY_TITLE = "HW 3 answer key"
QUICK_BANNER = "Quick run (--quick): a smoke test with one epoch per model; the numbers are not the answers."


def anchor_of(key: str) -> str:
    """The anchor of a question's section in the key."""
    return ANCHORS.get(key, f"q{key.lower()}")


def _points_text(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def glance(results: dict) -> Section:
    """One row per question: its grade, points and the reason in one line; the total; what the intervals cover."""
    mlp = results["problem4"]["mlp"]
    accuracy, examples = mlp["test_accuracy"], mlp["test_examples"]
    error = sampling_error(accuracy, examples)
    rows, earned, possible = [], 0.0, 0.0
    for key, grade in GRADES.items():
        found = points(key)
        if found is not None:
            earned, possible = earned + found[0], possible + found[1]
        rows.append([f"[{key}](#{anchor_of(key)})", f"**{grade.grade}**",
                     "-" if found is None else f"{_points_text(found[0])} / {_points_text(found[1])}", grade.reason])
    ungraded = sum(PROBLEM_POINTS[key[0]] for key in GRADES if points(key) is None)
    rows.append(["total", "", f"{_points_text(earned)} / {_points_text(possible)}",
                 f"of the {sum(PROBLEM_POINTS.values())} points; problem 4's {ungraded} are not graded here"
                 if ungraded else ""])
    return Section("grades", "Grades at a glance", "", [
        Table(["question", "grade", "points", "why"], rows),
        Paragraph("Points: the homework gives each problem's total only, so each total is split evenly among the "
                  "problem's questions; correct earns a question's points, wrong or unanswered none, and partly "
                  "correct the fraction parts covered / (covered + missed) of them, counting the parts its grade "
                  "lists (2A: 5 of 6 blanks, 8.3 of 10). Every model trained for this key "
                  "is jaxhw's Flax/optax reimplementation of the homework's PyTorch code, checked against PyTorch "
                  "(problem 3). Intervals below are "
                  f"{COVERS} (about ±{error:.3f} at accuracy {accuracy:.2f} on {examples:,} test images)."),
    ], 2)


def _compared_with_torch(results: dict) -> str:
    """Which of problem 3's checks this run compared with PyTorch itself."""
    names = {"loader": "batching", "batchnorm": "BatchNorm", "dropout": "dropout", "adam": "Adam",
             "zero_grad": "a few SGD steps without zero_grad()",
             "step_without_backward": "a few steps without backward()"}
    with_torch = [names.get(name, name) for name, check in results["problem3"].items()
                  if isinstance(check, dict) and check.get("reference") == "torch"]
    if not with_torch:
        return ("PyTorch was not installed, so problem 3 compares the JAX side with hand formulas; "
                "`pip install torch` adds PyTorch itself.")
    return (f"PyTorch {results['problem3']['torch_version']} itself ran only problem 3's small checks, each beside "
            f"its Flax/optax counterpart: {', '.join(with_torch)}; every model trained for epochs, those loops "
            "with zero_grad() or backward() forgotten included, is Flax/optax.")


def about(results: dict) -> Section:
    """What the key's numbers are, once."""
    return Section("about", "About these numbers", "", [
        Paragraph(f"Every number above was computed for this key ({results['budget']} budget): the image models on "
                  f"{results['data']['train_examples']:,} training and {results['data']['test_examples']:,} test "
                  f"images, the sequence models on problem 5's tasks, {results['config']['seeds']} seeds each. "
                  f"{_compared_with_torch(results)} Derivatives are checked against `jax.grad` and finite "
                  "differences. Tables, figures and methods: [the evidence](#evidence)."),
    ], 2)


def key_document(results: dict) -> Document:
    """The answer key: grades at a glance, the problems' questions, and what the numbers are."""
    sections = [glance(results)]
    for problem in PROBLEMS:
        sections += problem.key(results)
    sections.append(about(results))
    return Document(KEY_TITLE, [], sections, QUICK_BANNER if results["budget"] == "quick" else "", contents=False)


def facts(results: dict) -> list[tuple[str, str]]:
    """The run's facts: device, versions, data, budget and seed, run time."""
    env, data = results["environment"], results["data"]
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
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


def method(results: dict) -> Section:
    """How the numbers were computed and how long each stage took."""
    rows = [timing_row(stage) for stage in results["stages"].values()]
    rows.append(["total", f"{results['wall_seconds']:.1f}", f"{results['cpu_seconds']:.1f}"])
    blocks = [
        Bullets([f"**{name}:** {value}" for name, value in facts(results)]),
        Paragraph("The models are jaxhw's Flax modules trained by its one jitted training loop with optax, the seeds "
                  f"of one model as one program. Every mean over seeds carries {COVERS} (jaxhw.intervals: a "
                  "Student-t interval, and for an accuracy a Wilson-type interval that stays inside [0, 1]); a "
                  "comparison is the paired difference over the same seeds. The derivatives come from jaxhw's formulas "
                  f"checked against `jax.grad` and finite differences. {_compared_with_torch(results)}"),
        Table(["stage", "wall seconds", "CPU seconds"], rows, "Time per stage (compilation included)"),
    ]
    if results["budget"] == "quick":
        blocks.append(Note("A `--quick` run: one epoch per model and a reduced sequence benchmark, to check that "
                           "everything runs. Run `python -m jaxhw` for the answers.", "info"))
    return Section("evidence", "Evidence: how the numbers were computed", "", blocks, 2)


def reproduce(results: dict) -> Section:
    """The commands that recompute this report and each problem on its own."""
    extra = "" if results["dataset"] == "mnist" else f" --dataset {results['dataset']}"
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


def evidence_document(results: dict) -> Document:
    """The evidence behind the key: the run's facts and method, then each question's tables and figures."""
    sections = [method(results)]
    for number, problem in enumerate(PROBLEMS, start=1):
        sections.append(Section(f"evidence-{number}", f"Problem {number}: evidence", "", [], 2))
        sections += problem.evidence(results)
    sections.append(reproduce(results))
    return Document(f"{KEY_TITLE}: evidence", [], sections, QUICK_BANNER if results["budget"] == "quick" else "")


def page_document(results: dict) -> Document:
    """The key and its evidence as one page (index.html): the evidence sections collapsed until opened."""
    key, evidence = key_document(results), evidence_document(results)
    return Document(KEY_TITLE, [], key.sections + evidence.sections, key.banner, contents=False)
