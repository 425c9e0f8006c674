"""Initial classification of a prompt request (patent FIG. 6 steps 602-604).

Decides whether a request is *classification-eligible*: eligible requests go to the
variant selection agent (step 610, payload classification and secured/public choice);
the others are served directly by the default production environment (step 606).

The criteria are the patent's (paragraph 132): the prompt's length, specific phrases,
whether the request came over the private network, and the user account. They are
applied in a fixed order, documented on :func:`decide_eligibility`, so an administrator
can predict the outcome of any combination. Pure Python, no Django import: the same
rules are published as a versioned document for front-end devices (a browser plug-in
applies them client-side) and evaluated here per request.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class NetworkRule:
    """Which requests the network criterion keeps eligible."""

    ANY = "any"  # the network does not matter
    PRIVATE_ONLY = "private_only"  # requests from outside the private network bypass classification
    PUBLIC_ONLY = "public_only"  # requests from the private network bypass classification

    CHOICES = (ANY, PRIVATE_ONLY, PUBLIC_ONLY)


class PolicyError(ValueError):
    """The policy itself is malformed (a bad CIDR, an unknown network rule)."""


@dataclass(frozen=True)
class EligibilityRules:
    """An eligibility policy as plain values (one version of the administrator's policy)."""

    version: int = 0
    # Prompts longer than this are refused outright (HTTP 413), eligible or not.
    max_prompt_chars: int = 32_000
    # Prompts of at most this many characters skip classification; 0 turns the rule off.
    bypass_max_chars: int = 0
    # A prompt containing one of these (case-insensitive) is always classified.
    classify_phrases: tuple[str, ...] = ()
    # A prompt containing one of these skips classification (unless a classify phrase matched).
    bypass_phrases: tuple[str, ...] = ()
    network_rule: str = NetworkRule.ANY
    # Client networks that count as the private network (CIDR strings).
    private_networks: tuple[str, ...] = ()
    # Header the VPN gateway sets on requests it forwards; the edge proxy must strip it from
    # outside traffic. An empty expected value accepts any non-empty header value.
    vpn_header: str = ""
    vpn_header_value: str = ""
    # When not empty, only members of one of these groups are classified.
    eligible_groups: frozenset[str] = field(default_factory=frozenset)
    # Members of one of these groups skip classification.
    bypass_groups: frozenset[str] = field(default_factory=frozenset)
    # Sensitivity at or above which an eligible prompt goes to the secured variant.
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.network_rule not in NetworkRule.CHOICES:
            raise PolicyError(f"unknown network rule {self.network_rule!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise PolicyError(f"threshold must lie in [0, 1], not {self.threshold}")
        # Parse once so a malformed CIDR fails when the policy is loaded, not per request.
        object.__setattr__(self, "_networks", parse_networks(self.private_networks))

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Return the parsed private networks."""
        return self._networks  # type: ignore[attr-defined]

    def document(self) -> dict:
        """Return the rules as the JSON policy document front-end devices apply.

        The VPN header's expected value is a shared secret between the VPN gateway and
        this service, so the document names the header but never publishes the value.
        """
        return {
            "version": self.version,
            "max_prompt_chars": self.max_prompt_chars,
            "bypass_max_chars": self.bypass_max_chars,
            "classify_phrases": list(self.classify_phrases),
            "bypass_phrases": list(self.bypass_phrases),
            "network_rule": self.network_rule,
            "private_networks": list(self.private_networks),
            "vpn_header": self.vpn_header,
            "eligible_groups": sorted(self.eligible_groups),
            "bypass_groups": sorted(self.bypass_groups),
            "threshold": self.threshold,
            "order": [
                "classify_phrase",
                "bypass_group",
                "eligible_groups",
                "network_rule",
                "bypass_phrase",
                "bypass_max_chars",
            ],
        }


@dataclass(frozen=True)
class RequestFacts:
    """What the initial classification looks at, taken from one request."""

    prompt: str
    remote_addr: str = ""
    # Header names in lower case.
    headers: Mapping[str, str] = field(default_factory=dict)
    groups: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class EligibilityDecision:
    eligible: bool
    # Which rule decided; a rule name, never any of the prompt's text.
    reason: str
    private_network: bool


def parse_networks(cidrs: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Return the networks named by CIDR strings; raise PolicyError on a malformed one."""
    networks = []
    for cidr in cidrs:
        text = cidr.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise PolicyError(f"{text!r} is not a network in CIDR notation (e.g. 10.0.0.0/8)") from None
    return tuple(networks)


def split_lines(text: str) -> tuple[str, ...]:
    """Return the non-empty stripped lines (or comma-separated items) of an admin text field."""
    items = []
    for line in text.replace(",", "\n").splitlines():
        item = line.strip()
        if item:
            items.append(item)
    return tuple(items)


def split_phrases(text: str) -> tuple[str, ...]:
    """Return the non-empty stripped lines of a phrase list (phrases may contain commas)."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def is_private_network(rules: EligibilityRules, remote_addr: str, headers: Mapping[str, str]) -> bool:
    """Return True when the request came from a private client network or through the VPN."""
    if rules.vpn_header:
        value = headers.get(rules.vpn_header.lower(), "")
        if value:
            if not rules.vpn_header_value:
                return True
            if hmac.compare_digest(value.encode(), rules.vpn_header_value.encode()):
                return True
    if remote_addr and rules.networks:
        try:
            address = ipaddress.ip_address(remote_addr.strip())
        except ValueError:
            return False
        return any(address in network for network in rules.networks if network.version == address.version)
    return False


def _contains_any(text_folded: str, phrases: tuple[str, ...]) -> bool:
    return any(phrase.casefold() in text_folded for phrase in phrases if phrase)


def decide_eligibility(rules: EligibilityRules, facts: RequestFacts) -> EligibilityDecision:
    """Return whether the request is classification-eligible, and which rule decided.

    Order (first match decides):
    1. a classify phrase in the prompt -> eligible (an administrator's explicit "always check");
    2. the user is in a bypass group -> not eligible;
    3. eligible groups are set and the user is in none of them -> not eligible;
    4. the network rule excludes the request's network -> not eligible;
    5. a bypass phrase in the prompt -> not eligible;
    6. the prompt is at most ``bypass_max_chars`` long -> not eligible;
    7. otherwise eligible.
    With the defaults every request is eligible.
    """
    private = is_private_network(rules, facts.remote_addr, facts.headers)
    folded = facts.prompt.casefold()
    if _contains_any(folded, rules.classify_phrases):
        return EligibilityDecision(True, "classify_phrase", private)
    if rules.bypass_groups & facts.groups:
        return EligibilityDecision(False, "bypass_group", private)
    if rules.eligible_groups and not rules.eligible_groups & facts.groups:
        return EligibilityDecision(False, "not_in_eligible_groups", private)
    if rules.network_rule == NetworkRule.PRIVATE_ONLY and not private:
        return EligibilityDecision(False, "public_network", private)
    if rules.network_rule == NetworkRule.PUBLIC_ONLY and private:
        return EligibilityDecision(False, "private_network", private)
    if _contains_any(folded, rules.bypass_phrases):
        return EligibilityDecision(False, "bypass_phrase", private)
    if rules.bypass_max_chars and len(facts.prompt.strip()) <= rules.bypass_max_chars:
        return EligibilityDecision(False, "short_prompt", private)
    return EligibilityDecision(True, "default", private)
