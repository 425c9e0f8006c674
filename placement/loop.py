"""The placement loop: FIG. 2.1 (inferencing, latency), FIG. 2.2 (training, completion time),
FIG. 4.1 (model adaptation, latency) and FIG. 4.2 (model adaptation, completion time).

Each step of the flowcharts is one service below, named with its step numbers in a comment:

    200/220/400/420  workload_request_placement   a placement request arrives
    202/222/402/422  workload_deploy_initial      initial placement by policy, then deployment
    204/224/404/424  workload_observe             telemetry over the monitoring window
    206/226/406/426  workload_analyse             the model predicts every candidate environment
    208/228/408/428  placement_determine          better than the current one by the margin?
    210/230/410/430  recommendation_create ->     the recommendation goes to the administrator,
                     recommendation_approve /     who approves or rejects it (or an auto-approve
                     recommendation_reject /      policy does), and an approval starts the
                     recommendation_auto_approve  migration (``placement.migration``)

``workload_evaluate`` runs 204-210 for one workload; a beat task runs it for every placed
workload whose monitoring window has closed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from placement.conf import setting
from placement.features import describe, is_eligible
from placement.model import PlacementDecision, decide
from placement.models import (
    ApprovalDecision,
    AutoApprovePolicy,
    Migration,
    MigrationEvent,
    PlacementModelVersion,
    PlacementRecord,
    ProductionEnvironment,
    Recommendation,
    Workload,
)
from placement.profiles import environment_profiles, workload_profile
from placement.services import workload_place_initial
from placement.training import LATENCY_METRICS, model_current
from telemetry.selectors import workload_latency_summary, workload_metric_mean, workload_progress_summary

logger = logging.getLogger(__name__)

# The flowchart each (kind, objective) follows, and its step numbers 200..210.
FIGURES: dict[tuple[str, str], str] = {
    ("inferencing", "latency"): "2.1",
    ("training", "completion_time"): "2.2",
    ("adaptation", "latency"): "4.1",
    ("adaptation", "completion_time"): "4.2",
}
FIRST_STEP = {"2.1": 200, "2.2": 220, "4.1": 400, "4.2": 420}
APPROVE_PERMISSION = "placement.approve_recommendation"


class RecommendationError(Exception):
    """The recommendation cannot be decided (already decided, superseded, or no longer valid).

    ``status`` is the HTTP status a view answers with: 409 for a conflict with the record's
    state, 400 for a request that is wrong in itself (a rejection without a reason).
    """

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def figure_of(kind: str, objective: str) -> str:
    """Return the patent flowchart for a workload kind and objective ('-' when none describes it)."""
    return FIGURES.get((kind, objective), "-")


def step_of(kind: str, objective: str, offset: int) -> int | None:
    """Return the flowchart step number: offset 0 is the request, 2 the initial placement ... 10."""
    figure = figure_of(kind, objective)
    return FIRST_STEP[figure] + offset if figure in FIRST_STEP else None


# -- steps 200 and 202 ----------------------------------------------------------------------


def workload_request_placement(
    *,
    name: str,
    kind: str,
    ai_model_id: int,
    objective: str | None = None,
    front_end_device_ids: list[int] | tuple[int, ...] = (),
    batch_size: int = 1,
    gpus_required: int = 1,
    handles_secured_data: bool = False,
    config: dict | None = None,
    inference_workload_id: int | None = None,
    deploy: bool = True,
) -> Workload:
    """FIG. 2.1 step 200 (2.2: 220, 4.1: 400, 4.2: 420): take a placement request and place it."""
    if objective is None:
        objective = (
            Workload.Objective.LATENCY
            if kind == Workload.Kind.INFERENCING
            else Workload.Objective.COMPLETION_TIME
        )
    with transaction.atomic():
        workload = Workload.objects.create(
            name=name,
            kind=kind,
            ai_model_id=ai_model_id,
            objective=objective,
            batch_size=batch_size,
            gpus_required=gpus_required,
            handles_secured_data=handles_secured_data,
            config=config or {},
            inference_workload_id=inference_workload_id,
        )
        workload.front_end_devices.set(front_end_device_ids)
        workload_deploy_initial(workload_id=workload.pk, deploy=deploy)
    workload.refresh_from_db()
    return workload


@transaction.atomic
def workload_deploy_initial(*, workload_id: int, deploy: bool = True) -> PlacementRecord:
    """FIG. 2.1 step 202 (222, 402, 422): initial placement by policy, then start it there.

    The monitoring window (step 204) starts now. Inferencing workloads are loaded on the
    environment's worker; training and adaptation jobs are started through their checkpoint
    handler (from no checkpoint).
    """
    from placement.migration import workload_start_on

    record = workload_place_initial(workload_id=workload_id)
    Workload.objects.filter(pk=workload_id).update(
        monitoring_started_at=timezone.now(), last_evaluated_at=None
    )
    if deploy:
        environment_id = record.to_environment_id
        transaction.on_commit(
            lambda: workload_start_on(workload_id=workload_id, environment_id=environment_id)
        )
    return record


# -- step 204 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What the monitoring agent saw of a workload in its current environment (step 204)."""

    environment_id: int
    since: datetime
    value: float | None
    unit: str
    samples: int
    breakdown: dict
    payload_bytes: float | None = None
    fraction_done: float | None = None
    steps_total: float | None = None


