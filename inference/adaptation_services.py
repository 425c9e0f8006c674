"""Model adaptation and training workloads: validation, variant selection, running, artifacts,
promotion, and the adapters the prompt gateway applies.

Flow of an adaptation (patent FIG. 4.3):

- step 442, *model adaptation classification*: the sensitivity classifier reads every
  example of the adaptation data; any at or above the active policy's threshold makes the
  data secured.
- step 444: secured data -> the secured variant's environment (over the private path: the
  texts travel through the private Redis only and are never written to disk or the
  database); otherwise the public variant's.
- steps 446-452: the job runs as a Celery task on that environment's queue, checkpointing,
  and its adapter (the *model adaptation payload*) becomes a versioned AdapterArtifact.
- step 454: a prompt naming the adapter is classified as in FIG. 2.3 and served with the
  adapted model on its own variant; a secured adapter forces the secured variant.

Training workloads (claim 2, Example 3) are the same runs over a snapshot of the public
variant's feedback examples, filtered twice: only requests routed public, and only texts
the classifier still scores below the threshold.

Nothing here writes, logs or raises the text of an example; messages give counts and sizes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from inference import adaptation
from inference.models import AdaptationJob, AdapterArtifact, AdapterUse, Promotion
from placement.models import AIModel, PlacementRecord, ProductionEnvironment, Workload

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, float | int] = {
    # A running job renews its lease at every progress report; a worker silent for this long
    # is taken for dead and its job is resumed from the last checkpoint by the recovery task.
    "ADAPTATION_LEASE_S": 60,
    # Seconds between progress reports (job row, telemetry store, console progress).
    "ADAPTATION_REPORT_EVERY_S": 1.0,
    # How long an adapted prompt (FIG. 4.3) waits for its adaptation before answering 504.
    "ADAPTATION_WAIT_S": 600,
    # Upload limits of the API: texts per dataset, and characters in all.
    "ADAPTATION_MAX_TEXTS": 20000,
    "ADAPTATION_MAX_CHARS": 5_000_000,
    # Secured texts wait on the private Redis this long at most (the run deletes them at its end).
    "ADAPTATION_PRIVATE_DATA_TTL_S": 86400,
    # The scheduled training starts only when this many new public feedback examples arrived.
    "FEEDBACK_TRAINING_MIN_EXAMPLES": 50,
    # Seconds a promoted adapter stays cached by the gateway before it re-reads the promotion.
    "ADAPTER_PROMOTION_CACHE_S": 2.0,
}


def setting(name: str) -> Any:
    """Return a setting: settings.py first, then the environment variable, then the default."""
    if hasattr(settings, name):
        return getattr(settings, name)
    default = DEFAULTS[name]
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return type(default)(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a valid {type(default).__name__}") from exc


class AdaptationRefused(Exception):
    """A request the adaptation services refuse; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str, *, detail: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail or {}


# --- datasets -----------------------------------------------------------------------------

DATASETS_DIR = "datasets"
# The key under which the jobs' pause/resume handlers are registered with the placement loop.
CHECKPOINT_HANDLER_KEY = "adaptation-job"
_PRIVATE_KEY_PREFIX = "sy:adaptation-data:"


def datasets_root() -> Path:
    """Return ARTIFACT_DIR/datasets, where dataset files live."""
    return Path(settings.ARTIFACT_DIR) / DATASETS_DIR


def dataset_file_path(reference: str) -> Path:
    """Return the file a dataset reference names, refusing paths outside ARTIFACT_DIR/datasets."""
    root = datasets_root().resolve()
    relative = reference[len(DATASETS_DIR) + 1 :] if reference.startswith(f"{DATASETS_DIR}/") else reference
    path = (root / relative).resolve()
    if root not in path.parents:
        raise AdaptationRefused(422, "bad_dataset", "The dataset file must lie under ARTIFACT_DIR/datasets.")
    if not path.is_file():
        raise AdaptationRefused(
            422, "bad_dataset", f"No dataset file {relative!r} under ARTIFACT_DIR/datasets."
        )
    return path


def example_text(record: Any) -> str | None:
    """Return the training text of one JSONL record: ``text``, or ``prompt`` + reply."""
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("text"), str):
        return record["text"]
    prompt = record.get("prompt")
    reply = record.get("completion", record.get("payload", record.get("response")))
    if isinstance(prompt, str) and isinstance(reply, str):
        return f"{prompt}\n{reply}"
    return prompt if isinstance(prompt, str) else None


def dataset_file_read(path: Path) -> list[str]:
    """Return the texts of a JSONL dataset file (blank lines skipped)."""
    texts = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                text = example_text(json.loads(line))
            except ValueError:
                # The line number only: the line itself could be anything.
                raise AdaptationRefused(
                    422, "bad_dataset", f"Line {number} of the dataset is not JSON."
                ) from None
            if text is None:
                raise AdaptationRefused(
                    422, "bad_dataset", f"Line {number} has neither 'text' nor 'prompt' (+ 'completion')."
                )
            texts.append(text)
    return texts


def _dataset_file_write(directory: str, texts: Iterable[str]) -> str:
    """Write texts as a JSONL file under ARTIFACT_DIR/datasets; return its reference."""
    folder = datasets_root() / directory
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.jsonl"
    staging = folder / f".{name}"
    with staging.open("w", encoding="utf-8") as handle:
        for text in texts:
            handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    staging.rename(folder / name)
    return f"{DATASETS_DIR}/{directory}/{name}"


def _private_client():
    from inference.serving import redis_client

    return redis_client(settings.SECURED_REDIS_URL)


def _private_data_store(texts: list[str]) -> str:
    key = f"{_PRIVATE_KEY_PREFIX}{secrets.token_urlsafe(24)}"
    _private_client().set(key, json.dumps(texts), ex=int(setting("ADAPTATION_PRIVATE_DATA_TTL_S")))
    return key


def _private_data_drop(key: str) -> None:
    try:
        _private_client().delete(key)
    except Exception:  # noqa: BLE001 - the key expires on its own
        logger.warning("could not delete a private adaptation dataset; it expires by its TTL")


