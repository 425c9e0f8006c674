"use strict";
const fields = ["server", "token", "groups"];
chrome.storage.sync.get({server: "http://127.0.0.1:8000", token: "", groups: ""}).then((stored) => {
  for (const name of fields) document.getElementById(name).value = stored[name];
});
document.getElementById("save").addEventListener("click", async () => {
  const values = Object.fromEntries(fields.map((name) => [name, document.getElementById(name).value.trim()]));
  await chrome.storage.sync.set(values);
  document.getElementById("status").textContent = "saved";
});