def workload_observe(*, workload_id: int, now: datetime | None = None) -> Observation | None:
    """FIG. 2.1 step 204 (224, 404, 424): summarise the telemetry of the monitoring window."""
    now = now or timezone.now()
    workload = Workload.objects.get(pk=workload_id)
    if workload.environment_id is None:
        return None
    since = workload.monitoring_started_at or workload.updated_at
    if workload.objective == Workload.Objective.LATENCY:
        if workload.kind == Workload.Kind.INFERENCING:
            summary = workload_latency_summary(
                workload_id=workload_id, environment_id=workload.environment_id, since=since
            )
            if summary is None:
                return Observation(workload.environment_id, since, None, "ms", 0, {})
            breakdown = summary.breakdown()
            breakdown["per_device_total_ms"] = {
                str(k): round(v, 3) for k, v in summary.per_device_total_ms.items()
            }
            return Observation(
                workload.environment_id,
                since,
                summary.total_ms,
                "ms",
                summary.count,
                breakdown,
                payload_bytes=summary.payload_bytes,
            )
        metric = LATENCY_METRICS[workload.kind]
        mean = workload_metric_mean(
            workload_id=workload_id, environment_id=workload.environment_id, metric=metric, since=since
        )
        value, count = mean if mean else (None, 0)
        return Observation(
            workload.environment_id, since, value, "ms", count, {metric: value, "samples": count}
        )
    progress = workload_progress_summary(
        workload_id=workload_id, environment_id=workload.environment_id, since=since
    )
    if progress is None:
        return Observation(workload.environment_id, since, None, "s", 0, {})
    steps_total = progress.steps_total or float((workload.config or {}).get("steps_total") or 0) or None
    remaining_steps = (steps_total or 0.0) * (1.0 - progress.fraction_done)
    projected_s = progress.seconds_per_step * remaining_steps if steps_total else None
    return Observation(
        workload.environment_id,
        since,
        projected_s,
        "s",
        progress.count,
        {
            "seconds_per_step": round(progress.seconds_per_step, 6),
            "fraction_done": round(progress.fraction_done, 4),
            "steps_total": steps_total,
            "projected_remaining_s": None if projected_s is None else round(projected_s, 3),
            "samples": progress.count,
        },
        fraction_done=progress.fraction_done,
        steps_total=steps_total,
    )


# -- steps 206 and 208 ----------------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    """The latency or completion-time analysis of step 206, with the decision of step 208."""

    workload_id: int
    objective: str
    model_version: PlacementModelVersion
    predicted_by_id: dict[int, float]
    slug_by_id: dict[int, str]
    decision: PlacementDecision
    features: dict

    def predicted_by_slug(self) -> dict[str, float]:
        """Return the predictions keyed by environment slug, rounded for display."""
        return {self.slug_by_id[i]: round(v, 4) for i, v in sorted(self.predicted_by_id.items())}


