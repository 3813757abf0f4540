"""Every proof the README's concept map and bad-input table name is a test that exists."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def named_tests():
    readme = (ROOT / "README.md").read_text()
    return sorted(set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", readme)))


def test_concept_map_covers_the_homework_names():
    readme = (ROOT / "README.md").read_text()
    for name in ("datasets.MNIST", "DataLoader", "optim.Adam", "loss.backward()", "optimizer.step()",
                 "optimizer.zero_grad()", "model.train()", "model.eval()", "nn.Dropout", "nn.BatchNorm1d",
                 "nn.BatchNorm2d", "nn.Conv2d", "nn.Linear", "nn.Flatten", "nn.ReLU", "nn.Sequential",
                 "nn.CrossEntropyLoss", "nn.MSELoss", "torch.no_grad()"):
        assert name in readme, name


def test_every_named_test_exists():
    found = named_tests()
    assert len(found) > 20
    for path, name in found:
        source = (ROOT / path).read_text()
        if name:
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} does not exist"
