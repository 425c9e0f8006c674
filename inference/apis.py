"""REST API of model adaptation and training workloads, their adapters and promotions.

- ``/api/v1/adaptations``: start (POST), list, watch (``/<id>``, with the live progress the
  worker publishes) and cancel (``/<id>/cancel``) adaptation and training jobs;
- ``/api/v1/trainings``: start a training workload on the public variant's feedback;
- ``/api/v1/adapters``: the versioned adapters with their metrics;
- ``/api/v1/promotions`` (+ ``/rollback``): put an adapter in service on a variant, or back;
- ``/api/v1/adapted-prompts``: FIG. 4.3 in one call: adapt on the data given, then answer
  the prompt with the adapted model on the variant FIG. 2.3 selects.

Views validate, call one service and render; errors are JSON (``console.api_errors``).
"""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api_errors import Unprocessable
from inference import adaptation_services as services
from inference.models import AdaptationJob, AdapterArtifact, Promotion
from inference.serializers import (
    RANGE_ERROR_CODES,
    AdaptationCreateSerializer,
    AdaptationJobSerializer,
    AdaptedPromptSerializer,
    AdapterArtifactSerializer,
    PromotionCreateSerializer,
    PromotionSerializer,
    RollbackCreateSerializer,
    TrainingCreateSerializer,
)
from variants.apis import AUTHENTICATION, PromptApiMixin, refused
from variants.services import PromptRefused, PromptSubmission

LIST_LIMIT = 200


def _codes(errors) -> set[str]:
    if isinstance(errors, dict):
        return set().union(*(_codes(value) for value in errors.values())) if errors else set()
    if isinstance(errors, list):
        return set().union(*(_codes(value) for value in errors)) if errors else set()
    return {getattr(errors, "code", "invalid")}


def validated(serializer) -> dict:
    """Return the validated data; 422 when only ranges are wrong, 400 for anything malformed."""
    if serializer.is_valid():
        return serializer.validated_data
    if _codes(serializer.errors) <= RANGE_ERROR_CODES:
        raise Unprocessable(detail=serializer.errors)
    raise ValidationError(serializer.errors)


def rejected(exc: services.AdaptationRefused) -> APIException:
    """Return the DRF exception for a refusal, keeping its status and code (the message has the counts)."""
    error = APIException(detail={"detail": str(exc)})
    error.status_code = exc.status
    error.default_code = exc.code
    return error


def _dataset(data: dict) -> services.DatasetRequest:
    if data.get("feedback"):
        return services.DatasetRequest(source=AdaptationJob.DatasetSource.FEEDBACK)
    if "file" in data:
        return services.DatasetRequest(source=AdaptationJob.DatasetSource.FILE, reference=data["file"])
    return services.DatasetRequest(source=AdaptationJob.DatasetSource.UPLOAD, texts=list(data["texts"]))