def workload_analyse(*, workload_id: int, observation: Observation | None) -> Analysis:
    """FIG. 2.1 step 206 (226, 406, 426): predict the objective in every candidate environment.

    Candidates are the environments that are not offline; eligibility (trust for secured
    data, free GPUs, accepting work) is applied by the determination, so the evidence still
    shows what an ineligible environment would have given.
    """
    workload = Workload.objects.select_related("ai_model", "inference_workload").get(pk=workload_id)
    version, model = model_current(workload.objective)
    profile = workload_profile(
        workload,
        payload_bytes=observation.payload_bytes if observation else None,
        fraction_done=observation.fraction_done if observation else None,
        steps_total=observation.steps_total if observation else None,
    )
    environments = environment_profiles()
    predicted = model.predict([profile], environments)[0]
    predicted_by_id = {e.id: float(v) for e, v in zip(environments, predicted, strict=True)}
    eligible_ids = [e.id for e in environments if is_eligible(profile, e)]
    decision = placement_determine(
        predicted_by_id=predicted_by_id, current_id=workload.environment_id, eligible_ids=eligible_ids
    )
    by_id = {e.id: e for e in environments}
    features = {"used": model.feature_keys, "values": {}}
    for environment_id in {workload.environment_id, decision.best_id} - {None}:
        if environment_id in by_id:
            features["values"][by_id[environment_id].slug] = describe(
                profile, by_id[environment_id], model.feature_keys
            )
    features["ineligible"] = sorted(by_id[i].slug for i in by_id if i not in eligible_ids)
    return Analysis(
        workload_id=workload_id,
        objective=workload.objective,
        model_version=version,
        predicted_by_id=predicted_by_id,
        slug_by_id={e.id: e.slug for e in environments},
        decision=decision,
        features=features,
    )


def placement_determine(
    *, predicted_by_id: dict[int, float], current_id: int | None, eligible_ids: list[int]
) -> PlacementDecision:
    """FIG. 2.1 step 208 (228, 408, 428): is another eligible environment better by the margin?"""
    return decide(
        predicted_by_id,
        current_id=current_id,
        eligible_ids=eligible_ids,
        margin_fraction=float(setting("PLACEMENT_MARGIN")),
    )


# -- step 210 -------------------------------------------------------------------------------


def evidence_digest(evidence: dict) -> str:
    """Return a short fingerprint of an evidence snapshot (the approve form carries it)."""
    return hashlib.sha256(json.dumps(evidence, sort_keys=True, default=str).encode()).hexdigest()[:16]


@transaction.atomic
def recommendation_create(
    *, workload_id: int, observation: Observation | None, analysis: Analysis
) -> Recommendation:
    """FIG. 2.1 step 210 (230, 410, 430), first half: record the recommendation and its evidence.

    Any pending recommendation for the same workload is superseded by this one.
    """
    workload = Workload.objects.select_for_update().get(pk=workload_id)
    decision = analysis.decision
    target = ProductionEnvironment.objects.get(pk=decision.best_id)
    if workload.handles_secured_data and not target.is_trusted:
        # The determination never proposes this; refusing here too keeps the invariant local.
        raise RecommendationError(
            "a workload with secured data can only be recommended to a trusted environment"
        )
    stale = list(Recommendation.objects.filter(workload=workload, state=Recommendation.State.PENDING))
    Recommendation.objects.filter(pk__in=[r.pk for r in stale]).update(
        state=Recommendation.State.SUPERSEDED, decided_at=timezone.now()
    )
    recommendation = Recommendation.objects.create(
        workload=workload,
        from_environment_id=workload.environment_id,
        to_environment=target,
        objective=workload.objective,
        figure=figure_of(workload.kind, workload.objective),
        unit="ms" if workload.objective == Workload.Objective.LATENCY else "s",
        observed_value=observation.value if observation else None,
        observed_samples=observation.samples if observation else 0,
        observed_breakdown=observation.breakdown if observation else {},
        predicted=analysis.predicted_by_slug(),
        margin=round(decision.improvement_fraction, 6),
        margin_required=float(setting("PLACEMENT_MARGIN")),
        features=analysis.features,
        model_version=analysis.model_version,
        reason=decision.reason[:300],
    )
    Recommendation.objects.filter(pk__in=[r.pk for r in stale]).update(superseded_by=recommendation)
    return recommendation


def _check_target(recommendation: Recommendation) -> None:
    workload = recommendation.workload
    target = recommendation.to_environment
    if workload.handles_secured_data and not target.is_trusted:
        raise RecommendationError("the target is not trusted and the workload handles secured data")
    if target.status == ProductionEnvironment.Status.OFFLINE:
        raise RecommendationError("the target environment is offline")
    if workload.environment_id != recommendation.from_environment_id:
        raise RecommendationError("the workload has moved since this recommendation was made")


def _claim_pending(recommendation_id: int, new_state: str) -> Recommendation:
    # Conditional UPDATE: of two approvers clicking at once, exactly one wins.
    changed = Recommendation.objects.filter(pk=recommendation_id, state=Recommendation.State.PENDING).update(
        state=new_state, decided_at=timezone.now()
    )
    recommendation = Recommendation.objects.select_related(
        "workload", "to_environment", "from_environment", "model_version"
    ).get(pk=recommendation_id)
    if changed != 1:
        raise RecommendationError(
            f"this recommendation is {recommendation.get_state_display().lower()}, not pending"
        )
    return recommendation


