"""Payload sensitivity classifier (patent FIG. 2.3 step 242).

Decides how sensitive a prompt is, so the variant selection agent can send
it to a secured or a public variant. Pure Python + numpy/scikit-learn; no
Django import, so the console, the API, the benchmarks and the simulator
can all call it.

    from variants.sensitivity import load_classifier, train_classifier
    metrics = train_classifier(Path("var/artifacts/sensitivity/latest"), seed=0)
    clf = load_classifier("var/artifacts/sensitivity/latest")
    result = clf.classify("My SSN is 536-22-8171")
    result.score, result.sensitive, result.categories, result.hits
"""

from .model import (
    DEFAULT_THRESHOLD,
    Classifier,
    Hit,
    SensitivityResult,
    load_classifier,
    train_classifier,
)
from .patterns import CATEGORIES, SCAN_CAP_CHARS

__all__ = [
    "CATEGORIES",
    "DEFAULT_THRESHOLD",
    "SCAN_CAP_CHARS",
    "Classifier",
    "Hit",
    "SensitivityResult",
    "load_classifier",
    "train_classifier",
]
