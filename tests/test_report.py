"""`python -m jaxhw`: the answer key (grades at a glance, then each question answered first and graded) and its
evidence, with numbers checked against hand derivations, PyTorch and independent code paths; every interval
inside its metric's range; the report's pieces (document, confusion matrix, mistakes)."""
import base64
import json
import math
import re

import jax
import numpy as np
import pytest

from jaxhw.__main__ import main
from jaxhw.data.images import load_images
from jaxhw.errors import InputError
from jaxhw.experiments import concepts
from jaxhw.experiments.classification import confusion_matrix, most_confident_mistakes
from jaxhw.intervals import COVERS
from jaxhw.report.document import (
    Document,
    Figure,
    Paragraph,
    Section,
    Table,
    inline_html,
    to_html,
    to_markdown,
)
from jaxhw.report.questions import GRADES

pytestmark = pytest.mark.slow  # reads the --quick report (tests/conftest.py quick_report)

KEY_ANCHORS = {"1A": "q1a", "1B": "q1b", "1C": "q1c", "2A": "q2a", "2B": "q2b", "3A": "q3a", "3B": "q3b",
               "3C": "q3c", "3D": "q3d", "3E": "q3e", "3F": "q3f", "3G": "q3g", "4": "problem-4", "5A": "q5a",
               "5B": "q5b", "5C": "q5c"}
PYTORCH_QUESTIONS = ("1C", "2A", "3A", "3B", "3C", "3D", "3E", "3F", "3G")  # answered in PyTorch first
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEY_WORDS, REPORT_WORDS = 3000, 5000


@pytest.fixture(scope="module")
def report(quick_report):
    return {"dir": quick_report, "html": (quick_report / "index.html").read_text(encoding="utf-8"),
            "md": (quick_report / "report.md").read_text(encoding="utf-8"),
            "evidence": (quick_report / "evidence.md").read_text(encoding="utf-8"),
            "json": json.loads((quick_report / "report.json").read_text())}


def section_text(markdown: str, anchor: str) -> str:
    """The Markdown of one section: from its anchor to the next anchor."""
    start = markdown.index(f'<a id="{anchor}"></a>')
    following = markdown.find('<a id="', start + 1)
    return markdown[start:following if following != -1 else None]


def blocks_of(text: str) -> list[str]:
    return [block for block in text.split("\n\n") if block.strip()]


def words(markdown: str) -> int:
    """Words a reader reads: anchors and link targets left out, tokens holding a letter or a digit counted."""
    text = re.sub(r'<a id="[^"]*"></a>', " ", markdown)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return sum(1 for token in text.split() if re.search(r"[A-Za-z0-9]", token))


def sentences(paragraph: str) -> int:
    """Sentences of prose: ends of sentence outside `code`, decimal points and abbreviations not counted."""
    prose = re.sub(r"`[^`]*`", "CODE", paragraph)
    return len(re.findall(r"[.!?](?=\s+[A-Z(]|\s*$)", prose))


