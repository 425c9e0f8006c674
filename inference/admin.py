"""Admin for model adaptation and training workloads, their adapters and promotions.

Jobs are started from the add form (which goes through the same service as the API, so
the same validation applies), watched in the list (steps, loss, ETA), and cancelled or
resumed with actions. Adapters are listed with their metrics; promotions and rollbacks
are added through the service, which records who decided and what changed, and are
read-only afterwards.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from inference import adaptation_services as services
from inference.models import AdaptationJob, AdapterArtifact, AdapterUse, Promotion, TrainingJob


class AdaptationJobStartForm(forms.ModelForm):
    """Start a job: one of a dataset file, texts, or the feedback set; LoRA settings as JSON."""

    dataset_file = forms.CharField(required=False, help_text="A JSONL file under ARTIFACT_DIR/datasets.")
    texts = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text="One training text per line."
    )
    use_feedback = forms.BooleanField(
        required=False, help_text="Train on the public variant's feedback examples of the model."
    )
    lora_settings = forms.JSONField(
        required=False,
        initial=dict,
        help_text='e.g. {"rank": 8, "steps": 200, "learning_rate": 0.001}; blank fields take the defaults.',
    )
    target_variant = forms.CharField(
        initial="auto",
        help_text="auto (FIG. 4.3: chosen by the data's sensitivity), public, secured, or a variant name.",
    )

    class Meta:
        model = AdaptationJob
        fields = ["name", "kind", "ai_model"]

    def __init__(self, *args, request=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        sources = [
            bool(data.get("dataset_file")),
            bool(data.get("texts", "").strip()),
            data.get("use_feedback"),
        ]
        if sum(sources) != 1:
            raise forms.ValidationError("Give exactly one of a dataset file, texts, or the feedback set.")
        if data.get("use_feedback"):
            dataset = services.DatasetRequest(source=AdaptationJob.DatasetSource.FEEDBACK)
        elif data.get("dataset_file"):
            dataset = services.DatasetRequest(
                source=AdaptationJob.DatasetSource.FILE, reference=data["dataset_file"]
            )
        else:
            lines = [line for line in data["texts"].splitlines() if line.strip()]
            dataset = services.DatasetRequest(source=AdaptationJob.DatasetSource.UPLOAD, texts=lines)
        try:
            # Created here, inside the admin's transaction, so a refusal shows on the form.
            self.instance = services.adaptation_job_create(
                name=data["name"],
                ai_model_slug=data["ai_model"].slug,
                dataset=dataset,
                lora=data.get("lora_settings") or {},
                variant=data.get("target_variant") or "auto",
                kind=data["kind"],
                origin="admin",
                requested_by=getattr(self.request, "user", None),
            )
        except services.AdaptationRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.action(description="Cancel the selected jobs")
def cancel_jobs(modeladmin, request, queryset) -> None:
    cancelled = 0
    for job in queryset:
        try:
            services.adaptation_job_cancel(job_id=job.pk)
            cancelled += 1
        except services.AdaptationRefused as exc:
            modeladmin.message_user(request, f"{job}: {exc}", messages.WARNING)
    modeladmin.message_user(request, f"{cancelled} job(s) cancelled or asked to stop.")


@admin.action(description="Resume the selected paused jobs from their checkpoints")
def resume_jobs(modeladmin, request, queryset) -> None:
    resumed = 0
    for job in queryset.filter(state=AdaptationJob.State.PAUSED).select_related("workload"):
        environment_id = job.workload.environment_id if job.workload_id else job.environment_id
        AdaptationJob.objects.filter(pk=job.pk, state=AdaptationJob.State.PAUSED).update(
            state=AdaptationJob.State.QUEUED
        )
        services.job_dispatch(job_id=job.pk, environment_id=environment_id)
        resumed += 1
    modeladmin.message_user(request, f"{resumed} job(s) queued to resume.")


@admin.register(AdaptationJob)
class AdaptationJobAdmin(admin.ModelAdmin):
    list_display = [
        "id", "name", "kind", "state", "ai_model", "variant", "environment", "progress",
        "last_loss", "eta_s", "sensitive_examples", "secured", "artifact", "created_at",
    ]  # fmt: skip
    list_filter = ["kind", "state", "secured", "origin"]
    search_fields = ["name", "requested_by_name"]
    actions = [cancel_jobs, resume_jobs]
    list_select_related = ["ai_model", "variant", "environment", "artifact"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        if obj is None:
            return []
        return [field.name for field in AdaptationJob._meta.fields] + ["progress"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        base = AdaptationJobStartForm

        class StartForm(base):
            def __init__(self, *args, **inner) -> None:
                super().__init__(*args, request=request, **inner)

        return StartForm

    def get_fields(self, request, obj=None):
        if obj is None:
            return [
                "name",
                "kind",
                "ai_model",
                "dataset_file",
                "texts",
                "use_feedback",
                "lora_settings",
                "target_variant",
            ]
        return super().get_fields(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
        # On add, the form's clean() already created the job through the service.

    def has_change_permission(self, request, obj=None) -> bool:
        # Jobs change through their runs and the actions, never by editing fields.
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description="progress")
    def progress(self, job: AdaptationJob) -> str:
        return format_html("{} / {} ({}%)", job.steps_done, job.steps_total, round(job.fraction_done * 100))


@admin.register(TrainingJob)
class TrainingJobAdmin(AdaptationJobAdmin):
    """Training workloads (claim 2) only: runs over the public variant's feedback."""


