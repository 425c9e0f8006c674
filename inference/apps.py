from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Inference and split inference"

    def ready(self) -> None:
        # Model adaptation and training jobs pause with a checkpoint and resume from it when
        # the placement loop migrates them; registered in every process, workers included.
        # Under their own key (their workloads name it in config), so workloads of the same
        # kinds that are not AdaptationJobs keep whatever handler they had.
        from inference.adaptation_services import (
            CHECKPOINT_HANDLER_KEY,
            adaptation_job_pause,
            adaptation_job_resume,
        )
        from placement.migration import register_checkpoint_handler

        register_checkpoint_handler(CHECKPOINT_HANDLER_KEY, adaptation_job_pause, adaptation_job_resume)