def test_the_key_opens_with_grades_at_a_glance_linking_every_question(report):
    head, first = report["md"].split('<a id="', 1)
    assert [line for line in head.splitlines() if line.strip() and not line.startswith("> **Quick run")] \
        == ["# HW 3 answer key"]  # the title, the quick run's banner, then the grades
    assert first.startswith('grades"></a>\n\n## Grades at a glance')
    page = report["html"].split("<body>", 1)[1]
    assert page.index('<section id="grades">') < page.index("<section") + 1
    table = section_text(report["md"], "grades")
    for key, anchor in KEY_ANCHORS.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| [{key}](#{anchor}) |"))
        assert row.startswith(f"| [{key}](#{anchor}) | **{GRADES[key].grade}** | "), key
        assert row.endswith(f" | {GRADES[key].reason} |"), key
    # Each problem's points split evenly among its questions, full for correct, half for partly correct, and the
    # share of parts answered where they can be counted (1B two of five, 2A five of six blanks, 5B three of four):
    # 1: 0 + 4 + 5 of 30; 2: 8.33 + 10 of 20; 3: 7 x 5 of 35; 5: 5 + 7.5 + 5 of 30; problem 4 (85) not graded:
    # 79.8 of 115.
    assert "| total |  | 79.8 / 115 |" in table


def test_every_question_gives_the_answer_then_numbers_then_the_student_and_the_grade(report):
    evidence_anchors = set(re.findall(r'<a id="([^"]+)"></a>', report["evidence"]))
    for key, anchor in KEY_ANCHORS.items():
        blocks = blocks_of(section_text(report["md"], anchor))
        answer = blocks[2]
        assert answer.startswith("**Answer.**") and sentences(answer) <= 3, (key, answer)
        rest = blocks[3:]
        if key in PYTORCH_QUESTIONS:  # PyTorch first, its JAX counterpart in one line after it
            assert re.search(r"`(torch|nn\.|optimizer|model|from torch)", answer), key
            assert rest[0].startswith("*JAX:*") and "\n" not in rest[0], key
            rest = rest[1:]
        assert rest[0].startswith(("**Numbers.**", "See the [evidence]")), (key, rest[0])
        link = re.search(r"\(evidence\.md#([\w-]+)\)", rest[0])
        assert link and link.group(1) in evidence_anchors, key
        assert rest[1].startswith("> **Student's answer:**"), key
        assert rest[2].startswith(f"> **Grade: {GRADES[key].grade}.**"), key
        if GRADES[key].grade == "correct":
            assert "Misses:" not in rest[2], key


def test_the_key_is_short_and_the_whole_report_md_not_much_longer(report):
    markdown = report["md"]
    key = markdown[:markdown.index('<a id="about"></a>')]
    assert words(key) <= KEY_WORDS, words(key)
    assert words(markdown) <= REPORT_WORDS, words(markdown)
    # What the intervals cover, said once in the key and once in the evidence.
    assert report["md"].count(COVERS) == 1 and COVERS in report["evidence"]


def test_jaxhw_names_stay_in_the_evidence(report):
    key = report["md"][:report["md"].index('<a id="about"></a>')]
    assert key.count("jaxhw") <= 2, re.findall(r".{30}jaxhw.{30}", key)


def test_report_json_carries_each_grade_with_what_it_covers_and_misses(report):
    grades = report["json"]["grades"]
    assert set(grades) == set(KEY_ANCHORS)
    for key, entry in grades.items():
        assert {name: entry[name] for name in GRADES[key].record()} == GRADES[key].record(), key
        assert entry["grade"] != "correct" or entry["missing"] == []
    assert (grades["3A"]["points"], grades["3A"]["points_possible"]) == (5, 5)
    assert (grades["1B"]["points"], grades["1B"]["points_possible"]) == (4, 10)
    assert grades["2A"]["points"] == pytest.approx(50 / 6)
    assert grades["4"]["points"] is None


def _intervals(node, path=()):
    """Every interval in a JSON tree: (path, low, high, mean or None)."""
    if isinstance(node, dict):
        if {"low", "high", "mean"} <= set(node) and node["low"] is not None:
            yield path, node["low"], node["high"], node["mean"]
        for name, value in node.items():
            if name.endswith("ci95") and isinstance(value, list) and len(value) == 2:
                mean = node.get(name[:-len("_ci95")], node.get("mean")) if name != "ci95" else node.get("mean")
                yield path + (name,), value[0], value[1], mean if isinstance(mean, (int, float)) else None
            else:
                yield from _intervals(value, path + (str(name),))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _intervals(value, path + (str(index),))


def _range_of(path: tuple) -> tuple[float, float] | None:
    """The range an interval must stay in, read from where it sits."""
    text = " ".join(path)
    if re.search(r"loss|mse|seconds", text):
        return None
    if re.search(r" - |minus|gap|cost|gain|larger_minus", text):
        return (-1.0, 1.0)
    if "accuracy" in text or re.search(r">=|<", text):
        return (0.0, 1.0)
    return None


def test_every_accuracy_interval_lies_in_its_range_in_report_json_and_every_metrics_file(report):
    files = [report["dir"] / "report.json", *report["dir"].rglob("metrics.json"), *report["dir"].rglob("results.json")]
    checked = 0
    for path in files:
        for where, low, high, mean in _intervals(json.loads(path.read_text())):
            assert low <= high, (path.name, where)
            if mean is not None:
                assert low - 1e-12 <= mean <= high + 1e-12, (path.name, where, low, mean, high)
            bounds = _range_of(where)
            if bounds is not None:
                assert bounds[0] <= low and high <= bounds[1], (path.name, where, low, high)
                checked += 1
    assert checked >= 40


def test_problem_1a_leads_with_the_intended_answer(report):
    vector = [0.1, 0.1, 0.0, 0.4, 0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.1]
    a = report["json"]["problem1"]["problem_1a"]
    assert a["entries"] == 11 and a["sum"] == pytest.approx(math.fsum(vector)) == pytest.approx(1.05)
    assert a["values"]["as_given"] == pytest.approx(-math.log(0.4))
    assert a["values"]["renormalized"] == pytest.approx(-math.log(0.4 / 1.05))
    # Dropping any one of the five 0.05 entries (indices 4-8) leaves ten entries summing to 1 with 0.4 at index 3.
    assert a["one_entry_too_many"] == [4, 5, 6, 7, 8]
    answer = blocks_of(section_text(report["md"], "q1a"))[2]
    assert f"{-math.log(0.4):.3f} nats" in answer and "one 0.05 too many" in answer
    assert f"{-math.log(0.4 / 1.05):.4f}" in section_text(report["md"], "q1a")


def test_problem_1b_states_the_gradients_derived_by_hand_and_the_likelihood_reason(report):
    answer = blocks_of(section_text(report["md"], "q1b"))[2]
    # At y_hat_3 = 0.9, the rest 0.1 / 9 each: dCE/dy_hat_3 = -1/0.9; summed MSE: 2 (0.9 - 1) = -0.2 on y_hat, and
    # on the logits -2 p ((1 - p)^2 + sum_k p_k^2) = -2 * 0.9 * (0.01 + 9 (0.1 / 9)^2) = -0.02; CE: 0.9 - 1.
    for value in (-1 / 0.9, 2 * (0.9 - 1), -2 * 0.9 * (0.01 + 9 * (0.1 / 9) ** 2), 0.9 - 1):
        assert f"{value:.3f}".replace("-", "−") in answer, value
    assert "log-likelihood" in answer and "maximum likelihood" in answer
    evidence = section_text(report["evidence"], "e-q1b")
    assert f"{-1 / 0.9:.4f}" in evidence and "convex" in evidence and "problem1/gradients.png" in evidence


def test_problem_1c_bounds_and_vanishing_double_softmax_gradient_derived_independently(report):
    double = report["json"]["problem1"]["problem_1c"]["double_softmax"]
    low, high = math.log(math.e + 9) - 1, math.log(math.e + 9)  # -ln(e / (e + 9)) and ln(e + 9)
    assert (round(low, 3), round(high, 3)) == (1.461, 2.461)
    assert double["bounds_formula"] == pytest.approx([low, high])
    assert double["bounds_at_logit_60"] == pytest.approx([low, high], abs=1e-6)
    answer = blocks_of(section_text(report["md"], "q1c"))[2]
    assert "1.461" in answer and "2.461" in answer and "torch.softmax(model(x), dim=1)" in answer
    for row in double["rows"]:
        # By hand in numpy: p = softmax(z), q = softmax(p), dL/dp = q - y, dL/dz = p * (g - <p, g>).
        z = np.zeros(10)
        z[3] = row["margin"]
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        q = np.exp(p) / np.exp(p).sum()
        g = q - np.eye(10)[3]
        by_hand = (p * (g - (p * g).sum()))[3]
        assert row["dL_dz_true"]["softmax_then_cross_entropy"] == pytest.approx(by_hand, rel=1e-9, abs=1e-15)
        assert row["dL_dz_true"]["cross_entropy_on_logits"] == pytest.approx(p[3] - 1, abs=1e-12)
        if abs(row["margin"]) >= 10:  # confidently right or wrong: vanished, unlike CE on logits when wrong
            # |dL/dz_true| = p (1 - p) |g_true - <p, g>| <= p (1 - p) * 2, and p (1 - p) <= 9 e^-10 = 4.1e-4.
            assert abs(by_hand) < 2 * 9 * math.exp(-10)
    assert "MSE on ŷ (mean over the 10)" in section_text(report["evidence"], "e-q1c")


def test_problem_2b_per_digit_errors_match_numpy_and_the_classifier(report):
    p2 = report["json"]["problem2"]
    by_class, recognised = p2["by_class"], p2["recognised"]
    train, test = (load_images("mnist", split, "embedded") for split in ("train", "test"))
    x_train, x_test = train.images.astype(np.float64) / 255, test.images.astype(np.float64) / 255
    mean = x_train.mean(axis=0)
    for digit in range(10):
        own = x_test[test.labels == digit]
        assert by_class["mean_image"][digit] == pytest.approx(np.mean((own - mean) ** 2))
        digit_mean = x_train[train.labels == digit].mean(axis=0)
        assert by_class["digit_mean_image"][digit] == pytest.approx(np.mean((own - digit_mean) ** 2))
    assert np.mean(by_class["mean_image"]) == pytest.approx(p2["mean_image_mse"])  # 100 test digits per class
    # Each seed's test MSE over all digits is the mean of its per-digit MSEs (100 digits each): fit's evaluation
    # and the reconstructions of the report are two code paths.
    for seed_errors, entry in zip(by_class["autoencoder_per_seed"], p2["per_seed"]):
        assert np.mean(seed_errors) == pytest.approx(entry["test_mse"], rel=1e-5)
    # The CNN reading the originals is problem 4's CNN scoring the test set.
    cnn = report["json"]["problem4"]["cnn"]["per_seed"]
    assert recognised["originals_per_seed"] == pytest.approx([entry["test_accuracy"] for entry in cnn], abs=1e-6)


def test_problem_4_is_not_graded_and_says_how_far_from_all_of_mnist(report):
    text = section_text(report["md"], "problem-4")
    assert "cannot be graded" in text and "Grade: not graded" in text
    mlp = report["json"]["problem4"]["mlp"]
    error = 1.96 * math.sqrt(mlp["test_accuracy"] * (1 - mlp["test_accuracy"]) / 1000)
    assert f"±{error:.3f}" in text
    size = report["json"]["problem4_training_size"]
    assert size["sizes"] == [1000, 2000, 4000]
    # The largest subset is the whole training set: problem 4's MLP, trained again through another path.
    assert size["test_accuracy_per_seed"][-1] == pytest.approx([e["test_accuracy"] for e in mlp["per_seed"]],
                                                                abs=1e-6)
    assert f"{size['gains'][-1]['from']:,} to {size['gains'][-1]['to']:,} training digits" in text


def test_header_states_device_versions_data_and_time(report):
    results = report["json"]
    head = section_text(report["evidence"], "evidence")
    assert repr(jax.devices()) in head and f"jax {jax.__version__}" in head
    assert "embedded:mnist_5k" in head and "4,000 training and 1,000 test" in head
    assert f"{results['wall_seconds']:.0f} s wall clock" in head and "s CPU" in head
    assert results["wall_seconds"] > 0 and results["cpu_seconds"] > 0
    assert set(results["stages"]) == {"data", "problem1", "problem2", "problem3", "problem4", "problem5"}


def test_html_is_self_contained_every_figure_embedded_and_the_evidence_collapsed(report):
    html = report["html"]
    sources = re.findall(r'<img src="([^"]+)"', html)
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report["evidence"])
    assert len(sources) == len(figures) >= 12
    for source, path in zip(sources, figures):
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]) == (report["dir"] / path).read_bytes()
        assert (report["dir"] / path).read_bytes().startswith(PNG_SIGNATURE)
    assert not re.search(r'(src|href)="(?!data:|#)', html), "the page must not load anything from elsewhere"
    assert html.index('<section id="grades">') < html.index('<section id="q1a">') < html.index('<details id="e-q1a">')
    for anchor in re.findall(r'href="#([\w-]+)"', html):
        assert f'id="{anchor}"' in html, anchor


