"""The homework's questions, the student's answers where the homework places them (typos kept), and the grade of
each answer: a decision read from the homework's own text, with what the answer covers and what it misses,
pinned by tests/test_grades.py."""
from __future__ import annotations

import dataclasses

QUESTIONS = {
    "1A": "Your softmax classifier outputs ŷ = [0.1, 0.1, 0.0, 0.4, 0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.1] for an "
          "image of the digit '3' (correct label `y = torch.tensor([3])`). Compute the cross-entropy loss.",
    "1B": "Why is the cross-entropy loss used for MNIST classification? Why is MSE a poor substitute? With ŷ_3 = 0.9 "
          "for the correct label y_3 = 1, compute ∂MSE/∂ŷ_k vs. ∂CE/∂ŷ_k. Which loss gives the larger gradient "
          "signal when the network is already confident, and why is that good?",
    "1C": "Why is there no `nn.Softmax()` layer between the final linear layer and `CrossEntropyLoss()`? Shouldn't "
          "classification produce probabilities adding up to 1?",
    "2A": "Fill in the blanks (a) through (g) of the autoencoder's training loop (Adam, lr 0.001, `nn.MSELoss()`, "
          "10 epochs over `train_loader`).",
    "2B": "What is this model learning and why does the loss function (you chose) make sense?",
    "3A": "Which sub-package hosts MNIST? Fill in: from ___ import ___",
    "3B": "Where does Adam live? from ___ import ___",
    "3C": "Which class is responsible for shuffling and batching data during training? "
          "from torch.utils.data import ___",
    "3D": "What happens if `loss.backward()` is missing?",
    "3E": "(No question is printed for E; the answer is about `optimizer.zero_grad()`.) What does it do, and what "
          "happens without it?",
    "3F": "What happens to Dropout and batch normalization during `model.train()` vs `model.eval()`?",
    "3G": "Your model has low training loss and high accuracy but does much worse on the test set; one cause is "
          "forgetting evaluation mode. What line should you add before running inference on the test set?",
    "4": "A Colab notebook the homework links to; its questions are not in the homework's text.",
    "5A": "Each sample is 50 time points x 8 features with a 0/1 label. Why might a Multilayer Perceptron (MLP) be a "
          "poor choice for modeling this dataset?",
    "5B": "When would a CNN be most effective at modeling this dataset? When would it be the least effective?",
    "5C": "Name two other model families that would be a good choice for this dataset. For each, explain what about "
          "the model makes it useful for this type of analysis.",
}

