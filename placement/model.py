"""The workload placement model (patent paragraphs 59, 63): one regression pipeline per objective.

Given a workload and the candidate environments, the model predicts the objective (latency
in ms, completion time in s) the workload would see in each one; the decision rule
(FIG. 2.1 step 208 and its siblings) picks the best eligible environment and recommends a
move only when it beats the current one by more than a margin. Pure Python, numpy and
scikit-learn; no Django.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import ThreadpoolController

from placement.features import (
    EnvironmentArrays,
    EnvironmentProfile,
    WorkloadProfile,
    candidate_matrix,
    categorical_mask,
    check_feature_keys,
)

OBJECTIVE_UNITS = {"latency": "ms", "completion_time": "s"}
# Boosting rounds, added in chunks so training can report its progress.
BOOSTING_ROUNDS = 160
ROUNDS_PER_CHUNK = 40
# Objectives span six orders of magnitude (a 2 ms request, a week of training): the regressor
# learns their logarithm, so errors are relative and ratios between environments are additive.
_TINY = 1e-6
# One OpenMP thread: the trees are small, and on a busy host (workers, web server) several
# spinning OpenMP threads made fitting twenty times slower, not faster.
_OPENMP_THREADS = 1
_controller: ThreadpoolController | None = None


def _one_openmp_thread():
    """Return a context limiting OpenMP to one thread.

    The controller that finds the thread pools (by reading /proc/self/maps) is built once:
    building it for every prediction cost more than the prediction itself.
    """
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=_OPENMP_THREADS, user_api="openmp")


ProgressCallback = Callable[[float, str], None]


def _finite(matrix: np.ndarray) -> np.ndarray:
    # Unreachable links and empty environments can yield inf; the regressor needs finite numbers.
    return np.nan_to_num(np.asarray(matrix, dtype=np.float64), nan=0.0, posinf=1e12, neginf=-1e12)


def build_pipeline(feature_keys: Sequence[str], *, seed: int = 0) -> Pipeline:
    """Return an untrained pipeline for these causal variables (category columns split natively)."""
    mask = categorical_mask(feature_keys)
    regressor = HistGradientBoostingRegressor(
        max_iter=ROUNDS_PER_CHUNK,
        learning_rate=0.18,
        max_leaf_nodes=63,
        min_samples_leaf=10,
        l2_regularization=1e-3,
        categorical_features=mask if mask.any() else None,
        early_stopping=False,
        warm_start=True,
        random_state=seed,
    )
    return Pipeline([("finite", FunctionTransformer(_finite)), ("regressor", regressor)])


@dataclass
class ModelMetrics:
    """Held-out quality of a trained model: MAE in the objective's unit, R2 of its logarithm."""

    mae: float
    r2: float
    median_relative_error: float
    training_rows: int
    held_out_rows: int
    fit_seconds: float