@admin.register(AdapterArtifact)
class AdapterArtifactAdmin(admin.ModelAdmin):
    list_display = [
        "label", "kind", "ai_model", "secured", "rank", "final_loss", "heldout_perplexity",
        "base_heldout_perplexity", "seconds", "variant", "environment", "created_at",
    ]  # fmt: skip
    list_filter = ["kind", "secured", "ai_model"]
    search_fields = ["name", "dataset_ref"]
    readonly_fields = [field.name for field in AdapterArtifact._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # artifacts come from finished runs only

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="final loss")
    def final_loss(self, artifact: AdapterArtifact):
        return artifact.metrics.get("final_loss")

    @admin.display(description="held-out perplexity")
    def heldout_perplexity(self, artifact: AdapterArtifact):
        return artifact.metrics.get("heldout_perplexity")

    @admin.display(description="base perplexity")
    def base_heldout_perplexity(self, artifact: AdapterArtifact):
        return artifact.metrics.get("base_heldout_perplexity")

    @admin.display(description="seconds")
    def seconds(self, artifact: AdapterArtifact):
        return artifact.metrics.get("seconds")


class PromotionForm(forms.ModelForm):
    class Meta:
        model = Promotion
        fields = ["variant", "action", "to_artifact", "reason"]

    def __init__(self, *args, request=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        user = getattr(self.request, "user", None)
        try:
            if data["action"] == Promotion.Action.PROMOTE:
                if data.get("to_artifact") is None:
                    raise forms.ValidationError("Choose the adapter to promote.")
                self.instance = services.adapter_promote(
                    variant_id=data["variant"].pk,
                    artifact_id=data["to_artifact"].pk,
                    user=user,
                    reason=data.get("reason", ""),
                )
            else:
                self.instance = services.adapter_rollback(
                    variant_id=data["variant"].pk, user=user, reason=data.get("reason", "")
                )
        except services.AdaptationRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "variant",
        "action",
        "from_artifact",
        "to_artifact",
        "decided_by_name",
        "reason",
    ]
    list_filter = ["action", "variant"]
    list_select_related = ["variant", "from_artifact", "to_artifact"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)

        class Form(PromotionForm):
            def __init__(self, *args, **inner) -> None:
                super().__init__(*args, request=request, **inner)

        return Form

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in Promotion._meta.fields] if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:
        pass  # the form's clean() recorded it through the service; records are never edited

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the audit trail of what served where stays


@admin.register(AdapterUse)
class AdapterUseAdmin(admin.ModelAdmin):
    list_display = ["created_at", "request", "artifact", "promoted"]
    list_select_related = ["artifact"]
    readonly_fields = ["request", "artifact", "promoted", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# Split inference's admin pages live beside its models.
from inference.split import admin as split_admin  # noqa: F401,E402
