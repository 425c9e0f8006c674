"""The prompt gateway: initial classification, payload classification, variant selection,
serving, and what is recorded about each request.

Flow of one request (patent FIG. 6 then FIG. 2.3):

- FIG. 6 step 602/604: the eligibility policy tags the request; not eligible -> step 606,
  the bypass environment serves it without variant selection.
- FIG. 2.3 step 242: the sensitivity classifier scores the prompt; at or above the
  policy's threshold -> secured variant (step 250, private path), below -> public variant
  (step 246, prompt and payload kept as a FeedbackExample, claim 2).
- Fail closed: a policy or classifier error sends the request to a secured variant, or
  refuses it (503) when none is available; the row records ``fail_closed`` and why.
- Session pinning: a conversation once routed to a secured variant stays there.

Nothing here writes, logs or raises the prompt's text; error messages name sizes,
fields and rule names only.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from inference.serving import (
    GenerationFailed,
    GenerationReply,
    ReplyChannel,
    ServingTarget,
    WorkerTimeout,
    generation_dispatch,
    reply_from_done,
    uses_private_path,
)
from placement.models import AIModel, ProductionEnvironment
from variants import selectors
from variants.eligibility import EligibilityRules, RequestFacts, decide_eligibility
from variants.models import (
    EligibilityPolicy,
    FeedbackExample,
    PromptRequest,
    SensitivityModel,
    SessionPin,
    Variant,
)

logger = logging.getLogger(__name__)


class PromptRefused(Exception):
    """The gateway refuses a request; ``status`` is the HTTP status, the message is safe to show."""

    def __init__(self, status: int, code: str, message: str, *, request_id: uuid.UUID | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True)
class PromptSubmission:
    """One request as the gateway receives it (validated for types and ranges)."""

    prompt: str  # what the model sees
    classify_text: str  # what the classifier reads (the messages' text for chat requests)
    model: str | None = None
    session_id: str | None = None
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    source: str = PromptRequest.Source.API
    # A LoRA adapter to serve with, "name" or "name@version" (FIG. 4.3 step 454).
    adapter: str | None = None


@dataclass(frozen=True)
class ClientFacts:
    """Where the request came from (for the private-network criterion)."""

    remote_addr: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RouteDecision:
    """Where one request goes and why; becomes its PromptRequest row."""

    request_id: uuid.UUID
    received_at: datetime
    eligible: bool
    eligibility_reason: str
    private_network: bool
    route: str
    ai_model: AIModel
    environment: ProductionEnvironment
    variant: Variant | None = None
    sensitivity: float | None = None
    categories: list[str] = field(default_factory=list)
    threshold: float | None = None
    policy_version: int | None = None
    classifier_version: int | None = None
    fail_closed: bool = False
    fail_reason: str = ""
    session_pinned: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    # inference.adaptation_services.AdapterChoice: named by the request or promoted on the variant.
    adapter: Any = None

    @property
    def target(self) -> ServingTarget:
        """Return where the generation runs."""
        return ServingTarget(
            environment_slug=self.environment.slug,
            private_path=uses_private_path(self.environment),
            model_dir=str(self.ai_model.path),
            adapter_dir=self.adapter.directory if self.adapter else None,
            adapter_label=self.adapter.label if self.adapter else None,
            split_model=self.ai_model.slug if self.variant is not None and self.variant.is_split else None,
        )

    @property
    def variant_kind(self) -> str | None:
        """Return "secured" or "public", or None for the bypass."""
        return self.variant.kind if self.variant else None

    def headers(self) -> dict[str, str]:
        """Return the routing metadata as response headers."""
        headers = {
            "X-Switchyard-Request-Id": str(self.request_id),
            "X-Switchyard-Route": self.route,
            "X-Switchyard-Variant": self.variant.name if self.variant else "none",
            "X-Switchyard-Environment": self.environment.slug,
            "X-Switchyard-Eligible": "true" if self.eligible else "false",
            "X-Switchyard-Sensitivity": "" if self.sensitivity is None else f"{self.sensitivity:.4f}",
            "X-Switchyard-Categories": ",".join(self.categories),
        }
        if self.fail_closed:
            headers["X-Switchyard-Fail-Closed"] = "true"
        if self.session_pinned:
            headers["X-Switchyard-Session-Pinned"] = "true"
        if self.adapter is not None:
            headers["X-Switchyard-Adapter"] = self.adapter.label
        return headers


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def session_key(user_id: int, session_id: str) -> str:
    """Return the stored key of a (user, session id) pair: an HMAC, so the id is not kept."""
    message = f"{user_id}:{session_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def session_is_pinned(*, user_id: int, session_id: str) -> bool:
    """Return True when this user's session was routed to a secured variant and the pin holds."""
    return SessionPin.objects.filter(
        key=session_key(user_id, session_id), expires_at__gt=timezone.now()
    ).exists()


