"""The initial classification rules (FIG. 6 step 602), as a pure function."""

import pytest

from variants.eligibility import (
    EligibilityRules,
    NetworkRule,
    PolicyError,
    RequestFacts,
    decide_eligibility,
    is_private_network,
)


def decide(rules: EligibilityRules, prompt: str = "Summarise this contract for me.", **facts):
    return decide_eligibility(rules, RequestFacts(prompt=prompt, **facts))


def test_default_rules_make_every_request_eligible():
    decision = decide(EligibilityRules(), "hi")

    assert (decision.eligible, decision.reason) == (True, "default")


def test_short_prompts_bypass_classification_when_the_policy_says_so():
    rules = EligibilityRules(bypass_max_chars=5)

    assert decide(rules, "  hi  ").reason == "short_prompt"
    assert decide(rules, "hello there").eligible is True


def test_a_bypass_phrase_skips_classification_but_a_classify_phrase_wins_over_it():
    rules = EligibilityRules(bypass_phrases=("#public",), classify_phrases=("CONFIDENTIAL",))

    assert decide(rules, "#PUBLIC what is a monad?").reason == "bypass_phrase"
    assert decide(rules, "#public but confidential: the merger").reason == "classify_phrase"


def test_group_rules_decide_by_the_users_groups():
    rules = EligibilityRules(eligible_groups=frozenset({"finance"}), bypass_groups=frozenset({"interns"}))

    assert decide(rules, groups=frozenset({"finance"})).eligible is True
    assert decide(rules, groups=frozenset({"sales"})).reason == "not_in_eligible_groups"
    assert decide(rules, groups=frozenset({"finance", "interns"})).reason == "bypass_group"


def test_private_network_is_recognised_by_client_address_or_by_the_vpn_header():
    rules = EligibilityRules(
        private_networks=("10.0.0.0/8", "fd00::/8"), vpn_header="X-Corp-VPN", vpn_header_value="s3cret"
    )

    assert is_private_network(rules, "10.20.30.40", {}) is True
    assert is_private_network(rules, "fd00::1", {}) is True
    assert is_private_network(rules, "203.0.113.9", {}) is False
    assert is_private_network(rules, "203.0.113.9", {"x-corp-vpn": "s3cret"}) is True
    assert is_private_network(rules, "203.0.113.9", {"x-corp-vpn": "guess"}) is False
    assert is_private_network(rules, "not-an-address", {}) is False


def test_network_rule_private_only_sends_outside_requests_around_classification():
    rules = EligibilityRules(network_rule=NetworkRule.PRIVATE_ONLY, private_networks=("192.168.0.0/16",))

    inside = decide(rules, remote_addr="192.168.1.7")
    outside = decide(rules, remote_addr="198.51.100.1")

    assert (inside.eligible, inside.private_network) == (True, True)
    assert (outside.eligible, outside.reason) == (False, "public_network")


def test_network_rule_public_only_sends_private_requests_around_classification():
    rules = EligibilityRules(network_rule=NetworkRule.PUBLIC_ONLY, vpn_header="X-VPN")

    assert decide(rules, headers={"x-vpn": "1"}).reason == "private_network"
    assert decide(rules).eligible is True


def test_malformed_networks_and_thresholds_are_rejected_when_the_policy_is_built():
    with pytest.raises(PolicyError, match="CIDR"):
        EligibilityRules(private_networks=("10.0.0.300/8",))
    with pytest.raises(PolicyError, match="threshold"):
        EligibilityRules(threshold=1.5)


def test_policy_document_names_the_vpn_header_but_never_its_secret_value():
    rules = EligibilityRules(version=7, vpn_header="X-Corp-VPN", vpn_header_value="s3cret")

    document = rules.document()

    assert document["version"] == 7
    assert document["vpn_header"] == "X-Corp-VPN"
    assert "s3cret" not in repr(document)
    assert document["order"][0] == "classify_phrase"