def test_problem_4_predictions_agree_with_the_training_loops_evaluation(report):
    p4 = report["json"]["problem4"]
    for model in ("mlp", "cnn"):
        evaluation = p4[model]["evaluation"]
        matrix = np.asarray(evaluation["confusion_matrix"])
        assert matrix.sum() == p4[model]["test_examples"] == 1000
        assert matrix.sum(axis=1).tolist() == [100] * 10  # the embedded test split: 100 digits per class
        # predict_probabilities + argmax (the first seed's member) against fit's jitted evaluation of that member:
        # two code paths, one accuracy.
        first = p4[model]["per_seed"][0]
        assert first["seed"] == p4[model]["seeds"][0] == report["json"]["seed"]
        assert np.trace(matrix) / matrix.sum() == pytest.approx(first["test_accuracy"], abs=1e-6)
        assert p4[model]["test_accuracy"] == pytest.approx(np.mean([e["test_accuracy"] for e in p4[model]["per_seed"]]))
        mistakes = evaluation["most_confident_mistakes"]
        assert len(mistakes) == 12 and all(m["label"] != m["predicted"] for m in mistakes)
        confidences = [m["confidence"] for m in mistakes]
        assert confidences == sorted(confidences, reverse=True)
        assert (report["dir"] / "problem4" / f"{model}_mistakes.png").exists()