def session_pin(*, user_id: int, session_id: str) -> None:
    """Pin a session to the secured variant for SESSION_PIN_TTL_S from now."""
    SessionPin.objects.update_or_create(
        key=session_key(user_id, session_id),
        defaults={
            "user_id": user_id,
            "expires_at": timezone.now() + timedelta(seconds=settings.SESSION_PIN_TTL_S),
        },
    )


def _user_groups(user: Any, rules: EligibilityRules) -> frozenset[str]:
    if not (rules.eligible_groups or rules.bypass_groups) or not getattr(user, "pk", None):
        return frozenset()
    return frozenset(user.groups.values_list("name", flat=True))


def prompt_route(*, user: Any, submission: PromptSubmission, client: ClientFacts) -> RouteDecision:
    """Decide where a request goes (FIG. 6 steps 602-610, FIG. 2.3 steps 242-244).

    Raises PromptRefused for an oversized prompt (413), an unknown model (422) and when no
    variant or environment can serve the request (503, recorded as a failed request).
    """
    started = time.perf_counter()
    received_at = timezone.now()
    request_id = uuid.uuid4()
    fail_reasons: list[str] = []
    try:
        snapshot = selectors.active_policy()
    except Exception as exc:  # noqa: BLE001 - any policy failure fails closed
        logger.error(
            "request %s: eligibility policy unusable (%s); failing closed", request_id, type(exc).__name__
        )
        snapshot = selectors.DEFAULT_POLICY
        fail_reasons.append(f"policy: {type(exc).__name__}")
    rules = snapshot.rules
    if len(submission.prompt) > rules.max_prompt_chars:
        raise PromptRefused(
            413,
            "prompt_too_long",
            f"The prompt has {len(submission.prompt)} characters; the limit is {rules.max_prompt_chars}.",
        )
    ai_model = selectors.model_resolve(submission.model, snapshot)
    if ai_model is None:
        if submission.model:
            raise PromptRefused(422, "unknown_model", f"Unknown model {submission.model[:100]!r}.")
        raise PromptRefused(422, "unknown_model", "No default model is configured; name a model.")
    adapter = _adapter_requested(submission.adapter, ai_model) if submission.adapter else None
    # FIG. 4.3 step 454 / Example 2: the adaptation payload is classified with the request; an
    # adapter learnt from secured data is itself secured, so the request is served secured.
    adapter_secured = bool(adapter and adapter.secured)

    # FIG. 6 step 602: the initial classification (the classification-eligible tag).
    if fail_reasons:
        eligible, reason, private = True, "policy_error", False
    else:
        try:
            facts = RequestFacts(
                prompt=submission.classify_text,
                remote_addr=client.remote_addr,
                headers=client.headers,
                groups=_user_groups(user, rules),
            )
            decision = decide_eligibility(rules, facts)
            eligible, reason, private = decision.eligible, decision.reason, decision.private_network
        except Exception as exc:  # noqa: BLE001 - fail closed
            logger.error("request %s: eligibility evaluation failed (%s)", request_id, type(exc).__name__)
            fail_reasons.append(f"policy: {type(exc).__name__}")
            eligible, reason, private = True, "policy_error", False

    if not eligible and adapter_secured:
        eligible, reason = True, "secured_adapter"
    if not eligible:
        # FIG. 6 step 606: straight to the default production environment, no variant selection.
        environment = selectors.bypass_environment(snapshot, ai_model)
        if environment is None:
            raise PromptRefused(
                503, "no_environment", "No production environment serves requests that skip classification."
            )
        return RouteDecision(
            request_id=request_id,
            received_at=received_at,
            eligible=False,
            eligibility_reason=reason,
            private_network=private,
            route=PromptRequest.Route.BYPASS,
            ai_model=ai_model,
            environment=environment,
            policy_version=rules.version or None,
            timings={"route_ms": _ms_since(started)},
            adapter=adapter,
        )

    # FIG. 6 step 610 -> FIG. 2.3 step 242: payload classification.
    sensitivity: float | None = None
    categories: list[str] = []
    classifier_version: int | None = None
    classify_started = time.perf_counter()
    try:
        classifier_version, classifier = selectors.active_classifier()
        result = classifier.classify(submission.classify_text)
        sensitivity = min(max(float(result.score), 0.0), 1.0)
        categories = sorted({str(category) for category in result.categories})
        if getattr(result, "failed_closed", False):
            # The classifier caught its own error and scored 1.0; record it as a failure.
            fail_reasons.append("classifier: classification failed")
    except Exception as exc:  # noqa: BLE001 - fail closed
        logger.error("request %s: classification failed (%s); failing closed", request_id, type(exc).__name__)
        fail_reasons.append(
            f"classifier: {exc}"
            if isinstance(exc, selectors.ClassifierUnavailable)
            else f"classifier: {type(exc).__name__}"
        )
    classify_ms = _ms_since(classify_started)

    pinned = False
    if submission.session_id and getattr(user, "pk", None):
        pinned = session_is_pinned(user_id=user.pk, session_id=submission.session_id)

    # FIG. 2.3 step 244: secured at or above the threshold, when pinned, or when failing closed.
    sensitive = sensitivity is not None and sensitivity >= rules.threshold
    wants_secured = sensitive or pinned or bool(fail_reasons) or adapter_secured
    available = selectors.variants_available(ai_model)
    variant = available.get(Variant.Kind.SECURED) if wants_secured else available.get(Variant.Kind.PUBLIC)
    note = ""
    if variant is None and not wants_secured and Variant.Kind.SECURED in available:
        # No public variant: serving on the secured one is always allowed, never the reverse.
        variant = available[Variant.Kind.SECURED]
        note = "no public variant available; served by the secured variant"
    decision = RouteDecision(
        request_id=request_id,
        received_at=received_at,
        eligible=True,
        eligibility_reason=reason,
        private_network=private,
        route=variant.kind if variant else (Variant.Kind.SECURED if wants_secured else Variant.Kind.PUBLIC),
        ai_model=ai_model,
        environment=variant.environment if variant else None,  # type: ignore[arg-type]
        variant=variant,
        sensitivity=sensitivity,
        categories=categories,
        threshold=rules.threshold,
        policy_version=rules.version or None,
        classifier_version=classifier_version,
        fail_closed=bool(fail_reasons),
        fail_reason="; ".join(fail_reasons)[:200] or note,
        session_pinned=pinned and not sensitive and not fail_reasons,
        timings={"classify_ms": classify_ms},
        adapter=adapter or (_adapter_promoted(variant) if variant else None),
    )
    if variant is None:
        kind = "secured" if wants_secured else "public"
        decision.timings["route_ms"] = _ms_since(started)
        prompt_record(
            decision=decision,
            user=user,
            source=submission.source,
            status=PromptRequest.Status.FAILED,
            error_code="no_variant",
        )
        raise PromptRefused(
            503,
            "no_variant",
            f"No {kind} variant of model {ai_model.slug!r} is available.",
            request_id=request_id,
        )
    if decision.route == Variant.Kind.SECURED and submission.session_id and getattr(user, "pk", None):
        session_pin(user_id=user.pk, session_id=submission.session_id)
    decision.timings["route_ms"] = _ms_since(started)
    return decision