# The student's answers. Where the homework does not print an answer under its question, the comment says where
# it is: problems 1, 2 and 5 put answers after their "You must complete ..." line, and 2A's answers are the
# underlined fill-ins of the listing.
STUDENT = {
    "1A": "(no answer in the homework)",
    # The first paragraph after "You must complete problem 1 without the use of AI tools".
    "1B": "Cross entropy loss penalizes confident wrong predictions more heavily. Using the example given, I see that "
          "cross entropy shows LARGER gradient signal. That is good because it allows for better learning of the "
          "classification.",
    # The second paragraph after that line.
    "1C": "the CrossEntropyLoss() function in Pytorch has the Softmax functionality already embedded in it.",
    # The listing's lines at the blanks, as printed (underlined fill-ins at (d) and (f)); nothing at (c), no (g).
    "2A": "(a) `optimizer.zero grad()` (last line of the loop), (b) `model. train ()`, (c) left empty, "
          "(d) `loss = loss_fn(x_hat, x_)`, (e) `loss.backward()`, (f) `optimizer.__step__()`; the listing has no "
          "(g).",
    # After "You must complete problem 2 without the use of AI tools".
    "2B": "I use an MSE loss function because it is not a classification task but is instead reconstruction task. "
          "[...] MSE is best as it average the distance between predicted vs actual pixels. This model is learning "
          "compressed representation of the numbers in MNIST dataset. It can map the original image 28 x 28 pixel on "
          "to just a few number (i.e 2 number)",
    "3A": "from torchvisions import datasets",
    "3B": "from torch.optim import Adam",
    "3C": "from torch.utils.data import DataLoader",
    "3D": "This function computes the loss gradient every input parameter. Without this the model fail to learn as the "
          "parameters will have no update during optimzer. Step()",
    "3E": "optimzer.zero_grad() clears the computed gradient for every parameter in the parameter. This prevents "
          "accumulation of gradients from previous passes and ensures that model trains on relevant/fresh gradients.",
    "3F": "Batch Normalization uses the learned running statistics in model.eval, whereas, it used batch-specific "
          "stats in model.train. Dropout is enabled is mode.train but is automatically disabled in mode.eval()",
    "3G": "mode.eval() should be called before running the model on the test set",
    "4": "(the notebook is not in the homework)",
    # The last paragraph of the homework, after "You must complete problem 5 without the use of AI tools".
    "5A": "An MLP lacks the ability to extract spatial information from an image. A dog appearing at the bottom of the "
          "image vs the same dog appearing at the top of the image will be learned differently by the MLP. Also, in "
          "an MLP a pixel corresponds to 1 perceptron, which leads to an unmanageable amount of parameters for large "
          "images.",
    "5B": "A CNN would be most effective when trying to detect features from an image such as a person smiling or "
          "frowning etc. Also, positional invariant problems can be solved using a CNN, such as detecting a dog in a "
          "picture no matter where it appears. It would be least effective if the images contain a pattern that "
          "changes with time over the 50 images. Such as temperature rising shown over the 50 images. CNNs struggle "
          "with capturing long-range dependencies across the entire input",
    "5C": "LSTM is well-suited for as task like this. It excels in time series analysis because it can learn and "
          "predict sequential patterns. [...] GRU could also be used, as they are another type of RNNs just like LTSM. "
          "[...] It is not as superior in performance as LTSM but it does not have vanishing gradient problem like "
          "conventional neural networks.",
}

GRADE_NAMES = ("correct", "partly correct", "wrong", "not answered", "not graded")
# The homework gives each problem's points only ("Problem 1 (30 pts)", ..., "HW 3 (Total 200 points)"); the key
# splits them evenly among the problem's questions. A correct answer earns its question's points, a wrong or missing
# one none, and a partly correct one the share of the question's parts it covers: covers / (covers + misses), each
# cover and each miss being one part of the question, named once (``points``).
PROBLEM_POINTS = {"1": 30, "2": 20, "3": 35, "4": 85, "5": 30}
CREDIT = {"correct": 1.0, "wrong": 0.0, "not answered": 0.0}  # "partly correct": its parts (``share``)


@dataclasses.dataclass(frozen=True)
class Grade:
    """The grade of one answer: the decision, a one-line reason, what the answer covers and what it misses (nothing
    when it is correct; something when it is partly correct or wrong). A partly correct grade lists the question's
    parts, each once: those the answer covers and those it misses; its credit is their ratio (``share``)."""

    grade: str
    reason: str
    covers: tuple[str, ...] = ()
    misses: tuple[str, ...] = ()

    def __post_init__(self):
        if self.grade not in GRADE_NAMES:
            raise ValueError(f"grade must be one of {', '.join(GRADE_NAMES)}, got {self.grade!r}")
        if self.grade == "correct" and self.misses:
            raise ValueError(f"a grade of 'correct' misses nothing, got missing {self.misses!r}")
        if self.grade in ("partly correct", "wrong") and not self.misses:
            raise ValueError(f"a grade of {self.grade!r} names what the answer misses")
        if self.grade == "partly correct" and not self.covers:
            raise ValueError("a grade of 'partly correct' names what the answer covers")

    def share(self) -> float | None:
        """The share of the question's points this grade earns: the parts covered over the parts named for a partly
        correct answer, ``CREDIT``'s for the others; None when it is not graded."""
        if self.grade == "partly correct":
            return len(self.covers) / (len(self.covers) + len(self.misses))
        return CREDIT.get(self.grade)

    def record(self) -> dict:
        """As report.json holds it (without the points, which depend on the other questions: ``points``)."""
        return {"grade": self.grade, "grade_reason": self.reason, "covers": list(self.covers),
                "missing": list(self.misses)}


