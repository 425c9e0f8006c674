"""Input and output shapes of the prompt APIs.

Validation messages never quote the submitted prompt or messages: they name the field
and the rule only, because DRF puts them in responses and they could reach logs.
"""

from __future__ import annotations

from rest_framework import serializers

from variants.models import PromptRequest

# The runtime's cap (inference.runtime.MAX_NEW_TOKENS_CAP), repeated so the web process does
# not import torch; a test keeps the two equal.
MAX_NEW_TOKENS_CAP = 2048

# Errors with these codes mean "well-formed but out of range" (HTTP 422); others are 400.
RANGE_ERROR_CODES = frozenset({"min_value", "max_value", "unsupported"})
MAX_TEMPERATURE = 2.0


def _validate_not_blank(value: str) -> str:
    if not value.strip():
        raise serializers.ValidationError("The prompt is empty.", code="blank")
    return value


class GenerationParamsSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, allow_null=True, max_length=100)
    session_id = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=200,
        help_text="Conversation id; once routed to the secured variant, its later turns stay there.",
    )
    temperature = serializers.FloatField(
        required=False, default=0.0, min_value=0.0, max_value=MAX_TEMPERATURE
    )
    top_p = serializers.FloatField(required=False, default=1.0, min_value=0.0, max_value=1.0)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**63 - 1)
    adapter = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=120,
        help_text="A LoRA adapter to serve with: name (newest version) or name@version.",
    )

    def validate_top_p(self, value: float) -> float:
        if value <= 0.0:
            raise serializers.ValidationError("Ensure this value is greater than 0.", code="min_value")
        return value


class PromptCreateSerializer(GenerationParamsSerializer):
    prompt = serializers.CharField(
        trim_whitespace=False,
        error_messages={"blank": "The prompt is empty."},
        validators=[_validate_not_blank],
        help_text="The prompt text.",
    )
    max_new_tokens = serializers.IntegerField(
        required=False, default=64, min_value=1, max_value=MAX_NEW_TOKENS_CAP
    )


class ChatMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "developer", "user", "assistant", "tool"])
    # A string, or a list of content parts of which the text parts are used.
    content = serializers.JSONField()
    name = serializers.CharField(required=False, max_length=64)

    def validate_content(self, value) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            texts = []
            for part in value:
                if (
                    not isinstance(part, dict)
                    or part.get("type") != "text"
                    or not isinstance(part.get("text"), str)
                ):
                    raise serializers.ValidationError(
                        "Only text content parts are supported.", code="unsupported"
                    )
                texts.append(part["text"])
            return "\n".join(texts)
        raise serializers.ValidationError("Content must be a string or a list of text parts.", code="invalid")


class StreamOptionsSerializer(serializers.Serializer):
    include_usage = serializers.BooleanField(required=False, default=False)


class ChatCompletionSerializer(GenerationParamsSerializer):
    """The OpenAI chat completions request (the subset a text-only model can honour)."""

    model = serializers.CharField(required=False, allow_null=True, max_length=100)
    messages = ChatMessageSerializer(many=True, allow_empty=False)
    max_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_NEW_TOKENS_CAP
    )
    max_completion_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_NEW_TOKENS_CAP
    )
    stream = serializers.BooleanField(required=False, default=False)
    stream_options = StreamOptionsSerializer(required=False, allow_null=True)
    n = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1)
    user = serializers.CharField(required=False, allow_null=True, max_length=200)

    def validate_messages(self, messages: list[dict]) -> list[dict]:
        if not any(str(message.get("content") or "").strip() for message in messages):
            raise serializers.ValidationError("The messages hold no text.", code="blank")
        return messages


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField(allow_null=True)
    completion_tokens = serializers.IntegerField(allow_null=True)