def feedback_examples(*, ai_model: AIModel, since: datetime | None = None):
    """Return the public variant's feedback examples of a model that may enter a training set.

    Only requests routed to a public variant and completed qualify; a secured request never
    has a FeedbackExample, and this filter would leave it out even if one existed.
    """
    from variants.models import FeedbackExample, PromptRequest, Variant

    rows = (
        FeedbackExample.objects.filter(
            ai_model=ai_model,
            request__route=PromptRequest.Route.PUBLIC,
            request__status=PromptRequest.Status.COMPLETED,
        )
        .exclude(request__variant__kind=Variant.Kind.SECURED)
        .order_by("created_at", "pk")
    )
    if since is not None:
        rows = rows.filter(created_at__gt=since)
    return rows


def job_texts(job: AdaptationJob) -> list[str]:
    """Return the texts a job trains on (from its file, or from the private Redis)."""
    if job.dataset_source == AdaptationJob.DatasetSource.PRIVATE:
        raw = _private_client().get(job.dataset_ref)
        if raw is None:
            raise adaptation.DatasetError("the secured dataset expired from the private path before the run")
        return list(json.loads(raw))
    return dataset_file_read(dataset_file_path(job.dataset_ref))


# --- FIG. 4.3 step 442: model adaptation classification -------------------------------------


@dataclass(frozen=True)
class AdaptationClassification:
    """What the sensitivity classifier found in an adaptation dataset (counts only)."""

    examples: int
    sensitive_examples: int
    threshold: float
    max_score: float
    categories: dict[str, int] = field(default_factory=dict)
    classifier_version: int | None = None
    fail_closed: bool = False

    @property
    def secured(self) -> bool:
        """Return True when the data must stay on a secured variant."""
        return self.sensitive_examples > 0 or self.fail_closed


def adaptation_classify(texts: list[str]) -> AdaptationClassification:
    """Score every example with the active sensitivity classifier (FIG. 4.3 step 442).

    Fails closed: without a usable classifier or policy the data counts as secured.
    """
    from variants import selectors

    try:
        threshold = selectors.active_policy().rules.threshold
        version, classifier = selectors.active_classifier()
        results = classifier.classify_many(texts)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the data on the secured side
        logger.error(
            "adaptation classification failed (%s); treating the data as secured", type(exc).__name__
        )
        return AdaptationClassification(len(texts), 0, 0.0, 1.0, fail_closed=True)
    sensitive = [result for result in results if result.score >= threshold]
    categories = Counter(category for result in sensitive for category in result.categories)
    return AdaptationClassification(
        examples=len(texts),
        sensitive_examples=len(sensitive),
        threshold=threshold,
        max_score=round(max((result.score for result in results), default=0.0), 4),
        categories=dict(categories),
        classifier_version=version,
    )


# --- starting a job --------------------------------------------------------------------------


def lora_settings_parse(values: dict[str, Any] | None) -> adaptation.LoraSettings:
    """Return validated LoRA settings; 422 naming every bad field (rank <= 0 and the like)."""
    try:
        lora = adaptation.LoraSettings.from_dict(dict(values or {}))
    except (adaptation.AdaptationError, TypeError) as exc:
        raise AdaptationRefused(400, "bad_lora", str(exc)) from None
    problems = lora.problems()
    if problems:
        message = " ".join(problems.values())
        raise AdaptationRefused(422, "bad_lora", message, detail={"lora": problems})
    return lora


def _target_variant(ai_model: AIModel, requested: str, secured: bool):
    """Return the variant a job runs on: FIG. 4.3 step 444 for "auto", else the one named."""
    from variants.models import Variant
    from variants.selectors import variants_available

    available = variants_available(ai_model)
    if requested in ("", "auto"):
        kind = Variant.Kind.SECURED if secured else Variant.Kind.PUBLIC
        variant = available.get(kind)
        if variant is None and not secured:
            # Public data may always be adapted on the secured side, never the reverse.
            variant = available.get(Variant.Kind.SECURED)
        if variant is None:
            raise AdaptationRefused(
                503, "no_variant", f"No {kind} variant of model {ai_model.slug!r} is available."
            )
        return variant
    if requested in (Variant.Kind.SECURED, Variant.Kind.PUBLIC):
        variant = available.get(requested)
    else:
        variant = (
            Variant.objects.select_related("environment")
            .filter(ai_model=ai_model, enabled=True)
            .filter(Q(name=requested) | Q(environment__slug=requested))
            .first()
        )
    if variant is None:
        raise AdaptationRefused(
            422, "unknown_variant", f"No enabled variant {requested!r} of model {ai_model.slug!r}."
        )
    return variant


def _model_check(ai_model: AIModel) -> str:
    """Return the base model's fingerprint; 422 when its directory holds no usable model."""
    path = Path(ai_model.path)
    if not (path / "config.json").is_file():
        raise AdaptationRefused(
            422, "model_unavailable", f"Model {ai_model.slug!r} has no weights at its directory."
        )
    try:
        return adaptation.base_fingerprint(path)
    except FileNotFoundError:
        raise AdaptationRefused(
            422, "model_unavailable", f"Model {ai_model.slug!r} has no weight files at its directory."
        ) from None


@dataclass
class DatasetRequest:
    """A dataset as a request gives it: a file reference, texts, or the feedback set."""

    source: str
    reference: str = ""
    texts: list[str] | None = None