GRADES = {
    "1A": Grade("not answered", "The homework shows no answer to 1A.", misses=("the loss, −ln 0.4 = 0.916 nats",)),
    "1B": Grade("partly correct", "Right loss and intuition (two of five parts); no gradients, no likelihood "
                "reason.",
                covers=("which loss gives the larger signal", "in part why MSE is poor: cross-entropy punishes "
                        "confident mistakes more"),
                misses=("why cross-entropy: maximum likelihood", "the gradients (∂CE/∂ŷ_3 = −1.111, ∂MSE/∂ŷ_3 = −0.2 "
                        "summed)", "why a larger signal helps, beyond 'better learning'")),
    "1C": Grade("partly correct", "Answers why no softmax layer (one of two questions); not whether outputs "
                "should sum to 1.",
                covers=("CrossEntropyLoss applies (log-)softmax itself",),
                misses=("the second question: probabilities are softmax(logits), computed when needed",)),
    "2A": Grade("partly correct", "Five of six blanks right; (c) is empty, so `x` is undefined.",
                covers=("(a)", "(b)", "(d)", "(e)", "(f)"),
                misses=("(c) `x = images.view(images.size(0), -1)` (or `x = images`): without it the loop stops with "
                        "a NameError",)),
    "2B": Grade("correct", "What it learns (a 2-number code) and why MSE (pixel-wise reconstruction).",
                covers=("a compressed 2-number code", "MSE for a pixel-wise reconstruction")),
    "3A": Grade("correct", "torchvision.datasets; 'torchvisions' is a spelling slip.",
                covers=("torchvision.datasets",)),
    "3B": Grade("correct", "torch.optim.Adam, as asked.", covers=("torch.optim.Adam",)),
    "3C": Grade("correct", "DataLoader, as asked.", covers=("DataLoader",)),
    "3D": Grade("correct", "No gradients, so step() updates nothing: right.",
                covers=("no gradients", "no update", "no learning")),
    "3E": Grade("correct", "Clears accumulated gradients so each step uses fresh ones: right.",
                covers=("clears .grad", "stops accumulation")),
    "3F": Grade("correct", "Both layers in both modes ('learned' is loose: running statistics are averages).",
                covers=("Dropout on in train, off in eval", "BatchNorm: batch statistics in train, running in eval")),
    "3G": Grade("correct", "model.eval(); 'mode.eval()' is a spelling slip, as in 3A.",
                covers=("model.eval() before inference",)),
    "4": Grade("not graded", "The notebook is not in the homework's text."),
    "5A": Grade("partly correct", "Right that position matters (measured), but argued for images; the size "
                "argument is minor at 50 x 8.",
                covers=("a pattern at a new position is learned anew (no weights shared across positions)",
                        "parameters grow with the input"),
                misses=("that the positions are the 50 time steps (it argues about images)", "that at 400 inputs "
                        "the parameters (12,800 in the first layer) are manageable")),
    "5B": Grade("partly correct", "Right about local patterns and long range, but about images; its example, a "
                "steady rise, is no CNN's worst case.",
                covers=("most effective: local patterns anywhere", "least effective: steps farther apart than its "
                        "filters reach"),
                misses=("that a 1-D CNN slides over the 50 steps, the 8 features as channels (it argues about images)",
                        "its example: a steady rise shows at every step, within a short filter's reach, so it is no "
                        "CNN's worst case")),
    "5C": Grade("partly correct", "LSTM and GRU, each with a reason, are one family (gated recurrent networks); "
                "the GRU is not shown weaker.",
                covers=("one family: recurrent networks (LSTM and GRU both)", "why: they learn sequential patterns, "
                        "and gating eases (not removes) vanishing gradients"),
                misses=("a second family, such as attention-based Transformers", "why a second family suits the "
                        "data")),
}


def points(key: str) -> tuple[float, float] | None:
    """(points earned, points possible) of a question: its problem's points split evenly among the problem's
    questions, credited by ``Grade.share`` (for a partly correct answer, covers / (covers + misses)); None for a
    question that is not graded."""
    if GRADES[key].share() is None:
        return None
    problem = key[0]
    possible = PROBLEM_POINTS[problem] / sum(1 for other in GRADES if other[0] == problem)
    return GRADES[key].share() * possible, possible
