"""An administrator in a real browser: logs in, reads a pending recommendation and its plotly
chart, approves it, and watches the migration's progress update live as a worker runs it."""

import shutil

import pytest

from placement.loop import workload_evaluate, workload_request_placement
from placement.models import InitialPlacementPolicy, Migration
from placement.tests.conftest import control_worker
from telemetry.services import progress_record

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not shutil.which(CHROMIUM),
        reason="Debian Chromium is not installed (apt-get install -y chromium)",
    ),
]


@pytest.fixture
def pending_training_move(topology, placement_models):
    """A training job on the secured environment, recommended onto component A (FIG. 2.2).

    It has no checkpoint handler, so its migration needs only the control worker: it moves
    without a checkpoint (and the record says so).
    """
    InitialPlacementPolicy.objects.create(
        name="Training starts on the secured environment",
        order=1,
        strategy="fixed",
        match_kind="training",
        environment=topology.environments["secured"],
    )
    workload = workload_request_placement(
        name="nightly-training",
        kind="training",
        ai_model_id=topology.model.pk,
        batch_size=4,
        config={"steps_total": 100_000, "sequence_tokens": 2048},
        deploy=False,
    )
    for done in range(1, 6):
        progress_record(
            workload_id=workload.pk, fraction_done=done / 1000, seconds_per_step=0.9, steps_total=100_000
        )
    recommendation = workload_evaluate(workload_id=workload.pk, force=True).recommendation
    assert recommendation.to_environment == topology.environments["onprem-a"]
    return recommendation


def test_an_administrator_approves_in_the_browser_and_sees_the_migration_progress(
    live_server, pending_training_move, session_control_queue, django_user_model, monkeypatch
):
    from django.db import connection
    from playwright.sync_api import expect, sync_playwright

    django_user_model.objects.create_superuser("browser-admin", "", "a-long-password-42")
    recommendation = pending_training_move
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain
    # blocking queries from the test, not from async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/console/placement/")
            page.fill("#id_username", "browser-admin")
            page.fill("#id_password", "a-long-password-42")
            page.click("input[type=submit]")
            page.wait_for_url("**/console/placement/")

            card = page.locator(f"#recommendation-{recommendation.pk}")
            expect(card).to_contain_text("nightly-training")
            expect(card).to_contain_text("On-premise datacenter component A")
            # plotly.js (served by the console, not a CDN) drew the observed-vs-predicted chart
            chart = card.locator(f"#evidence-chart-{recommendation.pk}")
            expect(chart.locator(".main-svg").first).to_be_visible(timeout=30_000)
            expect(chart).to_contain_text("predicted")
            expect(chart).to_contain_text("observed")

            card.locator("input[name=reason]").first.fill("faster GPUs, same trust")
            card.locator("button.approve").click()
            page.wait_for_url("**/console/placement/#migration-*")
            migration = Migration.objects.get(recommendation=recommendation)
            row = page.locator(f"#migration-{migration.pk}")
            expect(row.locator(".state")).to_have_text("Pending")

            # A control worker picks the migration up; the page follows it without a reload
            with control_worker():
                expect(row.locator(".state")).to_have_text("Completed", timeout=60_000)
            expect(row.locator(".events")).to_contain_text("no checkpoint handler registered")
            assert row.locator("progress").get_attribute("value") == "100"
        finally:
            browser.close()
            # The ORM calls above ran while Playwright's event loop was running in this
            # thread, so they had a database connection of their own: close it here, or it
            # outlives the test and blocks dropping the test database.
            connection.close()
    migration.refresh_from_db()
    assert migration.state == "completed"
    assert migration.approval.reason == "faster GPUs, same trust"
