"""REST API of split inference: ``POST /api/v1/split/generate``.

Generates through the model's active split plan (``services.split_generate``) and answers
with the text, the tokens, the plan version(s) it ran on and its timings. Errors are JSON
(``console.api_errors``): a malformed body is 400, a request that can never succeed
(unknown model, empty prompt, ``max_new_tokens`` out of range) 422, and no active plan,
nodes down or a privacy=high request on an untrusted route 503.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api_errors import ServiceUnavailable, Unprocessable
from inference.split.coordinator import SplitFailure
from inference.split.services import PRIVACY_LEVELS, SplitRequestError, SplitUnavailable, split_generate
from variants.apis import AUTHENTICATION


class SplitGenerateSerializer(serializers.Serializer):
    model = serializers.SlugField(default="default", help_text="Slug of the AI model.")
    # Blank is let through so the service answers "prompt is empty" (422), like the model API.
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)
    max_new_tokens = serializers.IntegerField(default=32, help_text="Checked against the model's limits.")
    temperature = serializers.FloatField(default=0.0)
    top_p = serializers.FloatField(default=1.0)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None)
    stop_on_eos = serializers.BooleanField(default=True)
    privacy = serializers.ChoiceField(choices=PRIVACY_LEVELS, default="normal")


class SplitFailed(APIException):
    status_code = 502
    default_detail = "A split node failed to run its partition."
    default_code = "split_failed"


class SplitGenerateApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="split_generate",
        request=SplitGenerateSerializer,
        responses={200: None, 400: None, 422: None, 503: None},
        description="Generate through the model's active split plan (layer partitions on split nodes).",
    )
    def post(self, request: Request) -> Response:
        serializer = SplitGenerateSerializer(data=request.data)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        data = serializer.validated_data
        try:
            reply = split_generate(
                model_slug=data["model"],
                prompt=data["prompt"],
                max_new_tokens=data["max_new_tokens"],
                temperature=data["temperature"],
                top_p=data["top_p"],
                seed=data["seed"],
                stop_on_eos=data["stop_on_eos"],
                privacy=data["privacy"],
            )
        except SplitRequestError as exc:
            raise Unprocessable(detail=str(exc)) from None
        except SplitUnavailable as exc:
            raise ServiceUnavailable(detail=str(exc)) from None
        except SplitFailure as exc:
            raise SplitFailed(detail=str(exc)) from None
        generation = reply.generation
        decode_ms = generation.decode_ms
        return Response(
            {
                "model": data["model"],
                "text": reply.text,
                "tokens": reply.token_ids,
                "prompt_tokens": reply.prompt_tokens,
                "finish_reason": generation.finish_reason,
                "plan_version": generation.plan_versions[-1] if generation.plan_versions else None,
                "plan_versions": generation.plan_versions,
                "replays": generation.replays,
                "lost_nodes": generation.lost_nodes,
                "timings": {
                    "prefill_ms": round(generation.prefill_ms, 3),
                    "decode_ms_mean": round(sum(decode_ms) / len(decode_ms), 3) if decode_ms else None,
                    "decode_steps": len(decode_ms),
                },
                "boundary_bytes": generation.boundary_bytes,
            }
        )