def _dataset_texts(request: DatasetRequest, ai_model: AIModel) -> tuple[list[str], dict[str, Any]]:
    """Return the dataset's texts and facts about where they came from."""
    facts: dict[str, Any] = {}
    if request.source == AdaptationJob.DatasetSource.FILE:
        texts = dataset_file_read(dataset_file_path(request.reference))
    elif request.source == AdaptationJob.DatasetSource.UPLOAD:
        texts = [text for text in (request.texts or []) if isinstance(text, str)]
        if len(texts) > int(setting("ADAPTATION_MAX_TEXTS")):
            raise AdaptationRefused(
                413, "dataset_too_large", f"At most {setting('ADAPTATION_MAX_TEXTS')} texts."
            )
        if sum(len(text) for text in texts) > int(setting("ADAPTATION_MAX_CHARS")):
            raise AdaptationRefused(
                413, "dataset_too_large", f"At most {setting('ADAPTATION_MAX_CHARS')} characters."
            )
    elif request.source == AdaptationJob.DatasetSource.FEEDBACK:
        rows = list(feedback_examples(ai_model=ai_model).values_list("pk", "prompt", "payload"))
        texts = [f"{prompt}\n{payload}" for _, prompt, payload in rows]
        facts["feedback_ids"] = [pk for pk, _, _ in rows]
    else:
        raise AdaptationRefused(400, "bad_dataset", f"Unknown dataset source {request.source!r}.")
    texts = [text for text in texts if text.strip()]
    if not texts:
        raise AdaptationRefused(422, "empty_dataset", "The dataset is empty: there is nothing to adapt on.")
    return texts, facts


@transaction.atomic
def adaptation_job_create(
    *,
    name: str,
    ai_model_slug: str,
    dataset: DatasetRequest,
    lora: dict[str, Any] | None = None,
    variant: str = "auto",
    kind: str = AdaptationJob.Kind.ADAPTATION,
    origin: str = "api",
    requested_by: Any = None,
) -> AdaptationJob:
    """Validate an adaptation or training request, place it, and queue its run.

    Raises AdaptationRefused: unknown model (422), bad LoRA settings (422), empty dataset
    (422), secured data bound for a public variant or a training workload (422), no variant
    (503). The run starts on the chosen environment's queue once this transaction commits.
    """
    from django.utils.text import slugify

    slug = slugify(name)[:80]
    if not slug:
        raise AdaptationRefused(400, "bad_name", "Give the adapter a name (letters, digits, dashes).")
    ai_model = AIModel.objects.filter(Q(slug=ai_model_slug) | Q(name=ai_model_slug)).first()
    if ai_model is None:
        raise AdaptationRefused(422, "unknown_model", f"Unknown base model {ai_model_slug[:100]!r}.")
    settings_ = lora_settings_parse(lora)
    fingerprint = _model_check(ai_model)
    texts, facts = _dataset_texts(dataset, ai_model)
    classification = adaptation_classify(texts)

    if kind == AdaptationJob.Kind.TRAINING:
        # Claim 2: training learns from public data only. Examples the classifier now scores
        # as secured (a newer classifier, a stricter threshold) are left out, not trained on.
        if classification.fail_closed:
            raise AdaptationRefused(
                503, "classifier_unavailable", "No sensitivity classifier to check the data with."
            )
        if classification.sensitive_examples:
            from variants import selectors

            _, classifier = selectors.active_classifier()
            keep = [
                index
                for index, result in enumerate(classifier.classify_many(texts))
                if result.score < classification.threshold
            ]
            if dataset.source != AdaptationJob.DatasetSource.FEEDBACK:
                raise AdaptationRefused(
                    422,
                    "secured_data",
                    f"The dataset holds {classification.sensitive_examples} of {len(texts)} examples "
                    f"classified as secured data (threshold {classification.threshold:.2f}); training "
                    "workloads learn from public data only.",
                    detail={"sensitive_examples": classification.sensitive_examples},
                )
            facts["dropped_sensitive"] = classification.sensitive_examples
            facts["feedback_ids"] = [facts["feedback_ids"][i] for i in keep]
            texts = [texts[i] for i in keep]
            if not texts:
                raise AdaptationRefused(
                    422, "empty_dataset", "No public feedback example is left to train on."
                )
            classification = AdaptationClassification(
                len(texts), 0, classification.threshold, 0.0, {}, classification.classifier_version
            )
        target = _target_variant(ai_model, variant if variant != "auto" else "public", secured=False)
        if target.is_secured:
            raise AdaptationRefused(
                422, "bad_variant", "Training workloads run on the public variant (claim 2)."
            )
    else:
        target = _target_variant(ai_model, variant, secured=classification.secured)
        if classification.secured and not target.environment.is_trusted:
            raise AdaptationRefused(
                422,
                "secured_data",
                f"The dataset holds {classification.sensitive_examples} of {len(texts)} examples classified "
                f"as secured data (threshold {classification.threshold:.2f}); it can only be adapted on a "
                "secured variant (variant 'secured' or 'auto').",
                detail={
                    "sensitive_examples": classification.sensitive_examples,
                    "categories": classification.categories,
                },
            )
    environment = target.environment
    if not environment.accepts_work:
        raise AdaptationRefused(
            503, "environment_unavailable", f"Environment {environment.slug!r} accepts no work now."
        )

    # Where the data waits for the run: secured texts only on the private path.
    if dataset.source == AdaptationJob.DatasetSource.FILE:
        source, reference = (
            AdaptationJob.DatasetSource.FILE,
            str(dataset_file_path(dataset.reference).relative_to(Path(settings.ARTIFACT_DIR))),
        )
    elif classification.secured:
        source, reference = AdaptationJob.DatasetSource.PRIVATE, _private_data_store(texts)
    elif dataset.source == AdaptationJob.DatasetSource.FEEDBACK:
        source, reference = AdaptationJob.DatasetSource.FEEDBACK, _dataset_file_write("feedback", texts)
    else:
        source, reference = AdaptationJob.DatasetSource.UPLOAD, _dataset_file_write("uploads", texts)

    user = requested_by if getattr(requested_by, "pk", None) else None
    job = AdaptationJob.objects.create(
        name=slug,
        kind=kind,
        ai_model=ai_model,
        variant=target,
        environment=environment,
        dataset_source=source,
        dataset_ref=reference,
        dataset_examples=len(texts),
        dataset_sha256=adaptation.texts_digest(texts),
        sensitive_examples=classification.sensitive_examples,
        secured=classification.secured,
        lora=settings_.to_dict(),
        origin=origin,
        steps_total=settings_.steps,
        requested_by=user,
        requested_by_name=getattr(requested_by, "username", "") or str(requested_by or origin),
    )
    parameters = int(ai_model.parameter_count or 0)
    workload = Workload.objects.create(
        name=f"{kind}-{slug}-{job.pk}"[:100],
        kind=Workload.Kind.TRAINING if kind == AdaptationJob.Kind.TRAINING else Workload.Kind.ADAPTATION,
        ai_model=ai_model,
        objective=Workload.Objective.COMPLETION_TIME,
        batch_size=settings_.batch_size,
        gpus_required=0,
        handles_secured_data=classification.secured,
        environment=environment,
        state=Workload.State.RUNNING,
        monitoring_started_at=timezone.now(),
        config={
            "adaptation_job": job.pk,
            "checkpoint_handler": CHECKPOINT_HANDLER_KEY,
            "steps_total": settings_.steps,
            "sequence_tokens": settings_.seq_len,
            "lora_rank": settings_.rank,
            # Figures the placement model reads (placement.profiles); the adapter's size is
            # estimated from the rank until the run reports its trainable parameters.
            **({"model_parameters": parameters} if parameters else {}),
        },
    )
    job.workload = workload
    job.save(update_fields=["workload"])
    PlacementRecord.objects.create(
        workload=workload,
        to_environment=environment,
        decided_by="variant selection (FIG. 4.3 step 444)"
        if variant in ("", "auto")
        else job.requested_by_name,
        reason=(
            f"{job.get_kind_display().lower()} on the {target.kind} variant {target.name!r}: "
            f"{classification.sensitive_examples} of {len(texts)} examples classified secured"
        ),
        evidence={
            "sensitive_examples": classification.sensitive_examples,
            "examples": len(texts),
            "threshold": classification.threshold,
            "max_score": classification.max_score,
            "categories": classification.categories,
            "classifier_version": classification.classifier_version,
            "fail_closed": classification.fail_closed,
            "base_fingerprint": fingerprint,
            **{k: v for k, v in facts.items() if k != "feedback_ids"},
            **({"feedback_examples": len(facts["feedback_ids"])} if "feedback_ids" in facts else {}),
        },
    )
    job_id, environment_id = job.pk, environment.pk
    transaction.on_commit(lambda: job_dispatch(job_id=job_id, environment_id=environment_id))
    return job


