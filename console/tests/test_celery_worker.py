"""A real Celery worker process, on the real broker, reads and writes the real database."""

import pytest

from console.testing import celery_worker
from placement.models import ProductionEnvironment
from placement.tasks import environment_heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


def test_environment_worker_records_its_heartbeat_in_the_database(demo):
    # Given the demo topology and a worker consuming component B's queue
    environment = ProductionEnvironment.objects.get(slug="onprem-b")
    assert environment.last_heartbeat_at is None
    with celery_worker([environment.queue_name]):
        # When a heartbeat task is sent to that queue
        result = environment_heartbeat.apply_async(args=[environment.id], queue=environment.queue_name)
        # Then the worker read the row (it returns the slug) and wrote the heartbeat time
        assert result.get(timeout=60) == "onprem-b"
    environment.refresh_from_db()
    assert environment.last_heartbeat_at is not None
    other = ProductionEnvironment.objects.get(slug="onprem-a")
    assert other.last_heartbeat_at is None