def _adapter_requested(requested: str, ai_model: AIModel):
    """Return the adapter a request names; 422 when it is unknown or made for another model."""
    from inference.adaptation_services import AdaptationRefused, adapter_resolve

    try:
        return adapter_resolve(requested=requested, ai_model=ai_model)
    except AdaptationRefused as exc:
        raise PromptRefused(exc.status, exc.code, str(exc)) from None


def _adapter_promoted(variant: Variant):
    """Return the adapter an administrator promoted on the variant, if any (cached briefly)."""
    from inference.adaptation_services import adapter_promoted

    return adapter_promoted(variant_id=variant.pk)


def prompt_record(
    *,
    decision: RouteDecision,
    user: Any,
    source: str,
    status: str,
    error_code: str = "",
    reply: GenerationReply | None = None,
    prompt: str | None = None,
) -> PromptRequest:
    """Write the request's metadata row; for a completed public request also its FeedbackExample.

    ``prompt`` is only used for the public route: a secured or bypassed request's text is
    never passed on to the database. A lone row is one INSERT; with a feedback example or
    an adapter use they are written in one transaction.
    """
    completed = status == PromptRequest.Status.COMPLETED
    public = decision.route == PromptRequest.Route.PUBLIC
    feedback = public and completed and reply is not None and prompt is not None
    adapter_use = decision.adapter is not None and completed
    with transaction.atomic() if feedback or adapter_use else contextlib.nullcontext():
        row = PromptRequest.objects.create(
            id=decision.request_id,
            created_at=decision.received_at,
            user=user if getattr(user, "pk", None) else None,
            source=source,
            eligible=decision.eligible,
            eligibility_reason=decision.eligibility_reason,
            private_network=decision.private_network,
            route=decision.route,
            variant=decision.variant,
            environment=decision.environment,
            ai_model=decision.ai_model,
            sensitivity=decision.sensitivity,
            categories=decision.categories,
            threshold=decision.threshold,
            policy_version=decision.policy_version,
            classifier_version=decision.classifier_version,
            fail_closed=decision.fail_closed,
            fail_reason=decision.fail_reason,
            session_pinned=decision.session_pinned,
            status=status,
            error_code=error_code,
            prompt_tokens=reply.prompt_tokens if reply else None,
            completion_tokens=reply.completion_tokens if reply else None,
            finish_reason=reply.finish_reason if reply else "",
            timings=decision.timings,
            completed_at=timezone.now() if status != PromptRequest.Status.PENDING else None,
        )
        if adapter_use:
            from inference.adaptation_services import adapter_use_record

            adapter_use_record(request_id=row.pk, choice=decision.adapter)
        if feedback:
            # Claim 2: the public variant's prompts and payloads feed future training.
            FeedbackExample.objects.create(
                request=row, ai_model=decision.ai_model, prompt=prompt, payload=reply.text
            )
    return row