def job_dispatch(*, job_id: int, environment_id: int) -> None:
    """Queue a job's run on an environment's queue, over the broker that reaches it."""
    from inference.tasks import adaptation_run
    from placement.dispatch import send_to_environment

    environment = ProductionEnvironment.objects.get(pk=environment_id)
    send_to_environment(environment, adaptation_run, [job_id, environment_id])


# --- running a job (on the environment's worker) ---------------------------------------------


class _LeaseLost(Exception):
    """Another runner holds the job now: stop without writing anything."""


def _lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=float(setting("ADAPTATION_LEASE_S")))


def adaptation_job_claim(*, job_id: int, environment_id: int, runner: str) -> bool:
    """Take a queued job, or a running one whose lease ran out, for this runner (conditional UPDATE)."""
    now = timezone.now()
    changed = (
        AdaptationJob.objects.filter(pk=job_id, cancel_requested=False)
        .filter(
            Q(state=AdaptationJob.State.QUEUED)
            | Q(state=AdaptationJob.State.RUNNING, lease_expires_at__lt=now)
            | Q(state=AdaptationJob.State.RUNNING, lease_expires_at__isnull=True)
        )
        .update(
            state=AdaptationJob.State.RUNNING,
            runner=runner,
            lease_expires_at=_lease_until(),
            environment_id=environment_id,
            attempts=F("attempts") + 1,
            pause_requested=False,
        )
    )
    return changed == 1


def _checkpoints_drop(job: AdaptationJob) -> None:
    shutil.rmtree(job.checkpoint_dir, ignore_errors=True)


def _finish(job_id: int, runner: str, state: str, **values: Any) -> bool:
    """Move the job this runner holds to a final or paused state; False if it lost the job."""
    values.setdefault("finished_at", timezone.now() if state != AdaptationJob.State.PAUSED else None)
    changed = AdaptationJob.objects.filter(pk=job_id, runner=runner).update(
        state=state, runner="", lease_expires_at=None, **values
    )
    return changed == 1


def adaptation_job_run(*, job_id: int, environment_id: int, runner: str) -> str:
    """Run (or resume) a job here until it completes, pauses, is cancelled or fails.

    Returns the outcome word: completed, paused, cancelled, failed, not-claimed, moved, lost.
    """
    job = AdaptationJob.objects.select_related("ai_model", "workload", "variant").get(pk=job_id)
    if job.cancel_requested and job.state in (AdaptationJob.State.QUEUED, AdaptationJob.State.PAUSED):
        adaptation_job_cancel(job_id=job_id)
        return "cancelled"
    if job.workload_id and job.workload.environment_id not in (None, environment_id):
        # A stale message: the workload was moved since; its new environment runs it.
        return "moved"
    if not adaptation_job_claim(job_id=job_id, environment_id=environment_id, runner=runner):
        return "not-claimed"
    job.refresh_from_db()
    AdaptationJob.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=timezone.now())
    lora = adaptation.LoraSettings.from_dict(job.lora)
    latest = adaptation.checkpoint_latest(job.checkpoint_dir)
    if latest is not None:
        resumed = [*job.resumed_from, adaptation.checkpoint_step(latest)]
        AdaptationJob.objects.filter(pk=job_id).update(resumed_from=resumed)
    reporter = _ProgressReporter(job, environment_id, runner)
    try:
        texts = job_texts(job)
        staging = Path(settings.ARTIFACT_DIR) / "adapters" / job.name / f".job-{job.pk}"
        outcome = adaptation.train_adapter(
            job.ai_model.path,
            texts,
            lora,
            out_dir=staging,
            checkpoint_dir=job.checkpoint_dir,
            progress=reporter.progress,
            control=reporter.control,
        )
    except _LeaseLost:
        return "lost"
    except Exception as exc:  # noqa: BLE001 - recorded; the message never quotes the data
        message = (
            str(exc)
            if isinstance(exc, adaptation.AdaptationError | AdaptationRefused)
            else type(exc).__name__
        )
        logger.warning("adaptation job %s failed: %s", job_id, message)
        if _finish(job_id, runner, AdaptationJob.State.FAILED, error=message[:2000]):
            Workload.objects.filter(pk=job.workload_id).update(state=Workload.State.FAILED)
            _release_private_data(job)
        return "failed"

    if outcome.status == "cancelled":
        if _finish(job_id, runner, AdaptationJob.State.CANCELLED, steps_done=outcome.step):
            Workload.objects.filter(pk=job.workload_id).update(state=Workload.State.CANCELLED)
            _checkpoints_drop(job)
            _release_private_data(job)
        reporter.publish({"state": "cancelled", "step": outcome.step})
        return "cancelled"
    if outcome.status == "paused":
        step = adaptation.checkpoint_step(outcome.checkpoint) if outcome.checkpoint else 0
        _finish(
            job_id,
            runner,
            AdaptationJob.State.PAUSED,
            steps_done=outcome.step,
            checkpoint_step=step,
            pause_requested=False,
        )
        reporter.publish({"state": "paused", "step": outcome.step, "checkpoint_step": step})
        return "paused"

    artifact = adapter_artifact_record(
        job=job, staging=outcome.adapter_dir, metrics=outcome.metrics, environment_id=environment_id
    )
    if not _finish(
        job_id,
        runner,
        AdaptationJob.State.COMPLETED,
        steps_done=outcome.step,
        artifact=artifact,
        last_loss=outcome.metrics.get("final_loss"),
        eta_s=0.0,
    ):
        return "lost"
    Workload.objects.filter(pk=job.workload_id).update(state=Workload.State.COMPLETED)
    _checkpoints_drop(job)
    _release_private_data(job)
    reporter.publish({"state": "completed", "step": outcome.step, "adapter": artifact.label})
    return "completed"


