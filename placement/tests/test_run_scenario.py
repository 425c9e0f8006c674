"""The scenario command refuses bad arguments before it starts anything (the story itself is
asserted end to end in test_example1_workers.py, through the same ``example1_run``)."""

import pytest
from django.core.management import CommandError, call_command


def test_an_unknown_scenario_is_refused():
    with pytest.raises(CommandError, match="invalid choice: 'example9'"):
        call_command("run_scenario", "example9")


@pytest.mark.django_db
def test_a_scenario_needs_at_least_one_request_per_device():
    with pytest.raises(CommandError, match="--requests must be at least 1"):
        call_command("run_scenario", "example1", "--requests", "0")
