"""`python -m jaxhw`: the homework report answers every question with numbers checked against hand
derivations, PyTorch and independent code paths; the report's pieces (document, confusion matrix, mistakes)."""
import base64
import json
import math
import re

import jax
import numpy as np
import pytest

from jaxhw.__main__ import main
from jaxhw.errors import InputError
from jaxhw.experiments import concepts
from jaxhw.experiments.classification import confusion_matrix, most_confident_mistakes
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

QUESTION_ANCHORS = ("q1a", "q1b", "q1c", "q2a", "q2b", "q3a", "q3b", "q3c", "q3d", "q3e", "q3f", "q3g", "problem-4",
                    "q5a", "q5b", "q5c")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What counts as computed evidence in a section: a number with 3 decimals unless named here.
EVIDENCE = {"q3a": r"uint8 images N x 28 x 28 x 1", "q3b": r"\d\.\de-\d\d", "q3c": r"jaxhw makes \d+ batches"}


@pytest.fixture(scope="module")
def report(quick_report):
    return {"dir": quick_report, "html": (quick_report / "index.html").read_text(encoding="utf-8"),
            "md": (quick_report / "report.md").read_text(encoding="utf-8"),
            "json": json.loads((quick_report / "report.json").read_text())}


def section_text(markdown: str, anchor: str) -> str:
    """The Markdown of one question's section: from its anchor to the next anchor."""
    start = markdown.index(f'<a id="{anchor}"></a>')
    following = markdown.find('<a id="', start + 1)
    return markdown[start:following if following != -1 else None]


def test_every_question_gives_the_answer_first_then_evidence_the_student_answer_and_a_grade(report):
    for anchor in QUESTION_ANCHORS:
        assert f'<section id="{anchor}">' in report["html"], anchor
        text = section_text(report["md"], anchor)
        blocks = [block for block in text.split("\n\n") if block.strip()]
        # The anchor and heading, the question, then the answer.
        assert blocks[2].startswith("**Question.**") and blocks[3].startswith("**Answer.**"), (anchor, blocks[:4])
        assert re.search(EVIDENCE.get(anchor, r"\d\.\d{3}"), text), f"{anchor} shows no computed evidence"
        assert "Student's answer" in text and "> **Grade.**" in text, anchor
    assert "PyTorch is not installed" not in report["md"].split('<a id="overview">')[1]  # said once, in the header


def test_grades_are_the_pinned_decisions_and_report_json_carries_them(report):
    grades = report["json"]["grades"]
    assert set(grades) == {"1A", "1B", "1C", "2A", "2B", "3A", "3B", "3C", "3D", "3E", "3F", "3G", "4", "5A", "5B",
                           "5C"}
    for key in ("1A", "2A", "5A"):  # the homework shows no answer under these
        assert grades[key]["grade"] == "not answered", key
    for key in ("3B", "3C", "3D", "3E", "3F"):  # right as written
        assert grades[key]["grade"] == "correct", key
    assert grades["3A"]["grade"] == grades["3G"]["grade"]  # "torchvisions" and "mode.eval()": the same kind of slip
    assert all(entry["grade"] in ("correct", "partly correct", "wrong", "not answered") and entry["grade_reason"]
               for entry in grades.values())
    for key, anchor in (("1A", "q1a"), ("3D", "q3d"), ("5C", "q5c")):
        assert f"> **Grade.** **{grades[key]['grade']}.**" in section_text(report["md"], anchor)


def test_problem_1a_leads_with_the_intended_answer(report):
    vector = [0.1, 0.1, 0.0, 0.4, 0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.1]
    a = report["json"]["problem1"]["problem_1a"]
    assert a["entries"] == 11 and a["sum"] == pytest.approx(math.fsum(vector)) == pytest.approx(1.05)
    assert a["values"]["as_given"] == pytest.approx(-math.log(0.4))
    assert a["values"]["renormalized"] == pytest.approx(-math.log(0.4 / 1.05))
    # Dropping any one of the five 0.05 entries (indices 4-8) leaves ten entries summing to 1 with 0.4 at index 3.
    assert a["one_entry_too_many"] == [4, 5, 6, 7, 8]
    text = section_text(report["md"], "q1a")
    answer = text.split("**Answer.**")[1].split("\n\n")[0]
    assert f"{-math.log(0.4):.4f} nats" in answer and "one 0.05 too many" in answer
    assert "1.1" not in text and f"{-math.log(0.4 / 1.05):.4f}" in text