def _release_private_data(job: AdaptationJob) -> None:
    if job.dataset_source == AdaptationJob.DatasetSource.PRIVATE:
        _private_data_drop(job.dataset_ref)


class _ProgressReporter:
    """Reports a running job's progress and reads its cancel and pause flags.

    Every step: one small query for the flags (cancel, pause, still ours). Every
    ADAPTATION_REPORT_EVERY_S: the job row and lease, the telemetry store (FIG. 2.2 step 224
    / FIG. 4.2 step 424) and the console's progress channel.
    """

    def __init__(self, job: AdaptationJob, environment_id: int, runner: str) -> None:
        self.job_id = job.pk
        self.workload_id = job.workload_id
        self.environment_id = environment_id
        self.runner = runner
        self.name = job.name
        self.last_report = 0.0
        self.latest: dict[str, Any] = {}

    def progress(self, event: dict[str, Any]) -> None:
        self.latest = event
        now = time.monotonic()
        if (
            now - self.last_report < float(setting("ADAPTATION_REPORT_EVERY_S"))
            and event["step"] < event["steps_total"]
        ):
            return
        self.last_report = now
        changed = AdaptationJob.objects.filter(pk=self.job_id, runner=self.runner).update(
            steps_done=event["step"],
            last_loss=event["loss"],
            seconds_per_step=event["seconds_per_step"],
            eta_s=event["eta_s"],
            checkpoint_step=event["checkpoint_step"],
            lease_expires_at=_lease_until(),
        )
        if changed != 1:
            raise _LeaseLost()
        if self.workload_id:
            try:
                from telemetry.services import progress_record, sample_record

                progress_record(
                    workload_id=self.workload_id,
                    fraction_done=min(event["step"] / event["steps_total"], 1.0),
                    seconds_per_step=event["seconds_per_step"],
                    steps_done=event["step"],
                    steps_total=event["steps_total"],
                    environment_id=self.environment_id,
                )
                for metric, value, unit in (
                    ("training_loss", event["loss"], "nats"),
                    ("eta_s", event["eta_s"], "s"),
                ):
                    sample_record(
                        environment_id=self.environment_id,
                        workload_id=self.workload_id,
                        metric=metric,
                        value=value,
                        unit=unit,
                    )
            except Exception:  # noqa: BLE001 - telemetry is best effort; the job row has the figures
                logger.warning("could not record telemetry for adaptation job %s", self.job_id)
        self.publish({"state": "running", **event})

    def publish(self, event: dict[str, Any]) -> None:
        try:
            from console.progress import progress_publish

            progress_publish("adaptation", str(self.job_id), {"name": self.name, **event})
        except Exception:  # noqa: BLE001 - the console's view is a convenience
            logger.warning("could not publish the progress of adaptation job %s", self.job_id)

    def control(self, step: int) -> str | None:
        row = (
            AdaptationJob.objects.filter(pk=self.job_id)
            .values("runner", "cancel_requested", "pause_requested")
            .first()
        )
        if row is None or row["runner"] != self.runner:
            raise _LeaseLost()
        if row["cancel_requested"]:
            return "cancel"
        if row["pause_requested"]:
            return "pause"
        return None


def adapter_artifact_record(
    *, job: AdaptationJob, staging: Path | None, metrics: dict[str, Any], environment_id: int
) -> AdapterArtifact:
    """Move a finished adapter into ARTIFACT_DIR/adapters/<name>/<version>/ and record it."""
    if staging is None:
        raise adaptation.AdaptationError("the run finished without writing its adapter")
    fingerprint = adaptation.base_fingerprint(job.ai_model.path)
    root = Path(settings.ARTIFACT_DIR) / "adapters" / job.name
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        # Past both the recorded versions and any directory already there (a database restored
        # from an older backup must not reuse a version number that names other weights).
        on_disk = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
        recorded = AdapterArtifact.objects.filter(name=job.name).aggregate(v=Max("version"))["v"] or 0
        version = max([recorded, *on_disk]) + 1
        final = root / str(version)
        try:
            staging.rename(final)
        except OSError:  # another job of the same name took this version a moment ago
            continue
        try:
            with transaction.atomic():
                artifact = AdapterArtifact.objects.create(
                    name=job.name,
                    version=version,
                    kind=job.kind,
                    path=str(final.relative_to(settings.ARTIFACT_DIR)),
                    ai_model=job.ai_model,
                    base_fingerprint=fingerprint,
                    job=job,
                    variant=job.variant,
                    environment_id=environment_id,
                    dataset_ref=_dataset_label(job),
                    dataset_sha256=job.dataset_sha256,
                    secured=job.secured,
                    rank=int(job.lora.get("rank", 0)),
                    metrics=metrics,
                )
        except IntegrityError:
            final.rename(staging)
            continue
        _metadata_complete(final, artifact, job, environment_id, fingerprint)
        return artifact
    raise adaptation.AdaptationError("could not allocate an adapter version after five tries")


