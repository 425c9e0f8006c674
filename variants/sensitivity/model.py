"""Training, artifact format and inference of the payload sensitivity model.

FIG. 2.3 step 242: "a trained AI model such as a logistic regression model"
decides how sensitive a prompt is. Training fits an L2-regularised logistic
regression (liblinear's objective, solved by SciPy's L-BFGS-B so that the
weights of evidence features stay at or above zero, see
`features.nonnegative_dense`) over the features of `features.py` on the corpus
of `synth.py`, then Platt-scales the decision value on a held-out calibration
split. The artifact holds no pickle: `weights.npz` (arrays only, loaded
with `allow_pickle=False`) and `meta.json` (version, creation time,
feature-config hash, training settings, metrics, threshold). Inference
scores the n-grams with `features.NgramScorer` (token ids cached, one numpy
sort and binary search per call, no n-gram set built) plus a short dense
product; `decision(extract(text))`, the path training uses, gives the same
value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import features as F
from .patterns import CATEGORIES, SCAN_CAP_CHARS, Scan, scan

if TYPE_CHECKING:  # scipy is needed for training only; inference imports numpy alone
    from scipy import sparse

ARTIFACT_FORMAT = 1
DEFAULT_THRESHOLD = 0.5
# Dense features are multiplied by this before training and inference. With
# one shared L2 penalty this lets the validated-pattern features carry
# larger effective weights than any single n-gram, which is what keeps the
# model from leaning on template wording.
DENSE_SCALE = 3.0
MIN_NGRAM_DOCUMENTS = 3
DEFAULT_C = 2.0


class Hit(NamedTuple):
    """A span of `text[start:end]` that is evidence for `category`."""

    category: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class SensitivityResult:
    """How sensitive a prompt is, and why."""

    score: float
    categories: list[str]
    hits: list[Hit]
    threshold: float = DEFAULT_THRESHOLD
    # True when classification itself failed and the score was forced to 1.0
    # so that the prompt fails closed (goes to the secured variant).
    failed_closed: bool = False

    @property
    def sensitive(self) -> bool:
        """Return True when the score meets the threshold (FIG. 2.3 step 242)."""
        return self.score >= self.threshold


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass
class Classifier:
    """A trained sensitivity model ready for `classify`."""

    # Keys are features.Gram: strings, and (word, word) pairs for bigrams.
    ngram_weights: dict[F.Gram, float]
    dense_weights: list[float]
    intercept: float
    calibration: tuple[float, float]
    threshold: float = DEFAULT_THRESHOLD
    meta: dict = field(default_factory=dict)
    # Built on the first `classify` from `ngram_weights` (and rebuilt if that dict is replaced).
    _scorer: F.NgramScorer | None = field(default=None, init=False, repr=False, compare=False)
    _scorer_source: dict | None = field(default=None, init=False, repr=False, compare=False)

    # -- inference ------------------------------------------------------
    def decision(self, extracted: F.Features) -> float:
        """Return the uncalibrated decision value of the linear model."""
        grams = extracted.ngrams
        weights = self.ngram_weights
        total = 0.0
        if grams:
            total = math.fsum(map(weights.get, grams, repeat(0.0))) / math.sqrt(len(grams))
        total += self._dense_part(extracted.dense)
        return total + self.intercept

    def _dense_part(self, dense: list[float]) -> float:
        if len(dense) != len(self.dense_weights):
            raise ValueError(f"{len(dense)} dense features for {len(self.dense_weights)} weights")
        return DENSE_SCALE * math.fsum(map(operator.mul, self.dense_weights, dense))

    def _fast_decision(self, result: Scan) -> float:
        """`decision(F.extract(text))` for the scan of `text`, without building the n-gram set."""
        scorer = self._scorer
        if scorer is None or self._scorer_source is not self.ngram_weights:
            scorer = F.NgramScorer(self.ngram_weights)
            self._scorer, self._scorer_source = scorer, self.ngram_weights
        total, count = scorer.score(result.tokens)
        ngram_part = total / math.sqrt(count) if count else 0.0
        ngram_part += self._dense_part(F.dense_features(result.text, result))
        return ngram_part + self.intercept

    def score_features(self, extracted: F.Features) -> float:
        a, b = self.calibration
        return _sigmoid(a * self.decision(extracted) + b)

    def classify(self, text: str) -> SensitivityResult:
        """Return the calibrated sensitivity score, categories and evidence spans.

        Never raises: non-string input is coerced, text beyond
        `SCAN_CAP_CHARS` is not scanned, and an internal error yields a
        fail-closed result with score 1.0.
        """
        try:
            if not isinstance(text, str):
                text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text or "")
            result = scan(text)
            a, b = self.calibration
            score = _sigmoid(a * self._fast_decision(result) + b)
            extracted = F.Features(set(), [], result)
            return SensitivityResult(
                score=score,
                categories=_categories(extracted, score >= self.threshold),
                hits=_hits(extracted, score >= self.threshold),
                threshold=self.threshold,
            )
        except Exception:  # a classifier error must fail closed, never crash routing
            return SensitivityResult(1.0, [], [], self.threshold, failed_closed=True)

    def classify_many(self, texts: Iterable[str]) -> list[SensitivityResult]:
        return [self.classify(t) for t in texts]

    # -- persistence ----------------------------------------------------
    def _named_weights(self) -> list[tuple[str, float]]:
        return sorted((F.gram_name(g), w) for g, w in self.ngram_weights.items())

    def weights_digest(self) -> str:
        """Return a SHA-256 over every weight; equal digests mean equal models."""
        h = hashlib.sha256()
        for name, weight in self._named_weights():
            h.update(name.encode("utf-8", "surrogatepass") + b"\0")
            h.update(np.float64(weight).tobytes())
        h.update(np.array(self.dense_weights, dtype=np.float64).tobytes())
        h.update(np.array([self.intercept, *self.calibration], dtype=np.float64).tobytes())
        return h.hexdigest()

    def save(self, out_dir: Path | str) -> Path:
        """Write `weights.npz` and `meta.json` into `out_dir` and return it."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        named = self._named_weights()
        weights_path = out / "weights.npz"
        with weights_path.open("wb") as fh:
            np.savez_compressed(
                fh,
                ngram_vocab=np.array([name for name, _ in named], dtype=np.str_),
                ngram_weights=np.array([w for _, w in named], dtype=np.float64),
                dense_weights=np.array(self.dense_weights, dtype=np.float64),
                intercept=np.array([self.intercept], dtype=np.float64),
                calibration=np.array(self.calibration, dtype=np.float64),
            )
        meta = dict(self.meta)
        meta["threshold"] = self.threshold
        meta["weights_digest"] = self.weights_digest()
        (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return out


def _categories(extracted: F.Features, sensitive: bool) -> list[str]:
    """Categories with evidence in the text.

    Validated identifiers always count; cue-only evidence (a health word
    near "my", a name after "I'm") counts only when the model judged the
    prompt sensitive, so "how does a credit score work?" reports nothing.
    """
    found = {e.category for e in extracted.scan.evidence if e.strong or sensitive}
    return [c for c in CATEGORIES if c in found]


def _hits(extracted: F.Features, sensitive: bool) -> list[Hit]:
    seen: set[Hit] = set()
    out: list[Hit] = []
    for e in sorted(extracted.scan.evidence, key=lambda e: (e.start, e.end, e.category)):
        if not (e.strong or sensitive):
            continue
        hit = Hit(e.category, e.start, e.end)
        if hit not in seen:
            seen.add(hit)
            out.append(hit)
    return out


def load_classifier(path: Path | str) -> Classifier:
    """Load an artifact directory written by `train_classifier` or `Classifier.save`.

    Raises ValueError when the artifact was built with a different feature
    configuration than this code computes, since its weights would then
    multiply the wrong columns.
    """
    directory = Path(path)
    meta = json.loads((directory / "meta.json").read_text())
    if meta.get("feature_config_hash") != F.feature_config_hash():
        raise ValueError(
            f"artifact {directory} was trained with feature config "
            f"{meta.get('feature_config_hash')}, this code computes {F.feature_config_hash()}"
        )
    with np.load(directory / "weights.npz", allow_pickle=False) as data:
        vocab = data["ngram_vocab"].tolist()
        weights = data["ngram_weights"].tolist()
        dense = data["dense_weights"].tolist()
        intercept = float(data["intercept"][0])
        calibration = tuple(float(x) for x in data["calibration"])
    if len(dense) != len(F.DENSE_NAMES):
        raise ValueError(
            f"artifact {directory} has {len(dense)} dense weights, expected {len(F.DENSE_NAMES)}"
        )
    return Classifier(
        ngram_weights={F.gram_from_name(name): w for name, w in zip(vocab, weights, strict=True)},
        dense_weights=dense,
        intercept=intercept,
        calibration=(calibration[0], calibration[1]),
        threshold=float(meta.get("threshold", DEFAULT_THRESHOLD)),
        meta=meta,
    )


# ---------------------------------------------------------------------------
# Training


def _design_matrix(rows: list[F.Features], vocab: dict[F.Gram, int]) -> sparse.csr_matrix:
    from scipy import sparse

    n_ngrams = len(vocab)
    n_dense = len(F.DENSE_NAMES)
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for row in rows:
        if row.ngrams:
            norm = 1.0 / math.sqrt(len(row.ngrams))
            cols = sorted(vocab[g] for g in row.ngrams if g in vocab)
            indices.extend(cols)
            data.extend([norm] * len(cols))
        for j, value in enumerate(row.dense):
            if value:
                indices.append(n_ngrams + j)
                data.append(DENSE_SCALE * value)
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.array(data, dtype=np.float64), np.array(indices, dtype=np.int64), np.array(indptr)),
        shape=(len(rows), n_ngrams + n_dense),
    )


