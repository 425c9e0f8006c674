"""The prompt gateway's HTTP APIs: the REST API and an OpenAI-compatible chat completions API.

Views validate, call one service and render. Every error is JSON with a message (see
``console.api_errors``); none of them quotes the prompt.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api_errors import PayloadTooLarge, Unprocessable
from variants import selectors
from variants.models import PromptRequest
from variants.serializers import (
    RANGE_ERROR_CODES,
    ChatCompletionSerializer,
    PromptCreateSerializer,
    PromptDetailSerializer,
    PromptRequestSerializer,
    PromptResultSerializer,
    prompt_request_document,
)
from variants.services import (
    ClientFacts,
    PromptRefused,
    PromptSubmission,
    prompt_generate,
    prompt_stream_open,
)
from variants.throttles import PromptRateThrottle, tokens_charge


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with the token's user kept per process (``selectors.token_user``).

    A deleted token, a deactivated or deleted user takes effect on the next request: those
    changes invalidate the cache.
    """

    def authenticate_credentials(self, key: str):
        found = selectors.token_user(key)
        if found is None:
            raise AuthenticationFailed("Invalid token.")
        user, token = found
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return user, token


class BearerTokenAuthentication(CachedTokenAuthentication):
    """The same API tokens, sent as ``Authorization: Bearer <token>`` (what OpenAI clients send)."""

    keyword = "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Names the Bearer spelling of the API token in the OpenAPI schema."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "An API token, as OpenAI clients send it."}


AUTHENTICATION = [CachedTokenAuthentication, BearerTokenAuthentication, SessionAuthentication]


def _error_codes(errors) -> set[str]:
    if isinstance(errors, dict):
        return set().union(*(_error_codes(value) for value in errors.values())) if errors else set()
    if isinstance(errors, list):
        return set().union(*(_error_codes(value) for value in errors)) if errors else set()
    return {getattr(errors, "code", "invalid")}


def validated(serializer: serializers.Serializer) -> dict:
    """Return the validated data; 422 when only ranges are wrong, 400 for anything malformed."""
    if serializer.is_valid():
        return serializer.validated_data
    errors = serializer.errors
    if _error_codes(errors) <= RANGE_ERROR_CODES:
        raise Unprocessable(detail=errors)
    raise ValidationError(errors)


def refused(exc: PromptRefused) -> APIException:
    """Return the DRF exception for a gateway refusal (status and code carried over)."""
    detail: dict = {"detail": str(exc)}
    if exc.request_id is not None:
        detail["request_id"] = str(exc.request_id)
    error = APIException(detail=detail)
    error.status_code = exc.status
    error.default_code = exc.code
    return error


class PromptApiMixin:
    """Authentication, throttles and the body-size limit shared by the generation endpoints."""

    authentication_classes = AUTHENTICATION
    throttle_classes = [PromptRateThrottle]

    def dispatch(self, request, *args, **kwargs):
        # One read of the routing version serves authentication and routing alike.
        with selectors.request_scope():
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.PROMPT_MAX_REQUEST_BYTES:
            raise PayloadTooLarge(
                f"The request body has {length} bytes; the limit is {settings.PROMPT_MAX_REQUEST_BYTES}."
            )

    @staticmethod
    def client_facts(request: Request) -> ClientFacts:
        headers = {name.lower(): value for name, value in request.headers.items()}
        return ClientFacts(remote_addr=request.META.get("REMOTE_ADDR", ""), headers=headers)


def _with_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for name, value in headers.items():
        response[name] = value
    return response


class PromptCreateApi(PromptApiMixin, APIView):
    @extend_schema(
        operation_id="prompts_create",
        request=PromptCreateSerializer,
        responses={
            200: PromptResultSerializer,
            400: None,
            401: None,
            413: None,
            422: None,
            429: None,
            503: None,
            504: None,
        },
        description=(
            "Classify, route (secured / public / bypass) and serve one prompt. Secured requests keep "
            "metadata only; public ones keep prompt and payload for retraining."
        ),
    )
    def post(self, request: Request) -> Response:
        data = validated(PromptCreateSerializer(data=request.data))
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
            adapter=data.get("adapter"),
        )
        try:
            outcome = prompt_generate(
                user=request.user, submission=submission, client=self.client_facts(request)
            )
        except PromptRefused as exc:
            raise refused(exc) from None
        tokens_charge(request.user.pk, outcome.reply.completion_tokens)
        response = Response(
            prompt_request_document(outcome.record, payload=outcome.reply.text, adapter=outcome.reply.adapter)
        )
        return _with_headers(response, outcome.decision.headers())


class PromptDetailApi(APIView):
    authentication_classes = AUTHENTICATION

    @extend_schema(operation_id="prompts_retrieve", responses={200: PromptDetailSerializer, 404: None})
    def get(self, request: Request, request_id: uuid.UUID) -> Response:
        rows = PromptRequest.objects.select_related("variant", "environment", "ai_model", "feedback")
        if not request.user.is_staff:
            rows = rows.filter(user=request.user)
        row = rows.filter(pk=request_id).first()
        if row is None:
            raise NotFound("No such prompt request.")
        return Response(prompt_request_document(row, detail=True))