def _start_migration(recommendation: Recommendation, decision: ApprovalDecision) -> Migration:
    from placement.tasks import migration_run

    workload = recommendation.workload
    migration = Migration.objects.create(
        recommendation=recommendation,
        approval=decision,
        workload=workload,
        from_environment_id=recommendation.from_environment_id,
        to_environment_id=recommendation.to_environment_id,
        workload_state_before=workload.state,
    )
    MigrationEvent.objects.create(
        migration=migration,
        to_state=Migration.State.PENDING,
        detail=f"approved by {decision.decided_by_name}",
    )
    Workload.objects.filter(pk=workload.pk).update(state=Workload.State.MIGRATING)
    transaction.on_commit(lambda: migration_run.delay(migration.pk))
    return migration


@transaction.atomic
def recommendation_approve(
    *, recommendation_id: int, user, reason: str = "", evidence_seen: str | None = None
) -> Migration:
    """FIG. 2.1 step 210: an administrator confirms the move; the migration starts.

    ``evidence_seen`` is the digest of the evidence the approver's page showed; if it no
    longer matches the record, the approval is refused rather than applied to evidence the
    approver did not see.
    """
    if not user.has_perm(APPROVE_PERMISSION):
        raise PermissionDenied(
            "approving placement recommendations needs the approve_recommendation permission"
        )
    current = Recommendation.objects.select_related(
        "workload", "to_environment", "from_environment", "model_version"
    ).get(pk=recommendation_id)
    evidence = current.evidence()
    if evidence_seen is not None and evidence_seen != evidence_digest(evidence):
        raise RecommendationError("the evidence changed since the page was loaded; review it again")
    recommendation = _claim_pending(recommendation_id, Recommendation.State.APPROVED)
    _check_target(recommendation)
    decision = ApprovalDecision.objects.create(
        recommendation=recommendation,
        decision=ApprovalDecision.Decision.APPROVE,
        decided_by=user,
        decided_by_name=user.get_username(),
        reason=reason.strip(),
        evidence=evidence,
    )
    return _start_migration(recommendation, decision)


@transaction.atomic
def recommendation_reject(
    *, recommendation_id: int, user, reason: str, evidence_seen: str | None = None
) -> ApprovalDecision:
    """FIG. 2.1 step 210: an administrator declines the move; a reason is required."""
    if not user.has_perm(APPROVE_PERMISSION):
        raise PermissionDenied(
            "rejecting placement recommendations needs the approve_recommendation permission"
        )
    if not reason or not reason.strip():
        raise RecommendationError("say why the recommendation is rejected", status=400)
    current = Recommendation.objects.select_related(
        "workload", "to_environment", "from_environment", "model_version"
    ).get(pk=recommendation_id)
    evidence = current.evidence()
    if evidence_seen is not None and evidence_seen != evidence_digest(evidence):
        raise RecommendationError("the evidence changed since the page was loaded; review it again")
    recommendation = _claim_pending(recommendation_id, Recommendation.State.REJECTED)
    return ApprovalDecision.objects.create(
        recommendation=recommendation,
        decision=ApprovalDecision.Decision.REJECT,
        decided_by=user,
        decided_by_name=user.get_username(),
        reason=reason.strip(),
        evidence=evidence,
    )


def auto_approve_policy_for(recommendation: Recommendation) -> AutoApprovePolicy | None:
    """Return the first enabled auto-approve policy that matches the recommendation."""
    workload = recommendation.workload
    for policy in AutoApprovePolicy.objects.filter(enabled=True).order_by("order", "name"):
        if policy.match_kind and policy.match_kind != workload.kind:
            continue
        if policy.match_objective and policy.match_objective != recommendation.objective:
            continue
        if workload.handles_secured_data and not policy.allow_secured_data:
            continue
        if recommendation.margin < policy.min_improvement:
            continue
        return policy
    return None


@transaction.atomic
def recommendation_auto_approve(*, recommendation_id: int) -> Migration | None:
    """FIG. 2.1 step 210 without the administrator: a matching auto-approve policy approves it.

    The approval record names the policy; without one, nothing happens.
    """
    recommendation = Recommendation.objects.select_related(
        "workload", "to_environment", "from_environment"
    ).get(pk=recommendation_id)
    policy = auto_approve_policy_for(recommendation)
    if policy is None or recommendation.state != Recommendation.State.PENDING:
        return None
    evidence = recommendation.evidence()
    recommendation = _claim_pending(recommendation_id, Recommendation.State.APPROVED)
    _check_target(recommendation)
    Recommendation.objects.filter(pk=recommendation_id).update(auto_approve_policy=policy)
    decision = ApprovalDecision.objects.create(
        recommendation=recommendation,
        decision=ApprovalDecision.Decision.APPROVE,
        auto_approve_policy=policy,
        decided_by_name=f"policy:{policy.name}"[:150],
        reason=f"predicted improvement {recommendation.margin:.1%} >= {policy.min_improvement:.0%}",
        evidence=evidence,
    )
    return _start_migration(recommendation, decision)