def test_problem_3_checks_agree_with_torch_and_hand_formulas(report):
    c3 = report["json"]["problem3"]
    assert c3["loader"]["batches"] == math.ceil(4000 / 64) and c3["loader"]["last_batch"] == 4000 - 62 * 64
    assert c3["batchnorm"]["hand_difference"] < 1e-5
    dropout = c3["dropout"]
    assert abs(dropout["train"]["kept_fraction"] - 0.75) < 5 * math.sqrt(0.25 * 0.75 / dropout["n"])
    assert dropout["train"]["scale_min"] == pytest.approx(4 / 3) and dropout["eval_max_change"] == 0
    assert c3["adam"]["hand_difference"] < 1e-5
    fe = c3["forgotten_eval"]
    assert [row["batch_size"] for row in fe["rows"]] == [250, 100]
    assert "| 250 | " in section_text(report["evidence"], "e-q3g")
    for row in fe["rows"]:  # the cost is paired: eval minus train mode, seed by seed
        costs = np.subtract(fe["eval_accuracy_per_seed"], row["train_mode_accuracy_per_seed"])
        assert row["cost"]["mean"] == pytest.approx(costs.mean())
    effect = fe["larger_minus_smaller_batch"]  # train-mode accuracy at 250 minus at 100, seed by seed
    assert effect["mean"] == pytest.approx(np.mean(np.subtract(fe["rows"][0]["train_mode_accuracy_per_seed"],
                                                               fe["rows"][1]["train_mode_accuracy_per_seed"])))
    if c3["torch_version"] is None:
        pytest.skip("torch not installed: the PyTorch side of problem 3 is not in this report")
    assert max(c3["batchnorm"]["torch_difference"].values()) < 1e-5
    assert c3["adam"]["torch_difference"] < 1e-5 and c3["zero_grad"]["torch_difference"] < 1e-5
    moved = c3["step_without_backward"]["torch_moved"]
    assert moved["grad_none"] == 0 and moved["grad_zeros"] > 1e-4 and moved["grad_stale"] > 1e-4
    assert c3["step_without_backward"]["torch_zeros_minus_optax_zero_gradients"] < 1e-4
    assert dropout["torch_eval_max_change"] == 0
    applied = c3["zero_grad"]["applied_gradient_norm"]
    # The first step applies the same gradient; later ones the growing sum (about k times one gradient).
    assert applied["forgotten"][0] == pytest.approx(applied["correct"][0])
    assert applied["forgotten"][-1] > 1.5 * applied["correct"][-1]