def _failure(exc: Exception) -> tuple[int, str, str]:
    if isinstance(exc, WorkerTimeout):
        return 504, "worker_timeout", str(exc)
    if isinstance(exc, GenerationFailed):
        status = 422 if exc.code == "invalid_request" else 503
        return status, exc.code, str(exc)
    return 503, "serving_failed", f"The request could not be served ({type(exc).__name__})."


def _finish_timings(decision: RouteDecision, started: float, reply: GenerationReply | None) -> None:
    total_ms = _ms_since(started)
    decision.timings["total_ms"] = total_ms
    if reply is not None:
        for name in ("model_ms", "queue_ms", "prefill_ms", "decode_ms_per_token"):
            if name in reply.worker_timings:
                decision.timings[name] = reply.worker_timings[name]
        decision.timings["overhead_ms"] = round(total_ms - reply.worker_timings.get("model_ms", 0.0), 3)


@dataclass
class PromptOutcome:
    decision: RouteDecision
    reply: GenerationReply
    record: PromptRequest


def prompt_generate(*, user: Any, submission: PromptSubmission, client: ClientFacts) -> PromptOutcome:
    """Route a request, serve it on the chosen environment, record it; return the payload.

    Raises PromptRefused (413/422/503/504) with a message that never quotes the prompt.
    """
    started = time.perf_counter()
    decision = prompt_route(user=user, submission=submission, client=client)
    channel: ReplyChannel | None = None
    try:
        channel = generation_dispatch(
            target=decision.target,
            request_id=str(decision.request_id),
            prompt=submission.prompt,
            max_new_tokens=submission.max_new_tokens,
            temperature=submission.temperature,
            top_p=submission.top_p,
            seed=submission.seed,
        )
        reply = channel.result()
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and reported as JSON
        status, code, message = _failure(exc)
        _finish_timings(decision, started, None)
        prompt_record(
            decision=decision,
            user=user,
            source=submission.source,
            status=PromptRequest.Status.FAILED,
            error_code=code,
        )
        raise PromptRefused(status, code, message, request_id=decision.request_id) from None
    finally:
        if channel is not None:
            channel.close()
    _finish_timings(decision, started, reply)
    record = prompt_record(
        decision=decision,
        user=user,
        source=submission.source,
        status=PromptRequest.Status.COMPLETED,
        reply=reply,
        prompt=submission.prompt if decision.route == PromptRequest.Route.PUBLIC else None,
    )
    prompt_latency_record(decision=decision)
    return PromptOutcome(decision=decision, reply=reply, record=record)


