"""The browser plug-in (extension/) tags prompts exactly as the server's initial classification
does (FIG. 6 steps 602-604), using the policy document the API publishes, in real Chromium."""

import json
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from variants.eligibility import RequestFacts, decide_eligibility
from variants.models import EligibilityPolicy

CHROMIUM = "/usr/bin/chromium"
EXTENSION = Path(settings.BASE_DIR) / "extension"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not shutil.which(CHROMIUM), reason="Debian Chromium is not installed (apt-get install -y chromium)"
    ),
]

CASES = [
    ("Summarise this article about tides", ["finance"]),
    ("hi", ["finance"]),  # short: bypass
    ("Please review my diagnosis letter", []),  # classify phrase beats everything
    ("Translate the public press release into French", ["finance"]),  # bypass phrase
    ("Translate the public press release; also my diagnosis", ["contractors"]),
    ("Draft an email to the whole team about Friday", ["contractors"]),  # bypass group
    ("Draft an email to the whole team about Friday", ["interns"]),  # not in eligible groups
    ("Draft an email to the whole team about Friday", ["finance"]),
]


def test_plugin_tags_match_the_servers_decisions(client, django_user_model):
    # Given an administrator's policy with every kind of rule, published by the API
    finance, _ = Group.objects.get_or_create(name="finance")
    contractors, _ = Group.objects.get_or_create(name="contractors")
    Group.objects.get_or_create(name="interns")
    policy = EligibilityPolicy.objects.create(
        name="Branch offices",
        bypass_max_chars=5,
        classify_phrases="diagnosis\n",
        bypass_phrases="public press release\n",
    )
    policy.eligible_groups.set([finance, contractors])
    policy.bypass_groups.set([contractors])
    user = django_user_model.objects.create_user("alice", password="a-long-password-42")
    token = Token.objects.create(user=user)
    response = client.get("/api/v1/policy/eligibility", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    document = response.json()
    assert document["classify_phrases"] == ["diagnosis"]

    expected = [
        decide_eligibility(policy.rules(), RequestFacts(prompt=prompt, groups=frozenset(groups)))
        for prompt, groups in CASES
    ]

    # When the plug-in's policy.js evaluates the same prompts in Chromium
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.set_content("<html><body></body></html>")
            page.add_script_tag(path=str(EXTENSION / "policy.js"))
            tags = page.evaluate(
                """([policy, cases]) => cases.map(([prompt, groups]) =>
                    decideEligibility(policy, {prompt, groups, privateNetwork: null}))""",
                [document, CASES],
            )
        finally:
            browser.close()

    # Then every tag and the rule that decided it agree with the server
    assert [(t["eligible"], t["reason"]) for t in tags] == [(d.eligible, d.reason) for d in expected]
    assert [d.reason for d in expected] == [
        "default", "short_prompt", "classify_phrase", "bypass_phrase",
        "classify_phrase", "bypass_group", "not_in_eligible_groups", "default",
    ]  # fmt: skip


def test_plugin_manifest_names_files_that_exist():
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert manifest["manifest_version"] == 3
    for name in [manifest["action"]["default_popup"], manifest["options_page"], "policy.js", "popup.js"]:
        assert (EXTENSION / name).is_file(), name
