"""Every grade of the key, pinned, with the words of the homework (../shared/HOMEWORK.md) that decide it; and the
rule that a grade of correct misses nothing while a partly correct one names what it misses."""
import pytest

from jaxhw.report.questions import GRADE_NAMES, GRADES, PROBLEM_POINTS, STUDENT, Grade, points

PINNED = {
    # 1A: the two paragraphs after "You must complete problem 1 without the use of AI tools" answer B ("Cross
    # entropy loss penalizes ... LARGER gradient signal") and C ("the CrossEntropyLoss() function ... Softmax
    # functionality"); nothing computes the loss of the vector.
    "1A": "not answered",
    # 1B asks why cross-entropy, why MSE is poor, the gradients, which is larger and why that is good; the answer
    # says "cross entropy shows LARGER gradient signal" (which is larger) and "penalizes confident wrong predictions
    # more heavily" (in part why MSE is poor); "it allows for better learning" is not why: two of five parts.
    "1B": "partly correct",
    # 1C asks two questions: "why is there no nn.Softmax() layer" ("has the Softmax functionality already
    # embedded in it") and "Shouldn't classification produce probabilities adding up to 1?" (not answered).
    "1C": "partly correct",
    # 2A: the listing carries the fill-ins, underlined as in 3A-3C: "loss_fn(x_hat, x_)" at (d),
    # "optimizer.__step__()" at (f), "model. train ()" at (b), "loss.backward()" at (e), "optimizer.zero grad()" at
    # (a); "# (c)" stands alone, so "x hat = model(x)" uses an x that is never defined; there is no (g).
    "2A": "partly correct",
    # 2B: "This model is learning compressed representation ... (i.e 2 number)" and "MSE ... average the distance
    # between predicted vs actual pixels" because "it is ... reconstruction task": both parts answered.
    "2B": "correct",
    # 3A: "from torchvisions import datasets": the right package and module, one letter off.
    "3A": "correct",
    "3B": "correct",  # "from _torch.optim _ import _Adam____"
    "3C": "correct",  # "from torch.utils.data import __DataLoader"
    # 3D: "Without this the model fail to learn as the parameters will have no update during optimzer. Step()".
    "3D": "correct",
    # 3E: "clears the computed gradient for every parameter ... prevents accumulation of gradients".
    "3E": "correct",
    # 3F: "uses the learned running statistics in model.eval, whereas, it used batch-specific stats in
    # model.train" and "Dropout is enabled is mode.train but is automatically disabled in mode.eval()".
    "3F": "correct",
    # 3G: "mode.eval() should be called before running the model on the test set": the same slip as 3A's.
    "3G": "correct",
    # 4: "Problem 4 (85 pts): Colab notebook" and a link; the notebook's questions are not in the text.
    "4": "not graded",
    # 5A: the last paragraph, after "You must complete problem 5 ...", answers it: "A dog appearing at the bottom
    # ... vs ... the top ... will be learned differently" (right, and measured) but it argues about "an image",
    # and "unmanageable amount of parameters for large images" does not hold for 50 x 8 inputs.
    "5A": "partly correct",
    # 5B: "positional invariant problems can be solved using a CNN" (right) and "CNNs struggle with capturing
    # long-range dependencies" (right), but "Such as temperature rising shown over the 50 images" is a pattern a
    # CNN handles, and the answer is about images: two parts of four (5 of 10 points; the key gave 7.5 with the
    # same two covers and two misses before its credit followed the parts).
    "5B": "partly correct",
    # 5C: "LSTM is well-suited" and "GRU could also be used, as they are another type of RNNs just like LTSM":
    # two models of one family, where the question asks for two families, each explained: two parts of four.
    "5C": "partly correct",
}


def test_every_question_has_its_pinned_grade():
    assert {key: grade.grade for key, grade in GRADES.items()} == PINNED


def test_a_correct_grade_misses_nothing_and_a_partial_one_names_its_gaps():
    for key, grade in GRADES.items():
        assert grade.grade in GRADE_NAMES and grade.reason, key
        if grade.grade == "correct":
            assert grade.misses == () and grade.covers, key
        if grade.grade in ("partly correct", "wrong"):
            assert grade.misses and grade.covers, key
        assert grade.record()["grade_reason"] == grade.reason and grade.record()["missing"] == list(grade.misses)
    with pytest.raises(ValueError, match="misses nothing"):
        Grade("correct", "reason", covers=("a",), misses=("b",))
    with pytest.raises(ValueError, match="names what the answer misses"):
        Grade("partly correct", "reason", covers=("a",))
    with pytest.raises(ValueError, match="must be one of"):
        Grade("excellent", "reason")


def test_partial_credit_is_the_parts_covered_over_the_parts_named():
    # The rule the key states under its grades table, recomputed from each grade's lists.
    for key, grade in GRADES.items():
        found = points(key)
        if grade.grade == "partly correct":
            possible = PROBLEM_POINTS[key[0]] / sum(1 for other in GRADES if other[0] == key[0])
            parts = len(grade.covers) + len(grade.misses)
            assert found == pytest.approx((possible * len(grade.covers) / parts, possible)), key
            assert len(set(grade.covers + grade.misses)) == parts, key  # each part named once
    # 2A: the five blanks filled in are five parts, the empty (c) the sixth.
    assert GRADES["2A"].covers == ("(a)", "(b)", "(d)", "(e)", "(f)")
    assert [part[:3] for part in GRADES["2A"].misses] == ["(c)"]
    assert points("2A") == pytest.approx((50 / 6, 10)) and points("1B") == pytest.approx((4, 10))
    assert points("5B") == pytest.approx((5, 10)) and points("4") is None
    with pytest.raises(ValueError, match="names what the answer covers"):
        Grade("partly correct", "reason", misses=("b",))


def test_the_answers_placed_after_their_problem_are_the_students():
    # The homework puts them after "You must complete problem ..." lines; the key grades them where they are.
    assert STUDENT["1B"].startswith("Cross entropy loss penalizes confident wrong predictions")
    assert STUDENT["1C"].startswith("the CrossEntropyLoss() function in Pytorch")
    assert STUDENT["5A"].startswith("An MLP lacks the ability to extract spatial information")
    assert "left empty" in STUDENT["2A"] and "loss_fn(x_hat, x_)" in STUDENT["2A"]