def prompt_latency_record(*, decision: RouteDecision) -> None:
    """Feed the monitoring agent the request's latency split (FIG. 2.1 step 204), metadata only.

    The sample belongs to the model's inferencing workload in the serving environment; without
    one there is nothing for the placement loop to move, so nothing is recorded. A telemetry
    failure never fails the request.
    """
    from telemetry.services import request_latency_record

    timings = decision.timings
    try:
        workload_id = selectors.inferencing_workload_id(decision.ai_model.pk, decision.environment.pk)
        if workload_id is None:
            return
        compute_ms = float(timings.get("model_ms", 0.0))
        queue_ms = float(timings.get("queue_ms", 0.0))
        # What the gateway saw beyond the worker's own time: moving the request and the reply.
        transfer_ms = max(float(timings.get("total_ms", 0.0)) - compute_ms - queue_ms, 0.0)
        request_latency_record(
            workload_id=workload_id,
            environment_id=decision.environment.pk,
            transfer_ms=transfer_ms,
            queue_ms=queue_ms,
            compute_ms=compute_ms,
        )
    except Exception:  # noqa: BLE001 - telemetry is best effort; the payload is already served
        logger.warning("request latency telemetry could not be recorded", exc_info=True)


class PromptStream:
    """A streaming generation: iterate ``pieces()``; ``reply`` is set when it finished.

    The request row is written when the iteration ends (finished, failed, or the client
    went away), so it always exists afterwards.
    """

    def __init__(
        self,
        *,
        user: Any,
        submission: PromptSubmission,
        decision: RouteDecision,
        channel: ReplyChannel,
        started: float,
    ) -> None:
        self.user = user
        self.submission = submission
        self.decision = decision
        self.channel = channel
        self.started = started
        self.reply: GenerationReply | None = None
        self.error: PromptRefused | None = None
        self._read = False

    def close(self) -> None:
        """Record the request as abandoned when the client left before its pieces were read."""
        if self._read:
            return
        self._read = True
        self.channel.close()
        _finish_timings(self.decision, self.started, None)
        prompt_record(
            decision=self.decision,
            user=self.user,
            source=self.submission.source,
            status=PromptRequest.Status.FAILED,
            error_code="client_gone",
        )

    def pieces(self) -> Iterator[str]:
        """Yield text pieces; on failure set ``error`` and stop."""
        self._read = True
        pieces: list[str] = []
        status, code = PromptRequest.Status.FAILED, "client_gone"
        try:
            for event in self.channel.events():
                if event["type"] == "piece":
                    pieces.append(event["text"])
                    yield event["text"]
                elif event["type"] == "done":
                    self.reply = reply_from_done(event, "".join(pieces), self.channel.attempt)
                    status, code = PromptRequest.Status.COMPLETED, ""
        except Exception as exc:  # noqa: BLE001 - reported in-band; the status line is already sent
            http_status, code, message = _failure(exc)
            self.error = PromptRefused(http_status, code, message, request_id=self.decision.request_id)
        finally:
            self.channel.close()
            _finish_timings(self.decision, self.started, self.reply)
            prompt_record(
                decision=self.decision,
                user=self.user,
                source=self.submission.source,
                status=status,
                error_code=code,
                reply=self.reply,
                prompt=self.submission.prompt if self.decision.route == PromptRequest.Route.PUBLIC else None,
            )


