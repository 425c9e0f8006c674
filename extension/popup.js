// Tags the prompt as the user types (FIG. 6), then sends it to the gateway with the tag.
"use strict";

async function settings() {
  const stored = await chrome.storage.sync.get({server: "http://127.0.0.1:8000", token: "", groups: ""});
  stored.groups = stored.groups.split(",").map((g) => g.trim()).filter(Boolean);
  return stored;
}

async function fetchPolicy(server, token) {
  const response = await fetch(`${server}/api/v1/policy/eligibility`, {
    headers: {Authorization: `Token ${token}`},
  });
  if (!response.ok) throw new Error(`policy: HTTP ${response.status}`);
  return response.json();
}

(async () => {
  const config = await settings();
  const promptBox = document.getElementById("prompt");
  const tag = document.getElementById("tag");
  let policy = null;
  try {
    policy = await fetchPolicy(config.server, config.token);
    document.getElementById("policy-version").textContent = `policy v${policy.version}`;
  } catch (error) {
    tag.textContent = "policy unavailable: every prompt is classified";
  }
  const currentTag = () => {
    // Without a policy the agent fails closed: the prompt is classified by the server.
    if (!policy) return {eligible: true, reason: "no_policy"};
    return decideEligibility(policy, {prompt: promptBox.value, groups: config.groups, privateNetwork: null});
  };
  promptBox.addEventListener("input", () => {
    const decision = currentTag();
    tag.textContent = decision.eligible ? "classification-eligible" : "bypass";
    tag.className = `tag ${decision.eligible ? "eligible" : "bypass"}`;
  });
  document.getElementById("send").addEventListener("click", async () => {
    const decision = currentTag();
    const response = await fetch(`${config.server}/api/v1/prompts`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Token ${config.token}`,
        "X-Switchyard-Client-Eligibility": decision.eligible ? "eligible" : "bypass",
      },
      body: JSON.stringify({prompt: promptBox.value}),
    });
    const body = await response.json();
    if (!response.ok) {
      document.getElementById("route").textContent = body.error ? body.error.message : `HTTP ${response.status}`;
      return;
    }
    document.getElementById("route").textContent =
      `${body.variant} variant · sensitivity ${body.sensitivity.toFixed(2)} · ${body.categories.join(", ") || "no categories"}`;
    document.getElementById("payload").textContent = body.payload;
  });
})();
