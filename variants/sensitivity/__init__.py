"""Payload sensitivity classifier (patent FIG. 2.3 step 242).

Decides how sensitive a prompt is, so the variant selection agent can send
it to a secured or a public variant. Pure Python + numpy/scikit-learn; no
Django import, so the console, the API, the benchmarks and the simulator
can all call it.

    from variants.sensitivity import load_classifier, train_classifier
    metrics = train_classifier(Path("var/artifacts/sensitivity/latest"), seed=0)
    clf = load_classifier("var/artifacts/sensitivity/latest")
    result = clf.classify("My SSN is 536-22-8171")
    result.score        # calibrated probability in [0, 1]
    result.sensitive    # score >= result.threshold (0.5 unless the artifact says otherwise)
    result.categories   # e.g. ["government_id"], names from CATEGORIES
    result.hits         # [Hit(category, start, end)], spans into the text

Modules: `patterns` (validated recognisers and cue detection), `features`
(dense evidence features + word n-grams over a trained vocabulary), `synth`, `templates`
and `values` (the seeded training corpus), `model` (training, the
pickle-free artifact `weights.npz` + `meta.json`, and inference).

Categories: a validated identifier (card passing Luhn, IBAN passing
mod-97, issuable SSN, e-mail, phone, key, ...) is always reported; cue-only
evidence (a health word next to "my", a name after "I'm") is reported only
when the score reaches the threshold. Text is scanned up to
`SCAN_CAP_CHARS` (100,000) characters; n-grams come from the first 192
tokens. `classify` never raises: on an internal error it returns score 1.0
with `failed_closed=True`.
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
