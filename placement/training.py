"""The workload placement model training agent (patent FIG. 1.3 164, paragraph 59).

It fits one pipeline per objective on

* a **profiling run**: workloads simulated by the analytic performance model in
  ``placement.simulator`` on the registered environments (and on random ones, so the model
  generalises), seeded, which gives the cold start before any telemetry exists; and
* the **telemetry history**: what workloads really measured in the environments they ran in,
  joined with those environments' hardware, weighted above the simulated rows.

Each run becomes a ``PlacementModelVersion`` with its artifact under ARTIFACT_DIR and its
held-out MAE and R2. Runs happen on a schedule, on demand from the admin, and once
synchronously when a decision needs a model and none exists yet.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from console.progress import progress_publish
from placement.conf import setting
from placement.features import FEATURE_CATALOGUE, WorkloadProfile, check_feature_keys, feature_matrix
from placement.model import OBJECTIVE_UNITS, PlacementModel, fit, target_scale
from placement.models import CausalVariable, FrontEndDevice, PlacementModelVersion, Workload
from placement.profiles import environment_profiles, with_objective, workload_profile
from placement.simulator import profiling_samples
from telemetry.selectors import metric_history

logger = logging.getLogger(__name__)

# The telemetry metric that measures the latency objective of each kind of workload.
LATENCY_METRICS = {
    Workload.Kind.INFERENCING: "latency_total_ms",  # FIG. 2.1: front end -> environment -> front end
    Workload.Kind.ADAPTATION: "adaptation_round_ms",  # FIG. 4.1: exchange with the inferencing workload
    Workload.Kind.TRAINING: "step_ms",
}
# How far back the training agent reads telemetry (the aggregates' retention).
HISTORY_DAYS = 30
# Ready versions whose artifact files are kept per objective (older files are deleted).
ARTIFACTS_KEPT = 5


def causal_variables_sync() -> int:
    """Create a row for every catalogue variable that has none yet; return how many were added."""
    added = 0
    for position, spec in enumerate(FEATURE_CATALOGUE, start=1):
        _, created = CausalVariable.objects.get_or_create(
            key=spec.key,
            defaults={
                "label": spec.label,
                "group": spec.group,
                "description": spec.description,
                "paragraph_62": spec.paragraph_62,
                "order": position * 10,
            },
        )
        added += created
    return added


def causal_variable_keys() -> list[str]:
    """Return the enabled causal variables the placement model knows, in catalogue order."""
    causal_variables_sync()
    return check_feature_keys(list(CausalVariable.objects.filter(enabled=True).values_list("key", flat=True)))


def _progress(version: PlacementModelVersion, fraction: float, message: str) -> None:
    PlacementModelVersion.objects.filter(pk=version.pk).update(
        progress=round(fraction, 3), message=message[:300]
    )
    progress_publish(
        "placement-model",
        f"{version.objective}-v{version.version}",
        {"fraction": round(fraction, 3), "message": message, "state": "training"},
    )


@transaction.atomic
def model_version_request(
    *, objective: str, requested_by: str = "", enqueue: bool = True
) -> PlacementModelVersion:
    """Queue the training of a new model version for an objective."""
    from placement.tasks import placement_model_train

    if objective not in OBJECTIVE_UNITS:
        raise ValueError(f"unknown objective {objective!r}")
    keys = causal_variable_keys()
    for _ in range(3):
        latest = (
            PlacementModelVersion.objects.filter(objective=objective).aggregate(v=Max("version"))["v"] or 0
        )
        try:
            with transaction.atomic():
                version = PlacementModelVersion.objects.create(
                    objective=objective,
                    version=latest + 1,
                    feature_keys=keys,
                    unit=OBJECTIVE_UNITS[objective],
                    requested_by=requested_by[:150],
                )
            break
        except IntegrityError:
            continue  # two requests raced for the same number; take the next one
    else:
        raise RuntimeError("could not allocate a model version number")
    if enqueue:
        transaction.on_commit(lambda: placement_model_train.delay(version.pk))
    return version


def telemetry_training_rows(objective: str) -> tuple[list[tuple[WorkloadProfile, object]], list[float]]:
    """Return (workload, environment) pairs and observed objective values from telemetry history."""
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    environments = {e.id: e for e in environment_profiles()}
    workloads = {w.id: w for w in Workload.objects.select_related("ai_model", "inference_workload")}
    pairs: list[tuple[WorkloadProfile, object]] = []
    values: list[float] = []
    if objective == "latency":
        payloads = {
            (row["workload_id"], row["environment_id"]): row["mean"]
            for row in metric_history(metric="payload_bytes", since=since)
        }
        for kind, metric in LATENCY_METRICS.items():
            for row in metric_history(metric=metric, since=since):
                workload = workloads.get(row["workload_id"])
                environment = environments.get(row["environment_id"])
                if workload is None or environment is None or workload.kind != kind:
                    continue
                payload = payloads.get((row["workload_id"], row["environment_id"]))
                profile = workload_profile(workload, payload_bytes=payload, environment_id=environment.id)
                pairs.append((with_objective(profile, objective), environment))
                values.append(row["mean"])
    else:
        totals = {
            (row["workload_id"], row["environment_id"]): row["mean"]
            for row in metric_history(metric="steps_total", since=since)
        }
        for row in metric_history(metric="seconds_per_step", since=since):
            workload = workloads.get(row["workload_id"])
            environment = environments.get(row["environment_id"])
            if workload is None or environment is None or workload.kind == Workload.Kind.INFERENCING:
                continue
            steps_total = totals.get((row["workload_id"], row["environment_id"]))
            profile = workload_profile(workload, steps_total=steps_total, environment_id=environment.id)
            profile = with_objective(profile, objective)
            pairs.append((profile, environment))
            # The job's completion time at that pace: its remaining steps times the time per step.
            values.append(row["mean"] * max(profile.steps_remaining, 1.0))
    return pairs, values


def model_version_train(*, version_id: int) -> PlacementModelVersion:
    """Train a queued model version (claimed with a conditional UPDATE, so only one runner does)."""
    claimed = PlacementModelVersion.objects.filter(
        pk=version_id, state=PlacementModelVersion.State.QUEUED
    ).update(state=PlacementModelVersion.State.TRAINING, progress=0.0, message="starting")
    version = PlacementModelVersion.objects.get(pk=version_id)
    if claimed != 1:
        return version
    try:
        _train(version)
    except Exception as exc:
        logger.exception("training placement model %s failed", version)
        PlacementModelVersion.objects.filter(pk=version_id).update(
            state=PlacementModelVersion.State.FAILED, message=f"failed: {exc}"[:300]
        )
        progress_publish(
            "placement-model",
            f"{version.objective}-v{version.version}",
            {"state": "failed", "message": str(exc)},
        )
        raise
    version.refresh_from_db()
    return version


def _train(version: PlacementModelVersion) -> None:
    from django.conf import settings

    objective = version.objective
    keys = check_feature_keys(version.feature_keys or causal_variable_keys())
    _progress(version, 0.02, "profiling run (simulated on the registered environments)")
    registered = environment_profiles()
    device_ids = list(FrontEndDevice.objects.values_list("id", flat=True))
    rows = int(setting("PLACEMENT_PROFILING_ROWS"))
    seed = int(setting("PLACEMENT_PROFILING_SEED")) + (0 if objective == "latency" else 1)
    profiling_pairs, profiling_values = profiling_samples(
        seed, objective=objective, rows=rows, extra_environments=registered, extra_device_ids=device_ids
    )
    _progress(version, 0.15, "reading the telemetry history")
    telemetry_pairs, telemetry_values = telemetry_training_rows(objective)
    pairs = [*profiling_pairs, *telemetry_pairs]
    targets = np.concatenate([profiling_values, np.asarray(telemetry_values, dtype=np.float64)])
    weights = np.concatenate(
        [
            np.ones(len(profiling_pairs)),
            np.full(len(telemetry_pairs), float(setting("PLACEMENT_TELEMETRY_ROW_WEIGHT"))),
        ]
    )
    _progress(version, 0.2, f"building features for {len(pairs)} rows")
    features = feature_matrix(pairs, keys)
    scale = target_scale([w for w, _ in pairs], objective)

    def on_progress(fraction: float, message: str) -> None:
        _progress(version, 0.25 + 0.7 * fraction, message)

    model, metrics = fit(
        features,
        targets,
        objective=objective,
        feature_keys=keys,
        scale=scale,
        sample_weight=weights,
        seed=seed,
        progress=on_progress,
    )
    model.metadata.update(
        {
            "version": version.version,
            "profiling_rows": len(profiling_pairs),
            "telemetry_rows": len(telemetry_pairs),
        }
    )
    relative = Path("placement") / f"{objective}-v{version.version}.joblib"
    model.save(Path(settings.ARTIFACT_DIR) / relative)
    PlacementModelVersion.objects.filter(pk=version.pk).update(
        state=PlacementModelVersion.State.READY,
        progress=1.0,
        message=f"trained in {metrics.fit_seconds:.1f} s",
        artifact_path=str(relative),
        feature_keys=keys,
        profiling_rows=len(profiling_pairs),
        telemetry_rows=len(telemetry_pairs),
        held_out_mae=metrics.mae,
        held_out_r2=metrics.r2,
        held_out_median_relative_error=metrics.median_relative_error,
        trained_at=timezone.now(),
    )
    progress_publish(
        "placement-model",
        f"{objective}-v{version.version}",
        {"state": "ready", "fraction": 1.0, "mae": metrics.mae, "r2": metrics.r2},
    )
    artifacts_prune(objective=objective)


def artifacts_prune(*, objective: str, keep: int = ARTIFACTS_KEPT) -> int:
    """Delete the artifact files of all but the newest ready versions; return how many went.

    The rows stay (recommendations name the version that made them); only the files go.
    """
    from django.conf import settings

    ready = PlacementModelVersion.objects.filter(objective=objective, state=PlacementModelVersion.State.READY)
    removed = 0
    for version in ready.order_by("-version")[keep:]:
        if not version.artifact_path:
            continue
        (Path(settings.ARTIFACT_DIR) / version.artifact_path).unlink(missing_ok=True)
        PlacementModelVersion.objects.filter(pk=version.pk).update(
            artifact_path="", message="artifact pruned"
        )
        removed += 1
    return removed


_loaded: dict[str, PlacementModel] = {}
_loaded_lock = threading.Lock()


def model_load(version: PlacementModelVersion) -> PlacementModel:
    """Return the trained model of a version, loaded once per process."""
    path = str(version.artifact)
    with _loaded_lock:
        model = _loaded.get(path)
        if model is None:
            model = PlacementModel.load(Path(path))
            _loaded[path] = model
        return model


def model_current(objective: str) -> tuple[PlacementModelVersion, PlacementModel]:
    """Return the newest ready model of an objective, training the cold-start one if there is none."""
    version = (
        PlacementModelVersion.objects.filter(objective=objective, state=PlacementModelVersion.State.READY)
        .order_by("-version")
        .first()
    )
    if version is None or not version.artifact_path or not Path(version.artifact).exists():
        # Cold start: the profiling run, here and now (a few seconds), so the loop never waits on beat.
        queued = model_version_request(objective=objective, requested_by="cold start", enqueue=False)
        version = model_version_train(version_id=queued.pk)
        if version.state != PlacementModelVersion.State.READY:
            raise RuntimeError(f"cold-start training of the {objective} model failed: {version.message}")
    return version, model_load(version)
