"""The Prometheus endpoint exposes the telemetry, the links and the loop's state."""

import re

import pytest

from telemetry.services import request_latency_record, sample_record
from telemetry.views import label_value, metric_name

pytestmark = pytest.mark.django_db

URL = "/console/metrics"
LINE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$'
)


def test_metrics_are_in_the_text_exposition_format(client, workload, environment):
    sample_record(environment_id=environment.pk, metric="cpu_percent", value=40.0, unit="percent")
    sample_record(environment_id=environment.pk, metric="cpu_percent", value=60.0, unit="percent")
    request_latency_record(
        workload_id=workload.pk, environment_id=environment.pk, transfer_ms=10, queue_ms=1, compute_ms=4
    )
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = response.content.decode().splitlines()
    for line in lines:
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or LINE.match(line), line
    assert "# TYPE switchyard_cpu_percent gauge" in lines
    assert 'switchyard_cpu_percent{environment="onprem-a",workload="",source="measured"} 50.0' in lines
    assert (
        'switchyard_latency_total_ms{environment="onprem-a",workload="images",source="measured"} 15.0'
        in lines
    )
    assert (
        'switchyard_link_bandwidth_mbps{from="Front-end device A",to="onprem-a",source="configured"} 100.0'
        in lines
    )
    assert 'switchyard_recommendations{state="pending"} 0' in lines
    assert 'switchyard_migrations{state="completed"} 0' in lines


def test_a_configured_token_is_required(client, settings, demo):
    settings.TELEMETRY_METRICS_TOKEN = "s3cret"
    assert client.get(URL).status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_label_values_and_names_are_escaped():
    assert label_value('a "quoted"\\path\nnext') == 'a \\"quoted\\"\\\\path\\nnext'
    assert metric_name("gpu-memory.used") == "switchyard_gpu_memory_used"