def prompt_stream_open(*, user: Any, submission: PromptSubmission, client: ClientFacts) -> PromptStream:
    """Route a request and wait until a worker has taken it; return the stream of its pieces.

    Failures before the first piece (no worker, invalid request) raise PromptRefused, so
    the client gets a proper HTTP status rather than an error inside a 200 stream.
    """
    started = time.perf_counter()
    decision = prompt_route(user=user, submission=submission, client=client)
    channel = generation_dispatch(
        target=decision.target,
        request_id=str(decision.request_id),
        prompt=submission.prompt,
        max_new_tokens=submission.max_new_tokens,
        temperature=submission.temperature,
        top_p=submission.top_p,
        seed=submission.seed,
        stream=True,
    )
    try:
        channel.wait_started()
    except Exception as exc:  # noqa: BLE001
        channel.close()
        status, code, message = _failure(exc)
        _finish_timings(decision, started, None)
        prompt_record(
            decision=decision,
            user=user,
            source=submission.source,
            status=PromptRequest.Status.FAILED,
            error_code=code,
        )
        raise PromptRefused(status, code, message, request_id=decision.request_id) from None
    return PromptStream(user=user, submission=submission, decision=decision, channel=channel, started=started)


# --- administration: the policy and the trained classifier ---------------------------------


@transaction.atomic
def eligibility_policy_activate(*, policy_id: int) -> EligibilityPolicy:
    """Make one policy the active one (the others are deactivated first: one active at a time)."""
    EligibilityPolicy.objects.filter(active=True).exclude(pk=policy_id).update(active=False)
    policy = EligibilityPolicy.objects.select_for_update().get(pk=policy_id)
    policy.active = True
    policy.save()  # bumps the version, so front-end devices fetch the new document
    return policy


@transaction.atomic
def sensitivity_model_activate(*, model_id: int) -> SensitivityModel:
    """Make one trained sensitivity model the one the gateway uses."""
    SensitivityModel.objects.filter(active=True).exclude(pk=model_id).update(active=False)
    row = SensitivityModel.objects.select_for_update().get(pk=model_id)
    row.active = True
    row.save(update_fields=["active"])
    _point_latest(row.directory)
    return row


def _point_latest(directory: Path) -> None:
    """Point ARTIFACT_DIR/sensitivity/latest at the active artifact (for tools outside Django)."""
    root = Path(settings.ARTIFACT_DIR) / "sensitivity"
    try:
        relative = directory.relative_to(root)
    except ValueError:
        return  # an artifact outside the store: leave the link alone
    link, staging = root / "latest", root / f".latest-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink(relative, staging)
        os.replace(staging, link)  # atomic: readers see the old target or the new one
    except OSError:
        staging.unlink(missing_ok=True)
        logger.warning("could not point %s at %s", link, relative)


def sensitivity_model_train(
    *,
    seed: int = 0,
    n_examples: int | None = None,
    activate: bool = True,
    progress: Callable[[str], None] | None = None,
) -> SensitivityModel:
    """Train a sensitivity classifier on generated data, store it as the next version.

    The artifact is written to a staging directory first and moved under
    ARTIFACT_DIR/sensitivity/v<version> only once complete, so a reader never loads a
    half-written model.
    """
    from variants.sensitivity import train_classifier

    root = Path(settings.ARTIFACT_DIR) / "sensitivity"
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".training-", dir=root))
    try:
        options: dict[str, Any] = {"seed": seed, "progress": progress}
        if n_examples is not None:
            options["n_examples"] = n_examples
        metrics = train_classifier(staging, **options)
        with transaction.atomic():
            latest = SensitivityModel.objects.aggregate(latest=Max("version"))["latest"]
            version = (latest or 0) + 1
            relative = Path("sensitivity") / f"v{version}"
            final = Path(settings.ARTIFACT_DIR) / relative
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
            final.chmod(0o755)  # mkdtemp made it private; workers under other users read it too
            row = SensitivityModel.objects.create(
                version=version,
                path=str(relative),
                metrics=_json_safe(metrics),
                seed=seed,
                n_examples=n_examples or _trained_examples(final),
            )
        if activate:
            row = sensitivity_model_activate(model_id=row.pk)
        return row
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _trained_examples(directory: Path) -> int:
    """Return how many examples the trainer generated, from the artifact's metadata if it says."""
    try:
        training = json.loads((directory / "meta.json").read_text()).get("training", {})
        return int(training.get("n_examples", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0


def _json_safe(value: Any) -> Any:
    """Return metrics as plain JSON values (numpy numbers become floats)."""
    return json.loads(
        json.dumps(value, default=lambda item: item.item() if hasattr(item, "item") else str(item))
    )
