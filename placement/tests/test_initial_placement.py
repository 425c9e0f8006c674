import pytest

from placement.initial import Candidate, choose_environment
from placement.models import AIModel, FrontEndDevice, PlacementRecord, Workload
from placement.services import PlacementError, workload_place_initial


def candidates():
    return [
        Candidate(1, "big", trusted=True, gpu_count=64, gpus_in_use=60, links={10: (100, 2)}),
        Candidate(2, "mid", trusted=True, gpu_count=8, gpus_in_use=0, links={10: (10000, 3), 11: (10000, 3)}),
        Candidate(3, "cloud", trusted=False, gpu_count=16, gpus_in_use=0, links={12: (10000, 12)}),
    ]  # fmt: skip


def test_most_free_gpus_counts_gpus_already_taken():
    assert choose_environment("most_free_gpus", candidates()).slug == "cloud"
    assert choose_environment("most_free_gpus", candidates(), trusted_only=True).slug == "mid"


def test_nearest_front_end_prefers_bandwidth_over_a_slightly_lower_rtt():
    assert choose_environment("nearest_front_end", candidates(), front_end_ids=[10]).slug == "mid"
    # Nobody links to both 11 and 12
    assert choose_environment("nearest_front_end", candidates(), front_end_ids=[11, 12]) is None


def test_fixed_strategy_and_capacity():
    assert choose_environment("fixed", candidates(), fixed_id=3).slug == "cloud"
    assert choose_environment("fixed", candidates(), fixed_id=3, trusted_only=True) is None
    assert choose_environment("most_free_gpus", candidates(), gpus_required=20) is None
    with pytest.raises(ValueError, match="unknown initial placement strategy"):
        choose_environment("random", candidates())


@pytest.mark.django_db
def test_example_1_inferencing_workload_starts_on_component_a(demo):
    workload = Workload.objects.create(
        name="image-gen", kind="inferencing", objective="latency",
        ai_model=AIModel.objects.get(slug="default"),
    )  # fmt: skip
    workload.front_end_devices.set(FrontEndDevice.objects.filter(slug__in=["device-a", "device-b"]))
    record = workload_place_initial(workload_id=workload.id)
    workload.refresh_from_db()
    assert workload.environment.slug == "onprem-a"
    assert workload.state == "placed"
    assert record.decided_by == "policy:Inferencing starts where the GPUs are"
    with pytest.raises(PlacementError, match="already placed"):
        workload_place_initial(workload_id=workload.id)


@pytest.mark.django_db
def test_secured_workload_is_only_placed_on_a_trusted_environment(demo):
    model = AIModel.objects.get(slug="default")
    workload = Workload.objects.create(
        name="payroll-train", kind="training", objective="completion_time",
        ai_model=model, handles_secured_data=True, gpus_required=4,
    )  # fmt: skip
    workload_place_initial(workload_id=workload.id)
    workload.refresh_from_db()
    assert workload.environment.is_trusted
    public = Workload.objects.create(
        name="public-train", kind="training", objective="completion_time", ai_model=model,
        gpus_required=4,
    )  # fmt: skip
    workload_place_initial(workload_id=public.id)
    public.refresh_from_db()
    # the public workload goes where the most GPUs are free: component A (64)
    assert public.environment.slug == "onprem-a"
    assert PlacementRecord.objects.filter(workload=public).count() == 1