class EligibilityPolicyApi(APIView):
    """The active eligibility policy as a versioned document for front-end devices."""

    authentication_classes = AUTHENTICATION

    @extend_schema(
        operation_id="policy_eligibility",
        responses={
            200: OpenApiResponse(description="The policy document (see variants.eligibility)."),
            304: None,
        },
    )
    def get(self, request: Request) -> Response:
        snapshot = selectors.active_policy()
        document = snapshot.rules.document()
        etag = f'"eligibility-v{document["version"]}"'
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(document, headers={"ETag": etag, "Cache-Control": "no-cache"})


def chat_prompt(messages: list[dict]) -> str:
    """Return the text a plain causal model continues for a chat: one "role: text" line each."""
    lines = [f"{message['role']}: {message['content']}" for message in messages]
    return "\n".join(lines) + "\nassistant:"


def _sse(payload: dict | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


class _StreamBody:
    """A streamed response body whose close() (Django calls it) also records an unread stream."""

    def __init__(self, chunks: Iterator[bytes], stream) -> None:
        self._chunks = chunks
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()  # GeneratorExit in a started stream records it there
        self._stream.close()


class ChatCompletionsApi(PromptApiMixin, APIView):
    """``POST /v1/chat/completions`` in the OpenAI format, non-streaming and streaming (SSE)."""

    @extend_schema(
        operation_id="chat_completions_create",
        request=ChatCompletionSerializer,
        responses={
            200: inline_serializer(
                "ChatCompletionResponse",
                {
                    "id": serializers.CharField(),
                    "object": serializers.CharField(),
                    "created": serializers.IntegerField(),
                    "model": serializers.CharField(),
                    "choices": serializers.ListField(child=serializers.DictField()),
                    "usage": serializers.DictField(),
                },
            ),
            400: None,
            401: None,
            413: None,
            422: None,
            429: None,
            503: None,
            504: None,
        },  # fmt: skip
        description="OpenAI-compatible; routing metadata comes back in X-Switchyard-* headers.",
    )
    def post(self, request: Request) -> HttpResponse:
        data = validated(ChatCompletionSerializer(data=request.data))
        messages = [{"role": m["role"], "content": m["content"]} for m in data["messages"]]
        max_tokens = data.get("max_completion_tokens") or data.get("max_tokens") or 64
        submission = PromptSubmission(
            prompt=chat_prompt(messages),
            # The classifier reads what the user and system wrote, not the role labels.
            classify_text="\n".join(m["content"] for m in messages if m["content"]),
            model=data.get("model"),
            session_id=data.get("session_id") or request.headers.get("X-Switchyard-Session"),
            max_new_tokens=max_tokens,
            temperature=data["temperature"],
            top_p=data["top_p"],
            seed=data.get("seed"),
            source=PromptRequest.Source.OPENAI,
            adapter=data.get("adapter"),
        )
        client = self.client_facts(request)
        created = int(time.time())
        try:
            if data["stream"]:
                stream = prompt_stream_open(user=request.user, submission=submission, client=client)
            else:
                outcome = prompt_generate(user=request.user, submission=submission, client=client)
        except PromptRefused as exc:
            raise refused(exc) from None

        if not data["stream"]:
            reply = outcome.reply
            tokens_charge(request.user.pk, reply.completion_tokens)
            body = {
                "id": f"chatcmpl-{outcome.decision.request_id.hex}",
                "object": "chat.completion",
                "created": created,
                "model": outcome.decision.ai_model.slug,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "finish_reason": reply.finish_reason or "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                },
            }
            return _with_headers(Response(body), outcome.decision.headers())

        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        user_id = request.user.pk
        chunk_id = f"chatcmpl-{stream.decision.request_id.hex}"
        model_slug = stream.decision.ai_model.slug

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_slug,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }

        def events() -> Iterator[bytes]:
            yield _sse(chunk({"role": "assistant", "content": ""}))
            for piece in stream.pieces():
                yield _sse(chunk({"content": piece}))
            if stream.error is not None:
                error = {
                    "message": str(stream.error),
                    "code": stream.error.code,
                    "status": stream.error.status,
                }
                yield _sse({"error": error})
                return
            reply = stream.reply
            assert reply is not None
            tokens_charge(user_id, reply.completion_tokens)
            yield _sse(chunk({}, reply.finish_reason or "stop"))
            if include_usage:
                usage = {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                }
                yield _sse({**chunk({}), "choices": [], "usage": usage})
            yield _sse("[DONE]")

        response = StreamingHttpResponse(_StreamBody(events(), stream), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return _with_headers(response, stream.decision.headers())


__all__ = [
    "ChatCompletionsApi",
    "EligibilityPolicyApi",
    "PromptCreateApi",
    "PromptDetailApi",
    "PromptRequestSerializer",
]