@dataclass
class PlacementModel:
    """A trained pipeline together with what it predicts and from which causal variables."""

    objective: str
    feature_keys: list[str]
    pipeline: Pipeline
    metadata: dict = field(default_factory=dict)

    @property
    def unit(self) -> str:
        """Return the unit of the predictions (ms for latency, s for completion time)."""
        return OBJECTIVE_UNITS[self.objective]

    def predict_matrix(self, features: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        """Return predictions for rows of features built with this model's keys."""
        with _one_openmp_thread():
            return np.exp(self.pipeline.predict(features)) * scale

    def predict(
        self,
        workloads: Sequence[WorkloadProfile],
        environments: Sequence[EnvironmentProfile],
        arrays: EnvironmentArrays | None = None,
    ) -> np.ndarray:
        """Return a (workloads x environments) array of the predicted objective."""
        if not workloads or not environments:
            return np.zeros((len(workloads), len(environments)))
        features = candidate_matrix(workloads, environments, self.feature_keys, arrays)
        scale = np.repeat(target_scale(workloads, self.objective), len(environments))
        return self.predict_matrix(features, scale).reshape(len(workloads), len(environments))

    def save(self, path: Path) -> None:
        """Write the model to a file (our own artifact, so joblib's pickle is acceptable)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        joblib.dump(
            {"objective": self.objective, "feature_keys": self.feature_keys, "pipeline": self.pipeline,
             "metadata": self.metadata},
            temporary,
        )  # fmt: skip
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> PlacementModel:
        """Read a model written by ``save``."""
        document = joblib.load(path)
        return cls(
            objective=document["objective"],
            feature_keys=list(document["feature_keys"]),
            pipeline=document["pipeline"],
            metadata=dict(document.get("metadata", {})),
        )


def target_scale(workloads: Sequence[WorkloadProfile], objective: str) -> np.ndarray:
    """Return what each workload's objective is divided by before the regressor sees it.

    A job's completion time is its remaining steps times the time per step; the steps are
    known (progress telemetry) and the same in every environment, so the regressor learns the
    time per step and the product is taken afterwards. This removes five orders of magnitude
    of variation that says nothing about which environment is better.
    """
    if objective != "completion_time":
        return np.ones(len(workloads))
    return np.array(
        [max(w.steps_remaining, 1.0) if w.kind != "inferencing" else 1.0 for w in workloads],
        dtype=np.float64,
    )


def fit(
    features: np.ndarray,
    targets: np.ndarray,
    *,
    objective: str,
    feature_keys: Sequence[str],
    scale: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    seed: int = 0,
    held_out_fraction: float = 0.2,
    progress: ProgressCallback | None = None,
) -> tuple[PlacementModel, ModelMetrics]:
    """Fit the objective's pipeline on rows of features; score it on a held-out split.

    ``scale`` is ``target_scale`` of each row's workload (ones when omitted).
    """
    if objective not in OBJECTIVE_UNITS:
        raise ValueError(f"unknown objective {objective!r}")
    keys = check_feature_keys(feature_keys)
    if list(keys) != list(feature_keys):
        raise ValueError("feature columns must be in catalogue order (use check_feature_keys)")
    targets = np.asarray(targets, dtype=np.float64)
    if len(targets) < 20:
        raise ValueError(f"too few rows to train on ({len(targets)})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(targets))
    held_out = max(int(len(targets) * held_out_fraction), 1)
    test_index, train_index = order[:held_out], order[held_out:]
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    scale = np.ones(len(targets)) if scale is None else np.asarray(scale, dtype=np.float64)
    log_targets = np.log(np.maximum(targets / scale, _TINY))

    pipeline = build_pipeline(keys, seed=seed)
    started = time.perf_counter()
    rounds = 0
    while rounds < BOOSTING_ROUNDS:
        rounds = min(rounds + ROUNDS_PER_CHUNK, BOOSTING_ROUNDS)
        pipeline.set_params(regressor__max_iter=rounds)
        with _one_openmp_thread():
            pipeline.fit(
                features[train_index],
                log_targets[train_index],
                regressor__sample_weight=None if weights is None else weights[train_index],
            )
        if progress is not None:
            progress(rounds / BOOSTING_ROUNDS, f"boosting round {rounds}/{BOOSTING_ROUNDS}")
    fit_seconds = time.perf_counter() - started

    model = PlacementModel(objective=objective, feature_keys=list(keys), pipeline=pipeline)
    predicted = model.predict_matrix(features[test_index], scale[test_index])
    actual = targets[test_index]
    relative = np.abs(predicted - actual) / np.maximum(actual, _TINY)
    metrics = ModelMetrics(
        mae=float(mean_absolute_error(actual, predicted)),
        # R2 of the logarithm: the objectives span orders of magnitude, and on the raw scale a
        # handful of week-long jobs would decide the score.
        r2=float(r2_score(np.log(np.maximum(actual, _TINY)), np.log(predicted)))
        if len(actual) > 1
        else float("nan"),
        median_relative_error=float(np.median(relative)),
        training_rows=int(len(train_index)),
        held_out_rows=int(len(test_index)),
        fit_seconds=fit_seconds,
    )
    model.metadata = {"seed": seed, "rounds": BOOSTING_ROUNDS}
    return model, metrics


@dataclass(frozen=True)
class PlacementDecision:
    """The outcome of the analysis and the determination (FIG. 2.1 steps 206-208)."""

    current_id: int | None
    best_id: int | None
    predicted: dict[int, float]
    eligible_ids: tuple[int, ...]
    improvement_fraction: float
    recommend: bool
    reason: str


def decide(
    predicted: dict[int, float],
    *,
    current_id: int | None,
    eligible_ids: Sequence[int],
    margin_fraction: float,
) -> PlacementDecision:
    """Return which eligible environment is best and whether moving there clears the margin.

    The comparison is prediction against prediction, so a model that is off by a constant
    factor on this workload still ranks the environments the same way; ties go to the
    lowest id so the choice is stable.
    """
    eligible = tuple(sorted(i for i in eligible_ids if i in predicted and math.isfinite(predicted[i])))
    if not eligible:
        return PlacementDecision(current_id, None, predicted, (), 0.0, False, "no eligible environment")
    best = min(eligible, key=lambda i: (predicted[i], i))
    if current_id is None or current_id not in predicted:
        return PlacementDecision(current_id, best, predicted, eligible, 1.0, True, "not placed yet")
    current_value = predicted[current_id]
    improvement = 1.0 - predicted[best] / current_value if current_value > 0 else 0.0
    if best == current_id:
        return PlacementDecision(
            current_id, best, predicted, eligible, 0.0, False, "the current environment is the best"
        )
    if current_id not in eligible:
        # The workload may no longer stay where it is (trust changed, environment draining).
        return PlacementDecision(
            current_id,
            best,
            predicted,
            eligible,
            improvement,
            True,
            "the current environment is no longer eligible",
        )
    if improvement <= margin_fraction:
        return PlacementDecision(
            current_id, best, predicted, eligible, improvement, False,
            f"best improvement {improvement:.1%} is within the {margin_fraction:.0%} margin",
        )  # fmt: skip
    return PlacementDecision(
        current_id, best, predicted, eligible, improvement, True,
        f"predicted {improvement:.1%} better than the current environment",
    )  # fmt: skip


def choose(
    model: PlacementModel,
    workloads: Sequence[WorkloadProfile],
    environments: Sequence[EnvironmentProfile],
) -> list[int | None]:
    """Return, for each workload, the id of the eligible environment with the best prediction."""
    arrays = EnvironmentArrays(environments, [d for w in workloads for d in w.front_end_ids])
    eligible = np.stack([arrays.eligible(w) for w in workloads]) if workloads else np.zeros((0, 0), bool)
    predicted = np.full(eligible.shape, np.inf)
    if eligible.any():
        # Only eligible pairs go through the trees: prediction is most of the decision time.
        features = candidate_matrix(workloads, environments, model.feature_keys, arrays)
        scale = np.repeat(target_scale(workloads, model.objective), len(environments))
        rows = eligible.reshape(-1)
        predicted.reshape(-1)[rows] = model.predict_matrix(features[rows], scale[rows])
    chosen: list[int | None] = []
    for i in range(len(workloads)):
        if not eligible[i].any():
            chosen.append(None)
            continue
        chosen.append(int(arrays.ids[int(np.argmin(predicted[i]))]))
    return chosen