class StaffOrPermission(permissions.BasePermission):
    """Reads for any signed-in user with the view permission; writes for staff or the named one."""

    write_permission = ""
    read_permission = ""

    def has_permission(self, request: Request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if user.is_staff:
            return True
        wanted = self.read_permission if request.method in permissions.SAFE_METHODS else self.write_permission
        return bool(wanted) and user.has_perm(wanted)


class JobPermission(StaffOrPermission):
    read_permission = "inference.view_adaptationjob"
    write_permission = "inference.add_adaptationjob"


class JobChangePermission(StaffOrPermission):
    read_permission = "inference.view_adaptationjob"
    write_permission = "inference.change_adaptationjob"


class AdapterPermission(StaffOrPermission):
    read_permission = "inference.view_adapterartifact"


class PromotionPermission(StaffOrPermission):
    read_permission = "inference.view_promotion"
    write_permission = "inference.add_promotion"


def _jobs():
    return AdaptationJob.objects.select_related(
        "ai_model", "variant", "environment", "workload__environment", "artifact"
    )


class AdaptationListApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [JobPermission]

    @extend_schema(operation_id="adaptations_list", responses={200: AdaptationJobSerializer(many=True)})
    def get(self, request: Request) -> Response:
        jobs = _jobs()
        for name in ("kind", "state", "name"):
            if request.query_params.get(name):
                jobs = jobs.filter(**{name: request.query_params[name]})
        return Response(AdaptationJobSerializer(jobs[:LIST_LIMIT], many=True).data)

    @extend_schema(
        operation_id="adaptations_create",
        request=AdaptationCreateSerializer,
        responses={202: AdaptationJobSerializer, 400: None, 403: None, 413: None, 422: None, 503: None},
        description=(
            "Start a model adaptation workload (LoRA). With variant 'auto' the data is classified first "
            "(FIG. 4.3 step 442) and the job runs on the secured variant when any example is secured "
            "data, else on the public one. Secured data bound for a public variant is refused (422)."
        ),
    )
    def post(self, request: Request) -> Response:
        data = validated(AdaptationCreateSerializer(data=request.data))
        try:
            job = services.adaptation_job_create(
                name=data["name"],
                ai_model_slug=data["model"],
                dataset=_dataset(data["dataset"]),
                lora=dict(data.get("lora") or {}),
                variant=data["variant"],
                origin="api",
                requested_by=request.user,
            )
        except services.AdaptationRefused as exc:
            raise rejected(exc) from None
        return Response(AdaptationJobSerializer(_jobs().get(pk=job.pk)).data, status=202)


class AdaptationDetailApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [JobPermission]

    @extend_schema(operation_id="adaptations_retrieve", responses={200: AdaptationJobSerializer, 404: None})
    def get(self, request: Request, job_id: int) -> Response:
        job = _jobs().filter(pk=job_id).first()
        if job is None:
            raise NotFound("No such adaptation or training job.")
        return Response(AdaptationJobSerializer(job, context={"live": True}).data)


class AdaptationCancelApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [JobChangePermission]

    @extend_schema(
        operation_id="adaptations_cancel",
        request=None,
        responses={202: AdaptationJobSerializer, 404: None, 409: None},
    )
    def post(self, request: Request, job_id: int) -> Response:
        if not AdaptationJob.objects.filter(pk=job_id).exists():
            raise NotFound("No such adaptation or training job.")
        try:
            services.adaptation_job_cancel(job_id=job_id)
        except services.AdaptationRefused as exc:
            raise rejected(exc) from None
        return Response(AdaptationJobSerializer(_jobs().get(pk=job_id)).data, status=202)


class TrainingCreateApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [JobPermission]

    @extend_schema(
        operation_id="trainings_create",
        request=TrainingCreateSerializer,
        responses={202: AdaptationJobSerializer, 422: None, 503: None},
        description="Start a training workload on the public variant over its feedback examples (claim 2).",
    )
    def post(self, request: Request) -> Response:
        data = validated(TrainingCreateSerializer(data=request.data))
        try:
            job = services.training_from_feedback_start(
                ai_model_slug=data["model"],
                lora=dict(data.get("lora") or {}),
                name=data.get("name"),
                requested_by=request.user,
            )
        except services.AdaptationRefused as exc:
            raise rejected(exc) from None
        return Response(AdaptationJobSerializer(_jobs().get(pk=job.pk)).data, status=202)


def _in_service() -> dict[str, int | None]:
    """Return {variant name: artifact id it serves now}."""
    latest: dict[str, int | None] = {}
    for name, artifact_id in Promotion.objects.order_by("id").values_list("variant__name", "to_artifact_id"):
        latest[name] = artifact_id
    return latest


class AdapterListApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [AdapterPermission]

    @extend_schema(operation_id="adapters_list", responses={200: AdapterArtifactSerializer(many=True)})
    def get(self, request: Request) -> Response:
        artifacts = AdapterArtifact.objects.select_related("ai_model", "variant", "environment")
        if request.query_params.get("name"):
            artifacts = artifacts.filter(name=request.query_params["name"])
        if request.query_params.get("model"):
            artifacts = artifacts.filter(ai_model__slug=request.query_params["model"])
        serializer = AdapterArtifactSerializer(
            artifacts[:LIST_LIMIT], many=True, context={"in_service": _in_service()}
        )
        return Response(serializer.data)


def _variant(reference: str):
    from variants.models import Variant

    query = Q(name=reference) | (Q(pk=int(reference)) if reference.isdigit() else Q())
    variant = Variant.objects.filter(query).first()
    if variant is None:
        raise Unprocessable(f"Unknown variant {reference[:100]!r}.")
    return variant


class PromotionListApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [PromotionPermission]

    @extend_schema(operation_id="promotions_list", responses={200: PromotionSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = Promotion.objects.select_related("variant", "from_artifact", "to_artifact")[:LIST_LIMIT]
        return Response(PromotionSerializer(rows, many=True).data)

    @extend_schema(
        operation_id="promotions_create",
        request=PromotionCreateSerializer,
        responses={201: PromotionSerializer, 409: None, 422: None},
        description="Put an adapter version in service on a variant (recorded with who and when).",
    )
    def post(self, request: Request) -> Response:
        data = validated(PromotionCreateSerializer(data=request.data))
        variant = _variant(data["variant"])
        try:
            choice = services.adapter_resolve(requested=data["adapter"], ai_model=variant.ai_model)
            promotion = services.adapter_promote(
                variant_id=variant.pk,
                artifact_id=choice.artifact_id,
                user=request.user,
                reason=data.get("reason", ""),
            )
        except services.AdaptationRefused as exc:
            raise rejected(exc) from None
        return Response(PromotionSerializer(promotion).data, status=201)


class RollbackApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [PromotionPermission]

    @extend_schema(
        operation_id="promotions_rollback",
        request=RollbackCreateSerializer,
        responses={201: PromotionSerializer, 409: None, 422: None},
        description="Take a variant back to the adapter (or base model) it served before its current one.",
    )
    def post(self, request: Request) -> Response:
        data = validated(RollbackCreateSerializer(data=request.data))
        variant = _variant(data["variant"])
        try:
            rollback = services.adapter_rollback(
                variant_id=variant.pk, user=request.user, reason=data.get("reason", "")
            )
        except services.AdaptationRefused as exc:
            raise rejected(exc) from None
        return Response(PromotionSerializer(rollback).data, status=201)


class AdaptedPromptApi(PromptApiMixin, APIView):
    """FIG. 4.3: adapt the model on the data given (on the variant its sensitivity selects),
    then serve the prompt with the adapted model through FIG. 2.3."""

    @extend_schema(
        operation_id="adapted_prompts_create",
        request=AdaptedPromptSerializer,
        responses={200: None, 400: None, 401: None, 413: None, 422: None, 429: None, 503: None, 504: None},
    )
    def post(self, request: Request) -> Response:
        from variants.models import PromptRequest
        from variants.serializers import prompt_request_document
        from variants.throttles import tokens_charge

        data = validated(AdaptedPromptSerializer(data=request.data))
        spec = data["adaptation"]
        submission = PromptSubmission(
            prompt=data["prompt"],
            classify_text=data["prompt"],
            model=data.get("model"),
            session_id=data.get("session_id"),
            max_new_tokens=data["max_new_tokens"],
            temperature=data["temperature"],
            top_p=data["top_p"],
            seed=data.get("seed"),
            source=PromptRequest.Source.API,
        )
        try:
            job, outcome = services.adapted_prompt_generate(
                user=request.user,
                submission=submission,
                client=self.client_facts(request),
                name=spec["name"],
                dataset=_dataset(spec["dataset"]),
                lora=dict(spec.get("lora") or {}),
            )
        except services.AdaptationRefused as exc:
            raise rejected(exc) from None
        except PromptRefused as exc:
            raise refused(exc) from None
        tokens_charge(request.user.pk, outcome.reply.completion_tokens)
        document = prompt_request_document(
            outcome.record, payload=outcome.reply.text, adapter=outcome.reply.adapter
        )
        document["adaptation"] = {
            "job": job.pk,
            "variant": job.variant.kind if job.variant_id else None,
            "environment": job.environment.slug if job.environment_id else None,
            "sensitive_examples": job.sensitive_examples,
            "secured": job.secured,
            "adapter": job.artifact.label if job.artifact_id else None,
            "metrics": job.artifact.metrics if job.artifact_id else None,
        }
        response = Response(document)
        for name, value in outcome.decision.headers().items():
            response[name] = value
        return response