def _dataset_label(job: AdaptationJob) -> str:
    """Return how an artifact names its data: the file, or just "private" (the key is transient)."""
    if job.dataset_source == AdaptationJob.DatasetSource.PRIVATE:
        return "private"
    return f"{job.dataset_source}:{job.dataset_ref}"


def _metadata_complete(
    directory: Path, artifact: AdapterArtifact, job: AdaptationJob, environment_id: int, fingerprint: str
) -> None:
    """Add the provenance the run could not know to the adapter's metadata file."""
    path = directory / adaptation.ADAPTER_METADATA_FILENAME
    document = json.loads(path.read_text(encoding="utf-8"))
    environment = (
        ProductionEnvironment.objects.filter(pk=environment_id).values_list("slug", flat=True).first()
    )
    document.update(
        {
            "name": artifact.name,
            "version": artifact.version,
            "kind": job.kind,
            "base_model": job.ai_model.slug,
            "base_fingerprint": fingerprint,
            "variant": job.variant.name if job.variant_id else None,
            "variant_kind": job.variant.kind if job.variant_id else None,
            "environment": environment,
            "dataset_ref": artifact.dataset_ref,
            "dataset_examples": job.dataset_examples,
            "secured": job.secured,
            "job": job.pk,
            "created_at": timezone.now().isoformat(timespec="seconds"),
        }
    )
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(staging, path)


# --- cancel, pause, resume, recover ------------------------------------------------------


def adaptation_job_cancel(*, job_id: int) -> AdaptationJob:
    """Cancel a job: at once when it is not running, at its next step when it is."""
    with transaction.atomic():
        job = AdaptationJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            raise AdaptationRefused(409, "finished", f"Job {job_id} already ended ({job.state}).")
        if (
            job.state == AdaptationJob.State.RUNNING
            and job.lease_expires_at
            and job.lease_expires_at > timezone.now()
        ):
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested", "updated_at"])
            return job
        job.cancel_requested = True
        job.state = AdaptationJob.State.CANCELLED
        job.finished_at = timezone.now()
        job.runner = ""
        job.lease_expires_at = None
        job.save()
        Workload.objects.filter(pk=job.workload_id).update(state=Workload.State.CANCELLED)
    _checkpoints_drop(job)
    _release_private_data(job)
    return job


def _job_of_workload(workload_id: int) -> AdaptationJob:
    return AdaptationJob.objects.get(workload_id=workload_id)


def _checkpoint_reference(job: AdaptationJob) -> dict[str, Any]:
    latest = adaptation.checkpoint_latest(job.checkpoint_dir)
    if latest is None:
        return {"job": job.pk, "step": 0, "path": None}
    return {
        "job": job.pk,
        "step": adaptation.checkpoint_step(latest),
        "path": str(latest.relative_to(settings.ARTIFACT_DIR)),
    }


def _wait_s() -> float:
    from placement.conf import setting as placement_setting

    return float(placement_setting("PLACEMENT_CHECKPOINT_TIMEOUT_S"))


def adaptation_job_pause(workload_id: int, environment_id: int) -> dict | None:
    """Checkpoint handler: stop the job where it runs and return its checkpoint reference.

    A running job is asked to checkpoint at its next step and stop; a queued one, or one
    whose worker died, is simply held. Its newest checkpoint on disk is the state either way.
    """
    job = _job_of_workload(workload_id)
    if job.is_finished:
        return {"job": job.pk, "finished": True, "state": job.state}
    live = (
        job.state == AdaptationJob.State.RUNNING
        and job.lease_expires_at
        and job.lease_expires_at > timezone.now()
    )
    if not live:
        AdaptationJob.objects.filter(
            pk=job.pk, state__in=[AdaptationJob.State.QUEUED, AdaptationJob.State.RUNNING]
        ).update(state=AdaptationJob.State.PAUSED, runner="", lease_expires_at=None)
        return _checkpoint_reference(job)
    AdaptationJob.objects.filter(pk=job.pk).update(pause_requested=True)
    deadline = time.monotonic() + _wait_s()
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state != AdaptationJob.State.RUNNING:
            return _checkpoint_reference(job) | {"state": job.state}
        time.sleep(0.1)
    AdaptationJob.objects.filter(pk=job.pk).update(pause_requested=False)
    raise TimeoutError(f"adaptation job {job.pk} did not write its checkpoint within {_wait_s():.0f} s")


def adaptation_job_resume(workload_id: int, environment_id: int, checkpoint: dict | None) -> None:
    """Checkpoint handler: run the job on an environment's worker from its newest checkpoint.

    Returns once a worker there has claimed it (or it already ended); raises TimeoutError
    when none does in time. ``checkpoint`` is informational: the checkpoint directory is on
    storage every host sees, and the run always resumes from the newest file in it.
    """
    job = _job_of_workload(workload_id)
    if job.is_finished:
        return
    environment = ProductionEnvironment.objects.get(pk=environment_id)
    if job.secured and not environment.is_trusted:
        raise PermissionError("a job on secured data can only run in a trusted environment")
    AdaptationJob.objects.filter(pk=job.pk).exclude(state=AdaptationJob.State.RUNNING).update(
        state=AdaptationJob.State.QUEUED, pause_requested=False, runner="", lease_expires_at=None
    )
    job_dispatch(job_id=job.pk, environment_id=environment_id)
    deadline = time.monotonic() + _wait_s()
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished or (
            job.state == AdaptationJob.State.RUNNING and job.environment_id == environment_id
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"no worker of {environment.queue_name} started adaptation job {job.pk} in time")