# -- the whole loop for one workload --------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """What one pass of steps 204-210 did for a workload."""

    workload_id: int
    outcome: str  # waiting, no_data, stays, recommended, suppressed, busy
    detail: str
    observation: Observation | None = None
    analysis: Analysis | None = None
    recommendation: Recommendation | None = None
    migration: Migration | None = None


def workload_evaluate(*, workload_id: int, now: datetime | None = None, force: bool = False) -> Evaluation:
    """Run FIG. 2.1 steps 204-210 (and their siblings) for one workload.

    Without ``force`` it waits until the monitoring window has closed and has enough samples,
    and evaluates once per window.
    """
    now = now or timezone.now()
    workload = Workload.objects.get(pk=workload_id)
    if (
        workload.state not in (Workload.State.PLACED, Workload.State.RUNNING)
        or workload.environment_id is None
    ):
        return Evaluation(workload_id, "busy", f"workload is {workload.get_state_display().lower()}")
    window = timedelta(seconds=float(setting("PLACEMENT_MONITOR_WINDOW_S")))
    started = workload.monitoring_started_at or workload.updated_at
    if not force:
        if now - started < window:
            return Evaluation(workload_id, "waiting", "the monitoring window is still open")
        if workload.last_evaluated_at and now - workload.last_evaluated_at < window:
            return Evaluation(workload_id, "waiting", "evaluated within the last window")
    observation = workload_observe(workload_id=workload_id, now=now)  # step 204
    if observation is None or observation.samples < int(setting("PLACEMENT_MIN_SAMPLES")):
        return Evaluation(workload_id, "no_data", "not enough telemetry in the window", observation)
    Workload.objects.filter(pk=workload_id).update(last_evaluated_at=now)
    analysis = workload_analyse(workload_id=workload_id, observation=observation)  # step 206
    decision = analysis.decision  # step 208
    if not decision.recommend or decision.best_id is None or decision.best_id == workload.environment_id:
        return Evaluation(workload_id, "stays", decision.reason, observation, analysis)
    quiet = timedelta(seconds=float(setting("PLACEMENT_REJECTION_QUIET_S")))
    recently_rejected = Recommendation.objects.filter(
        workload_id=workload_id,
        state=Recommendation.State.REJECTED,
        from_environment_id=workload.environment_id,
        to_environment_id=decision.best_id,
        decided_at__gte=now - quiet,
    ).exists()
    if recently_rejected and not force:
        return Evaluation(
            workload_id, "suppressed", "the same move was rejected recently", observation, analysis
        )
    recommendation = recommendation_create(
        workload_id=workload_id, observation=observation, analysis=analysis
    )  # 210
    migration = recommendation_auto_approve(recommendation_id=recommendation.pk)
    recommendation.refresh_from_db()
    return Evaluation(
        workload_id, "recommended", decision.reason, observation, analysis, recommendation, migration
    )


# One pass at a time: a slow pass (a cold-start training) must not overlap the next beat's.
_EVALUATE_LOCK_KEY = "placement:evaluate-lock"
_EVALUATE_LOCK_S = 600


def workloads_evaluate(*, now: datetime | None = None) -> dict[str, int]:
    """Run the loop for every placed workload whose window has closed; return counts by outcome."""
    from django.core.cache import cache

    if not cache.add(_EVALUATE_LOCK_KEY, "1", _EVALUATE_LOCK_S):
        return {"skipped": 1}
    try:
        return _evaluate_all(now)
    finally:
        cache.delete(_EVALUATE_LOCK_KEY)


def _evaluate_all(now: datetime | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    ids = Workload.objects.filter(
        state__in=[Workload.State.PLACED, Workload.State.RUNNING], environment__isnull=False
    ).values_list("id", flat=True)
    for workload_id in ids:
        try:
            outcome = workload_evaluate(workload_id=workload_id, now=now).outcome
        except Exception:  # noqa: BLE001 - one broken workload must not stop the others
            logger.exception("placement evaluation of workload %s failed", workload_id)
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
