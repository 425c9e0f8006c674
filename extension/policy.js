// Client-side initial classification (patent FIG. 6 steps 602-604), applying the versioned
// policy document served at GET /api/v1/policy/eligibility. The same rules, in the same order,
// as variants/eligibility.py::decide_eligibility on the server. The server decides again on
// every request, so this tag can only add a classification, never skip one the server wants.
"use strict";

function containsAny(folded, phrases) {
  return (phrases || []).some((phrase) => phrase && folded.includes(phrase.toLocaleLowerCase()));
}

// facts: {prompt: string, groups: string[], privateNetwork: boolean|null}
// privateNetwork is null when the browser cannot know (the server checks the network itself).
function decideEligibility(policy, facts) {
  const folded = facts.prompt.toLocaleLowerCase();
  const groups = new Set(facts.groups || []);
  const privateNetwork = facts.privateNetwork;
  const anyIn = (list) => (list || []).some((g) => groups.has(g));
  if (containsAny(folded, policy.classify_phrases)) return {eligible: true, reason: "classify_phrase"};
  if (anyIn(policy.bypass_groups)) return {eligible: false, reason: "bypass_group"};
  if ((policy.eligible_groups || []).length && !anyIn(policy.eligible_groups)) {
    return {eligible: false, reason: "not_in_eligible_groups"};
  }
  if (policy.network_rule === "private_only" && privateNetwork === false) {
    return {eligible: false, reason: "public_network"};
  }
  if (policy.network_rule === "public_only" && privateNetwork === true) {
    return {eligible: false, reason: "private_network"};
  }
  if (containsAny(folded, policy.bypass_phrases)) return {eligible: false, reason: "bypass_phrase"};
  if (policy.bypass_max_chars && facts.prompt.trim().length <= policy.bypass_max_chars) {
    return {eligible: false, reason: "short_prompt"};
  }
  return {eligible: true, reason: "default"};
}

if (typeof module !== "undefined") module.exports = {decideEligibility};
