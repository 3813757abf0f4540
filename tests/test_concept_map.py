"""Every proof the concept map, the bad-input table and the other docs name is a test that exists, and the
concept map covers every PyTorch name the homework uses."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def named_tests():
    return sorted({found for page in DOCS for found in re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`",
                                                                  page.read_text())})


def test_concept_map_covers_the_homework_names():
    concept_map = (ROOT / "docs" / "concept-map.md").read_text()
    for name in ("datasets.MNIST", "DataLoader", "optim.Adam", "loss.backward()", "optimizer.step()",
                 "optimizer.zero_grad()", "model.train()", "model.eval()", "nn.Dropout", "nn.BatchNorm1d",
                 "nn.BatchNorm2d", "nn.Conv2d", "nn.Linear", "nn.Flatten", "nn.ReLU", "nn.Sequential",
                 "nn.CrossEntropyLoss", "nn.MSELoss", "torch.no_grad()"):
        assert name in concept_map, name


def test_every_named_test_exists():
    found = named_tests()
    assert len(found) > 20
    for path, name in found:
        source = (ROOT / path).read_text()
        if name:
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} does not exist"


def test_docs_link_only_to_files_that_exist():
    for page in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_docs_state_no_dates_times_or_issue_numbers():
    for page in DOCS:
        text = page.read_text()
        assert not re.search(r"\b\d{1,2}:\d{2} UTC|\b20\d\d-\d\d-\d\d\b|\bissue \d+", text), page.name