def adaptation_jobs_recover(*, now: datetime | None = None, dispatch: bool = True) -> list[int]:
    """Re-queue jobs whose worker died (lease run out) on their workload's environment.

    The new run resumes from the newest checkpoint. Queued jobs that nobody claimed for a
    lease period (their message was lost) are sent again; the claim makes a duplicate harmless.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=float(setting("ADAPTATION_LEASE_S")))
    requeued: list[int] = []
    stale = AdaptationJob.objects.filter(
        Q(state=AdaptationJob.State.RUNNING, lease_expires_at__lt=now)
        | Q(state=AdaptationJob.State.QUEUED, updated_at__lt=now - lease)
    ).select_related("workload")
    for job in stale:
        if job.cancel_requested:
            adaptation_job_cancel(job_id=job.pk)
            continue
        environment_id = (job.workload.environment_id if job.workload_id else None) or job.environment_id
        if environment_id is None:
            continue
        changed = (
            AdaptationJob.objects.filter(pk=job.pk, state=job.state, runner=job.runner)
            .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))
            .update(state=AdaptationJob.State.QUEUED, runner="", lease_expires_at=None)
        )
        if changed != 1:
            continue
        requeued.append(job.pk)
        if dispatch:
            job_dispatch(job_id=job.pk, environment_id=environment_id)
    return requeued


# --- training workloads (claim 2, Example 3) ------------------------------------------------


def training_from_feedback_start(
    *,
    ai_model_slug: str,
    lora: dict[str, Any] | None = None,
    name: str | None = None,
    requested_by: Any = None,
    origin: str = "api",
) -> AdaptationJob:
    """Start a training workload on the public variant over the model's public feedback."""
    return adaptation_job_create(
        name=name or f"{ai_model_slug}-feedback",
        ai_model_slug=ai_model_slug,
        dataset=DatasetRequest(source=AdaptationJob.DatasetSource.FEEDBACK, reference=ai_model_slug),
        lora=lora,
        variant="public",
        kind=AdaptationJob.Kind.TRAINING,
        origin=origin,
        requested_by=requested_by,
    )


def feedback_training_schedule(*, min_examples: int | None = None) -> list[int]:
    """Beat: start a training workload for every model with enough new public feedback."""
    from variants.models import Variant

    minimum = int(min_examples if min_examples is not None else setting("FEEDBACK_TRAINING_MIN_EXAMPLES"))
    started: list[int] = []
    models_with_public = AIModel.objects.filter(
        variants__kind=Variant.Kind.PUBLIC, variants__enabled=True
    ).distinct()
    for ai_model in models_with_public:
        previous = (
            AdaptationJob.objects.filter(ai_model=ai_model, kind=AdaptationJob.Kind.TRAINING)
            .exclude(state__in=[AdaptationJob.State.FAILED, AdaptationJob.State.CANCELLED])
            .order_by("-created_at")
            .first()
        )
        if previous is not None and not previous.is_finished:
            continue  # one training run per model at a time
        since = previous.created_at if previous else None
        if feedback_examples(ai_model=ai_model, since=since).count() < minimum:
            continue
        try:
            job = training_from_feedback_start(ai_model_slug=ai_model.slug, origin="schedule")
        except AdaptationRefused as exc:
            logger.info("scheduled training of %s not started: %s", ai_model.slug, exc)
            continue
        started.append(job.pk)
    return started


# --- promotion and rollback --------------------------------------------------------------


def variant_adapter(*, variant_id: int) -> AdapterArtifact | None:
    """Return the adapter a variant serves now (its latest promotion or rollback's target)."""
    latest = (
        Promotion.objects.filter(variant_id=variant_id).select_related("to_artifact").order_by("-id").first()
    )
    return latest.to_artifact if latest else None


def _decider(user: Any) -> tuple[Any, str]:
    if getattr(user, "pk", None):
        return user, user.get_username()
    return None, str(user or "system")


@transaction.atomic
def adapter_promote(*, variant_id: int, artifact_id: int, user: Any, reason: str = "") -> Promotion:
    """Put an adapter in service on a variant; record who, when, from what, to what."""
    from variants.models import Variant

    variant = Variant.objects.select_for_update().select_related("ai_model").get(pk=variant_id)
    artifact = AdapterArtifact.objects.select_related("ai_model").get(pk=artifact_id)
    if artifact.ai_model_id != variant.ai_model_id:
        raise AdaptationRefused(
            422,
            "model_mismatch",
            f"{artifact.label} adapts {artifact.ai_model.slug!r}, not {variant.ai_model.slug!r}.",
        )
    if artifact.secured and not variant.is_secured:
        raise AdaptationRefused(
            422,
            "secured_adapter",
            f"{artifact.label} was trained on secured data; only secured variants serve it.",
        )
    if artifact.base_fingerprint != _model_check(variant.ai_model):
        raise AdaptationRefused(
            422,
            "stale_adapter",
            f"{artifact.label} was trained on another version of {variant.ai_model.slug!r}.",
        )
    current = variant_adapter(variant_id=variant.pk)
    if current is not None and current.pk == artifact.pk:
        raise AdaptationRefused(
            409, "already_promoted", f"{artifact.label} is already in service on {variant.name}."
        )
    decided_by, name = _decider(user)
    promotion = Promotion.objects.create(
        variant=variant,
        action=Promotion.Action.PROMOTE,
        from_artifact=current,
        to_artifact=artifact,
        decided_by=decided_by,
        decided_by_name=name,
        reason=reason,
    )
    _promotion_cache_clear()
    return promotion