def test_problem_1b_states_the_summed_mse_gradients_derived_by_hand(report):
    text = section_text(report["md"], "q1b")
    # At y_hat_3 = 0.9, the rest 0.1 / 9 each: dCE/dy_hat_3 = -1/0.9; summed MSE: 2 (0.9 - 1) = -0.2 on y_hat, and
    # on the logits -2 p ((1 - p)^2 + sum_k p_k^2) = -2 * 0.9 * (0.01 + 9 (0.1 / 9)^2) = -0.02; CE: 0.9 - 1.
    assert f"{-1 / 0.9:.4f}" in text and f"{2 * (0.9 - 1):.4f}" in text
    assert f"{-2 * 0.9 * (0.01 + 9 * (0.1 / 9) ** 2):.4f}" in text and f"{0.9 - 1:.4f}" in text
    assert "(5x)" in text and "convex" in text
    assert "![" in text and "problem1/gradients.png" in text


def test_problem_1c_bounds_and_vanishing_double_softmax_gradient_derived_independently(report):
    double = report["json"]["problem1"]["problem_1c"]["double_softmax"]
    low, high = math.log(math.e + 9) - 1, math.log(math.e + 9)  # -ln(e / (e + 9)) and ln(e + 9)
    assert (round(low, 3), round(high, 3)) == (1.461, 2.461)
    assert double["bounds_formula"] == pytest.approx([low, high])
    assert double["bounds_at_logit_60"] == pytest.approx([low, high], abs=1e-6)
    text = section_text(report["md"], "q1c")
    assert "1.461" in text and "2.461" in text and "does not contain a softmax layer" not in text
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
            # |dL/dz_true| = p (1 - p) |g_true - <p, g>| <= p (1 - p) * 2, and p (1 - p) <= 9 e^-10 = 4.1e-4
            # at a margin of 10 either way.
            assert abs(by_hand) < 2 * 9 * math.exp(-10)
    wrong = next(row for row in double["rows"] if row["margin"] <= -10)
    assert abs(wrong["dL_dz_true"]["cross_entropy_on_logits"]) > 0.99


def test_header_states_device_versions_data_and_time(report):
    results = report["json"]
    head = report["md"].split('<a id="overview">')[0]
    assert repr(jax.devices()) in head and f"jax {jax.__version__}" in head
    assert "embedded:mnist_5k" in head and "4,000 training and 1,000 test" in head
    assert f"{results['wall_seconds']:.0f} s wall clock" in head and "s CPU" in head
    assert results["wall_seconds"] > 0 and results["cpu_seconds"] > 0
    assert set(results["stages"]) == {"data", "problem1", "problem2", "problem3", "problem4", "problem5"}


def test_html_is_self_contained_and_every_figure_is_an_embedded_png(report):
    html = report["html"]
    sources = re.findall(r'<img src="([^"]+)"', html)
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report["md"])
    assert len(sources) == len(figures) >= 12
    for source, path in zip(sources, figures):
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]) == (report["dir"] / path).read_bytes()
        assert (report["dir"] / path).read_bytes().startswith(PNG_SIGNATURE)
    assert not re.search(r'(src|href)="(?!data:|#)', html), "the page must not load anything from elsewhere"


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
    assert [row["batch_size"] for row in c3["forgotten_eval"]["rows"]] == [250, 100]
    assert "| 250 | " in section_text(report["md"], "q3g") and "| 100 | " in section_text(report["md"], "q3g")
    for row in c3["forgotten_eval"]["rows"]:  # the cost is paired: eval minus train mode, seed by seed
        costs = np.subtract(c3["forgotten_eval"]["eval_accuracy_per_seed"], row["train_mode_accuracy_per_seed"])
        assert row["cost"]["mean"] == pytest.approx(costs.mean())
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
    text = section_text(report["md"], "problem-5")
    for row in p5["summary"]:
        low, high = row["accuracy_ci95"]
        assert f"{row['accuracy_mean']:.3f} [{low:.3f}, {high:.3f}]" in text
        values = [r["test_accuracy"] for r in p5["runs"] if r["task"] == row["task"] and r["model"] == row["model"]]
        assert len(values) == len(p5["config"]["seeds"]) and row["accuracy_mean"] == pytest.approx(np.mean(values))
    verdicts = " ".join(section_text(report["md"], a) for a in ("q5a", "q5b", "q5c"))
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


def test_document_renders_markup_tables_and_figures(tmp_path):
    assert inline_html("a `x<y` and **b** & c") == "a <code>x&lt;y</code> and <strong>b</strong> &amp; c"
    (tmp_path / "f.png").write_bytes(PNG_SIGNATURE + b"rest")
    document = Document("T", [("Device", "cpu")], [Section("s", "S", "Q?", [
        Paragraph("p"), Table(["a|b", "n"], [["x", "1.5"]]), Figure("f.png", "cap")])])
    markdown, page = to_markdown(document), to_html(document, tmp_path)
    assert "| a\\|b | n |" in markdown and "![cap](f.png)" in markdown and "**Question.** Q?" in markdown
    assert base64.b64encode(PNG_SIGNATURE + b"rest").decode() in page and '<td class="num">1.5</td>' in page
