import pytest


@pytest.fixture
def environment(demo):
    from placement.models import ProductionEnvironment

    return ProductionEnvironment.objects.get(slug="onprem-a")


@pytest.fixture
def workload(demo, environment):
    from placement.models import AIModel, Workload

    return Workload.objects.create(
        name="images",
        kind="inferencing",
        ai_model=AIModel.objects.get(slug="default"),
        objective="latency",
        environment=environment,
        state="placed",
    )