def _fit_logistic(X: sparse.csr_matrix, y: np.ndarray, *, C: float, n_free: int) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression with the evidence weights bounded at zero.

    Minimises ``C * sum(log(1 + exp(-s * (X w + b)))) + ||w||^2 / 2`` (s = +-1; the objective
    of scikit-learn's liblinear solver, with the intercept left unpenalised) by L-BFGS-B. The
    first ``n_free`` columns (n-grams) are free; the dense columns after them are bounded
    below by zero where `features.nonnegative_dense` says so.
    """
    from scipy.optimize import minimize

    n, d = X.shape
    signs = np.where(y == 1, 1.0, -1.0)
    Xt = X.T.tocsr()

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:d], params[d]
        margin = signs * (X @ w + b)
        # log(1 + exp(-m)) and its derivative, stable for large |m|
        loss = np.logaddexp(0.0, -margin)
        slope = -signs * np.exp(-np.logaddexp(0.0, margin))
        grad = np.empty(d + 1)
        grad[:d] = C * (Xt @ slope) + w
        grad[d] = C * slope.sum()
        return float(C * loss.sum() + 0.5 * w @ w), grad

    bounds = (
        [(None, None)] * n_free
        + [(0.0, None) if bound else (None, None) for bound in F.nonnegative_dense()]
        + [(None, None)]
    )
    result = minimize(
        objective, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-10, "gtol": 1e-6},
    )  # fmt: skip
    return result.x[:d], float(result.x[d])


def _metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    predicted = scores >= threshold
    tp = int(np.sum(predicted & (labels == 1)))
    fp = int(np.sum(predicted & (labels == 0)))
    fn = int(np.sum(~predicted & (labels == 1)))
    tn = int(np.sum(~predicted & (labels == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out = {
        "n": int(len(labels)),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "accuracy": round((tp + tn) / max(1, len(labels)), 4),
        "false_positive_rate": round(fp / max(1, fp + tn), 4),
        "brier": round(float(brier_score_loss(labels, scores)), 4),
    }
    if len(set(labels.tolist())) == 2:
        out["roc_auc"] = round(float(roc_auc_score(labels, scores)), 4)
    return out


def train_classifier(
    out_dir: Path | str,
    *,
    seed: int = 0,
    n_examples: int = 30_000,
    progress: Callable[[str], None] | None = None,
    C: float = DEFAULT_C,
    test_fraction: float = 0.2,
) -> dict:
    """Generate a corpus, train, calibrate, evaluate and write the artifact.

    Writes `out_dir/weights.npz` and `out_dir/meta.json`; returns the
    metrics dict also stored in meta.json. Deterministic for a seed (apart
    from `created_at` and `training_seconds` in the metadata).
    """
    from sklearn.linear_model import LogisticRegression

    from . import synth

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    examples = synth.generate(n_examples, seed=seed)
    say(f"generated {len(examples)} examples ({sum(e.label for e in examples)} sensitive)")

    # Hold out whole templates for the test split, then carve a calibration
    # split (again by template) out of the rest.
    train_idx, test_idx = synth.template_split(examples, seed=seed, test_fraction=test_fraction)
    train_examples = [examples[i] for i in train_idx]
    fit_rel, calib_rel = synth.template_split(train_examples, seed=seed + 1, test_fraction=0.15)
    fit_idx = [train_idx[i] for i in fit_rel]
    calib_idx = [train_idx[i] for i in calib_rel]

    rows = [F.extract(e.text) for e in examples]
    labels = np.array([e.label for e in examples], dtype=np.int64)
    say(f"extracted features in {time.perf_counter() - started:.1f}s")

    def fit(indices: list[int]) -> Classifier:
        """Fit on `indices` with a vocabulary drawn from them, then Platt-scale."""
        doc_freq: dict[F.Gram, int] = {}
        for i in indices:
            for gram in rows[i].ngrams:
                doc_freq[gram] = doc_freq.get(gram, 0) + 1
        vocab_list = sorted((g for g, c in doc_freq.items() if c >= MIN_NGRAM_DOCUMENTS), key=F.gram_name)
        vocab = {g: k for k, g in enumerate(vocab_list)}
        coef, intercept = _fit_logistic(
            _design_matrix([rows[i] for i in indices], vocab), labels[indices], C=C, n_free=len(vocab)
        )
        raw = Classifier(
            ngram_weights={g: float(coef[k]) for g, k in vocab.items() if coef[k] != 0.0},
            dense_weights=[float(w) for w in coef[len(vocab) :]],
            intercept=intercept,
            calibration=(1.0, 0.0),
        )
        # Platt scaling: a 1-D logistic fit of the calibration labels on the
        # decision value, mildly regularised so a near-separable split cannot
        # push the slope to infinity.
        z = np.array([[raw.decision(rows[i])] for i in calib_idx])
        platt = LogisticRegression(C=1.0, solver="lbfgs", random_state=seed)
        platt.fit(z, labels[calib_idx])
        raw.calibration = (float(platt.coef_[0][0]), float(platt.intercept_[0]))
        return raw

    classifier = fit(fit_idx)
    say(f"fitted model ({len(classifier.ngram_weights)} n-gram weights) and calibration")

    def scores_of(indices: list[int]) -> np.ndarray:
        return np.array([classifier.score_features(rows[i]) for i in indices])

    test_scores = scores_of(test_idx)
    test_labels = labels[test_idx]
    calib_scores = scores_of(calib_idx)
    best_threshold, best_f1 = DEFAULT_THRESHOLD, -1.0
    for threshold in np.arange(0.05, 0.96, 0.05):
        f1 = _metrics(labels[calib_idx], calib_scores, float(threshold))["f1"]
        if f1 > best_f1 + 1e-9:
            best_threshold, best_f1 = round(float(threshold), 2), f1
    metrics = {
        "heldout_templates": _metrics(test_labels, test_scores, DEFAULT_THRESHOLD),
        "calibration_split": _metrics(labels[calib_idx], calib_scores, DEFAULT_THRESHOLD),
        "per_family_heldout": {},
        "threshold_f1_optimal_on_calibration": best_threshold,
    }
    families = sorted({examples[i].family for i in test_idx})
    for family in families:
        idx = [k for k, i in enumerate(test_idx) if examples[i].family == family]
        fam_labels = test_labels[idx]
        predicted = test_scores[idx] >= DEFAULT_THRESHOLD
        metrics["per_family_heldout"][family] = {
            "n": len(idx),
            "accuracy": round(float(np.mean(predicted == (fam_labels == 1))), 4),
        }

    # The artifact's model is refitted on every template except the calibration
    # split, so the phrasings held out for measurement still teach the deployed
    # model; the metrics above describe the procedure, measured without them.
    classifier = fit(sorted(fit_idx + test_idx))
    say("refitted on all non-calibration templates")

    top = sorted(
        ((abs(w), name, w) for name, w in zip(F.DENSE_NAMES, classifier.dense_weights, strict=True)),
        reverse=True,
    )[:15]
    meta = {
        "artifact_format": ARTIFACT_FORMAT,
        "kind": "payload-sensitivity-logreg",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "feature_version": F.FEATURE_VERSION,
        "feature_config_hash": F.feature_config_hash(),
        "dense_names": list(F.DENSE_NAMES),
        "dense_scale": DENSE_SCALE,
        "scan_cap_chars": SCAN_CAP_CHARS,
        "categories": list(CATEGORIES),
        "training": {
            "seed": seed,
            "n_examples": n_examples,
            "n_fit": len(fit_idx),
            "n_final_fit": len(fit_idx) + len(test_idx),
            "n_calibration": len(calib_idx),
            "n_test": len(test_idx),
            "C": C,
            "min_ngram_documents": MIN_NGRAM_DOCUMENTS,
            "n_ngrams": len(classifier.ngram_weights),
            "solver": "L-BFGS-B, evidence weights >= 0",
            "training_seconds": round(time.perf_counter() - started, 1),
        },
        "calibration": {
            "method": "platt",
            "a": classifier.calibration[0],
            "b": classifier.calibration[1],
        },
        "top_dense_weights": {name: round(w, 4) for _, name, w in top},
        "metrics": metrics,
        "threshold": DEFAULT_THRESHOLD,
    }
    # The version names the weights, so two runs with one seed share it.
    meta["version"] = "sens-" + classifier.weights_digest()[:12]
    classifier.meta = meta
    classifier.save(out_dir)
    say("held-out templates: " + ", ".join(f"{k}={v}" for k, v in metrics["heldout_templates"].items()))
    return metrics | {"version": meta["version"]}