class PromptRequestSerializer(serializers.ModelSerializer):
    """A request's metadata; public requests add their kept prompt and payload."""

    variant = serializers.SerializerMethodField()
    variant_name = serializers.CharField(source="variant.name", default=None, read_only=True)
    environment = serializers.CharField(source="environment.slug", default=None, read_only=True)
    model = serializers.CharField(source="ai_model.slug", default=None, read_only=True)
    usage = serializers.SerializerMethodField()
    adapter = serializers.SerializerMethodField()

    class Meta:
        model = PromptRequest
        fields = [
            "id", "created_at", "completed_at", "status", "error_code", "source",
            "eligible", "eligibility_reason", "private_network", "route", "variant", "variant_name",
            "environment", "model", "sensitivity", "categories", "threshold",
            "policy_version", "classifier_version", "fail_closed", "fail_reason", "session_pinned",
            "finish_reason", "usage", "timings", "adapter",
        ]  # fmt: skip
        read_only_fields = fields

    def get_adapter(self, row: PromptRequest) -> str | None:
        return adapter_label(row)

    def get_variant(self, row: PromptRequest) -> str | None:
        return row.variant.kind if row.variant_id else None

    def get_usage(self, row: PromptRequest) -> dict:
        return {"prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens}


class PromptDetailSerializer(PromptRequestSerializer):
    prompt = serializers.SerializerMethodField()
    payload = serializers.SerializerMethodField()

    class Meta(PromptRequestSerializer.Meta):
        fields = [*PromptRequestSerializer.Meta.fields, "prompt", "payload"]
        read_only_fields = fields

    def _feedback(self, row: PromptRequest):
        return getattr(row, "feedback", None) if row.route == PromptRequest.Route.PUBLIC else None

    def get_prompt(self, row: PromptRequest) -> str | None:
        feedback = self._feedback(row)
        return feedback.prompt if feedback else None

    def get_payload(self, row: PromptRequest) -> str | None:
        feedback = self._feedback(row)
        return feedback.payload if feedback else None


class PromptResultSerializer(PromptRequestSerializer):
    """The answer to POST /api/v1/prompts: the metadata plus the generated payload."""

    payload = serializers.CharField(read_only=True)

    class Meta(PromptRequestSerializer.Meta):
        fields = [*PromptRequestSerializer.Meta.fields, "payload"]
        read_only_fields = fields


def adapter_label(row: PromptRequest) -> str | None:
    """Return ``name@version`` of the adapter that served a request, or None."""
    from inference.models import AdapterUse

    found = (
        AdapterUse.objects.filter(request_id=row.pk)
        .values_list("artifact__name", "artifact__version")
        .first()
    )
    return f"{found[0]}@{found[1]}" if found else None


_LOOK_UP = object()


def prompt_request_document(
    row: PromptRequest, *, payload: str | None = None, detail: bool = False, adapter: object = _LOOK_UP
) -> dict:
    """Return a request row in the shape of PromptRequestSerializer (plus payload/prompt).

    Written out by hand because the gateway renders one per request: building a
    ModelSerializer's fields each time costs more than the rest of the response.
    ``tests/test_api_errors.py`` checks the keys against the serializers.
    """
    document = {
        "id": str(row.id),
        "created_at": _iso(row.created_at),
        "completed_at": _iso(row.completed_at),
        "status": row.status,
        "error_code": row.error_code,
        "source": row.source,
        "eligible": row.eligible,
        "eligibility_reason": row.eligibility_reason,
        "private_network": row.private_network,
        "route": row.route,
        "variant": row.variant.kind if row.variant_id else None,
        "variant_name": row.variant.name if row.variant_id else None,
        "environment": row.environment.slug if row.environment_id else None,
        "model": row.ai_model.slug if row.ai_model_id else None,
        "sensitivity": row.sensitivity,
        "categories": row.categories,
        "threshold": row.threshold,
        "policy_version": row.policy_version,
        "classifier_version": row.classifier_version,
        "fail_closed": row.fail_closed,
        "fail_reason": row.fail_reason,
        "session_pinned": row.session_pinned,
        "finish_reason": row.finish_reason,
        "usage": {"prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens},
        "timings": row.timings,
        # The view that served the request passes the adapter it used, saving a query.
        "adapter": adapter_label(row) if adapter is _LOOK_UP else adapter,
    }
    if detail:
        feedback = getattr(row, "feedback", None) if row.route == PromptRequest.Route.PUBLIC else None
        document["prompt"] = feedback.prompt if feedback else None
        document["payload"] = feedback.payload if feedback else None
    elif payload is not None:
        document["payload"] = payload
    return document


def _iso(moment) -> str | None:
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