@transaction.atomic
def adapter_rollback(*, variant_id: int, user: Any, reason: str = "") -> Promotion:
    """Take a variant back to what it served before its current adapter was promoted."""
    from variants.models import Variant

    variant = Variant.objects.select_for_update().get(pk=variant_id)
    current = variant_adapter(variant_id=variant.pk)
    if current is None:
        raise AdaptationRefused(409, "nothing_to_roll_back", f"{variant.name} serves the base model alone.")
    promoted = (
        Promotion.objects.filter(variant=variant, action=Promotion.Action.PROMOTE, to_artifact=current)
        .order_by("-id")
        .first()
    )
    target = promoted.from_artifact if promoted else None
    decided_by, name = _decider(user)
    rollback = Promotion.objects.create(
        variant=variant,
        action=Promotion.Action.ROLLBACK,
        from_artifact=current,
        to_artifact=target,
        decided_by=decided_by,
        decided_by_name=name,
        reason=reason,
    )
    _promotion_cache_clear()
    return rollback


# --- what the prompt gateway asks (FIG. 4.3 step 454) ---------------------------------------


@dataclass(frozen=True)
class AdapterChoice:
    """The adapter a request is served with, as the gateway and the worker need it."""

    artifact_id: int
    label: str
    directory: str
    secured: bool
    promoted: bool = False


def _choice(artifact: AdapterArtifact, *, promoted: bool) -> AdapterChoice:
    return AdapterChoice(
        artifact_id=artifact.pk,
        label=artifact.label,
        directory=str(artifact.directory),
        secured=artifact.secured,
        promoted=promoted,
    )


def adapter_resolve(*, requested: str, ai_model: AIModel) -> AdapterChoice:
    """Return the adapter a request names (``name`` for the newest version, or ``name@3``).

    Raises AdaptationRefused (422) for an unknown adapter or one made for another model.
    """
    name, _, version_text = requested.strip().partition("@")
    rows = AdapterArtifact.objects.filter(name=name)
    if version_text:
        digits = version_text.lstrip("v")
        if not digits.isdigit():
            raise AdaptationRefused(422, "unknown_adapter", f"Unknown adapter {requested[:100]!r}.")
        rows = rows.filter(version=int(digits))
    artifact = rows.order_by("-version").first()
    if artifact is None:
        raise AdaptationRefused(422, "unknown_adapter", f"Unknown adapter {requested[:100]!r}.")
    if artifact.ai_model_id != ai_model.pk:
        raise AdaptationRefused(
            422,
            "adapter_model_mismatch",
            f"Adapter {artifact.label} adapts another model than {ai_model.slug!r}.",
        )
    return _choice(artifact, promoted=False)


_promotion_cache: dict[int, tuple[float, AdapterChoice | None]] = {}
_promotion_cache_lock = threading.Lock()


def _promotion_cache_clear() -> None:
    with _promotion_cache_lock:
        _promotion_cache.clear()


def adapter_promoted(*, variant_id: int) -> AdapterChoice | None:
    """Return the adapter promoted on a variant, cached a moment per process.

    The gateway asks on every request; a two-second cache keeps that to one query per
    variant every two seconds, and a promotion takes effect everywhere within that time.
    """
    now = time.monotonic()
    with _promotion_cache_lock:
        cached = _promotion_cache.get(variant_id)
    if cached is not None and now - cached[0] < float(setting("ADAPTER_PROMOTION_CACHE_S")):
        return cached[1]
    artifact = variant_adapter(variant_id=variant_id)
    choice = _choice(artifact, promoted=True) if artifact is not None else None
    with _promotion_cache_lock:
        _promotion_cache[variant_id] = (now, choice)
    return choice


def adapter_use_record(*, request_id: uuid.UUID, choice: AdapterChoice) -> None:
    """Record which adapter served a prompt request (metadata, never text)."""
    AdapterUse.objects.create(request_id=request_id, artifact_id=choice.artifact_id, promoted=choice.promoted)


# --- FIG. 4.3 end to end: adapt, then serve the prompt with the adapted model ------------------


def adaptation_job_wait(*, job_id: int, timeout_s: float, poll_s: float = 0.2) -> AdaptationJob:
    """Block until a job ends or the timeout passes; return it as it stands then."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = AdaptationJob.objects.select_related("artifact").get(pk=job_id)
        if job.is_finished or time.monotonic() >= deadline:
            return job
        time.sleep(poll_s)


def adapted_prompt_generate(
    *,
    user: Any,
    submission: Any,
    client: Any,
    name: str,
    dataset: DatasetRequest,
    lora: dict[str, Any] | None = None,
    wait_s: float | None = None,
):
    """FIG. 4.3: classify the adaptation data, adapt on the variant it selects (steps 442-452),
    then serve the request with the adapted model through FIG. 2.3 (step 454).

    Returns (job, PromptOutcome). The prompt is held in memory only while the adaptation
    runs. Raises AdaptationRefused (validation, or 504 when the adaptation outlasts the
    wait: the job keeps running, and the prompt can be sent again naming its adapter) and
    the gateway's PromptRefused.
    """
    from dataclasses import replace

    from variants.services import prompt_generate

    ai_model_slug = submission.model
    if not ai_model_slug:
        from variants import selectors

        resolved = selectors.model_resolve(None, selectors.active_policy())
        if resolved is None:
            raise AdaptationRefused(422, "unknown_model", "No default model is configured; name a model.")
        ai_model_slug = resolved.slug
    job = adaptation_job_create(
        name=name,
        ai_model_slug=ai_model_slug,
        dataset=dataset,
        lora=lora,
        variant="auto",
        origin="fig-4.3",
        requested_by=user,
    )
    job = adaptation_job_wait(job_id=job.pk, timeout_s=float(wait_s or setting("ADAPTATION_WAIT_S")))
    if job.state != AdaptationJob.State.COMPLETED or job.artifact is None:
        if job.is_finished:
            raise AdaptationRefused(
                503, "adaptation_failed", f"Adaptation job {job.pk} ended {job.state}: {job.error}"
            )
        raise AdaptationRefused(
            504,
            "adaptation_timeout",
            f"Adaptation job {job.pk} is still running; send the prompt again with adapter={job.name!r} "
            "once it completes.",
            detail={"job": job.pk},
        )
    outcome = prompt_generate(
        user=user, submission=replace(submission, adapter=job.artifact.label), client=client
    )
    return job, outcome