def test_problem_5_table_and_claims_come_from_the_sequence_comparison(report):
    p5 = report["json"]["problem5"]
    text = section_text(report["evidence"], "e-problem-5")
    for row in p5["summary"]:
        low, high = row["accuracy_ci95"]
        assert f"{row['accuracy_mean']:.3f} [{low:.3f}, {high:.3f}]" in text
        values = [r["test_accuracy"] for r in p5["runs"] if r["task"] == row["task"] and r["model"] == row["model"]]
        assert len(values) == len(p5["config"]["seeds"]) and row["accuracy_mean"] == pytest.approx(np.mean(values))
    verdicts = " ".join(section_text(report["evidence"], a) for a in ("e-q5a", "e-q5b", "e-q5c"))
    assert sum(verdicts.count(f"| **{v}** |") for v in ("supported", "refuted", "not shown", "not measured")) \
        == len(p5["claims"])
    assert all(c["verdict"] in ("supported", "refuted", "not shown", "not measured") for c in p5["claims"])
    assert (report["dir"] / "problem5" / "results.png").exists()


def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--dataset", "cifar", "--out", str(tmp_path)]) == 2
    assert main(["--dataset", "fashion_mnist", "--source", "embedded", "--out", str(tmp_path)]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--out", str(blocker / "sub")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in errors if line.startswith("error:")]
    assert len(errors) == 3
    assert "unknown dataset" in errors[0] and "only mnist is embedded" in errors[1] and "not writable" in errors[2]


def test_confusion_matrix_and_most_confident_mistakes_on_a_hand_example():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    assert confusion_matrix(labels, predicted, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    probabilities = np.array([[0.9, 0.1, 0.0], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8],
                              [0.95, 0.0, 0.05], [0.0, 0.4, 0.6]])
    mistakes = most_confident_mistakes(probabilities, labels, count=5)
    assert [(m["index"], m["predicted"]) for m in mistakes] == [(4, 0), (1, 1)]
    assert mistakes[0]["confidence"] == 0.95 and mistakes[0]["probability_of_label"] == 0.05
    with pytest.raises(InputError, match="must lie in"):
        confusion_matrix(labels, np.array([0, 1, 1, 2, 3, 2]), 3)
    with pytest.raises(InputError, match="same shape"):
        confusion_matrix(labels, predicted[:3], 3)


def test_concepts_without_torch_give_the_jax_side_with_a_note(monkeypatch):
    monkeypatch.setattr(concepts, "load_torch", lambda: None)
    batchnorm = concepts.batchnorm_check(steps=3)
    assert batchnorm["reference"] == "hand" and "not installed" in batchnorm["note"]
    assert batchnorm["hand_difference"] < 1e-5 and "torch_difference" not in batchnorm
    # Flax's BatchNorm keeps the biased variance: off by 0.1 * var / (n - 1) per step, never zero.
    assert batchnorm["flax_minus_torch_running_var"] > 1e-4
    adam = concepts.adam_check(steps=20)
    assert adam["reference"] == "hand" and adam["hand_difference"] < 1e-5 and "note" in adam
    loader = concepts.loader_check(100, 32)
    assert (loader["batches"], loader["last_batch"], loader["reference"]) == (4, 4, "hand count")


def test_document_renders_markup_links_tables_figures_and_collapsed_sections(tmp_path):
    assert inline_html("a `x<y` and **b** & [c](#s)") == ('a <code>x&lt;y</code> and <strong>b</strong> &amp; '
                                                         '<a href="#s">c</a>')
    (tmp_path / "f.png").write_bytes(PNG_SIGNATURE + b"rest")
    document = Document("T", [("Device", "cpu")], [
        Section("s", "S", "Q?", [Paragraph("p, see [E](#e)"), Table(["a|b", "n"], [["x", "1.5"]])]),
        Section("e", "E", "", [Figure("f.png", "cap")], 3, collapsible=True)])
    markdown, page = to_markdown(document, {"e": "evidence.md"}), to_html(document, tmp_path)
    assert "| a\\|b | n |" in markdown and "![cap](f.png)" in markdown and "**Question.** Q?" in markdown
    assert "[E](evidence.md#e)" in markdown
    assert base64.b64encode(PNG_SIGNATURE + b"rest").decode() in page and '<td class="num">1.5</td>' in page
    assert '<details id="e"><summary><h3>E</h3></summary>' in page and '<a href="#e">E</a>' in page
