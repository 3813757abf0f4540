"""Every proof the concept map, the bad-input table and the other docs name is a test that exists, and the
concept map covers every PyTorch name the homework uses."""
import json
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


def concept_map_rows() -> list[str]:
    """The PyTorch column of every row of the concept map's table."""
    lines = (ROOT / "docs" / "concept-map.md").read_text().splitlines()
    return [line[2:].split(" | ")[0] for line in lines if line.startswith("| ") and not line.startswith("| PyTorch |")]


def test_every_concept_map_row_has_its_heading_in_the_pytorch_to_jax_notebook_in_order():
    notebook = json.loads((ROOT / "notebooks" / "pytorch_to_jax.ipynb").read_text())
    headings = [line.lstrip("#").strip() for cell in notebook["cells"] if cell["cell_type"] == "markdown"
                for line in "".join(cell["source"]).splitlines() if line.startswith("#")]
    rows = concept_map_rows()
    assert len(rows) > 20
    places = []
    for row in rows:
        found = [index for index, heading in enumerate(headings) if heading == row]
        assert len(found) == 1, f"concept-map row {row} has {len(found)} headings in notebooks/pytorch_to_jax.ipynb"
        places.append(found[0])
    assert places == sorted(places), "the notebook's sections are not in the concept map's order"
