// The parts of the page around the routes: the status line, the API key dialog, confirmations.

import { apiKey } from "./api.js";
import { h } from "./dom.js";

const statusLine = document.getElementById("status");
let pendingFlash = null;
let keyChanged = () => {};

/** Say something on the status line (a polite live region). */
export function say(message) {
  statusLine.textContent = message;
}

/** A message for the status line, shown once the next page has rendered. */
export function flash(message) {
  pendingFlash = message;
}

export function takeFlash() {
  const message = pendingFlash;
  pendingFlash = null;
  return message;
}

// ---- the API key ---------------------------------------------------------------------------

const keyDialog = document.getElementById("key-dialog");
const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("key-input");
const keyReason = document.getElementById("key-reason");
const DEFAULT_REASON = "Calls to the API carry this key as Authorization: Bearer.";

function showKeyState() {
  const has = Boolean(apiKey.get());
  document.getElementById("key-state").textContent = has ? "API key set" : "No API key";
  document.getElementById("key-change").textContent = has ? "Change key" : "Set key";
  document.getElementById("key-forget").hidden = !has;
}

/** Ask for a key (a modal form); the page renders again once one is given. */
export function askForKey(reason = DEFAULT_REASON) {
  keyReason.textContent = reason;
  keyInput.value = "";
  if (!keyDialog.open) keyDialog.showModal();
  keyInput.focus();
}

/** Wire the key controls; ``changed`` runs after the key is set or forgotten. */
export function setUpKey(changed) {
  keyChanged = changed;
  keyForm.addEventListener("submit", (event) => {
    const value = keyInput.value.trim();
    if (!value) {
      event.preventDefault();
      return;
    }
    apiKey.set(value);
    showKeyState();
    say("API key set for this tab.");
    keyChanged();
  });
  document.getElementById("key-cancel").addEventListener("click", () => keyDialog.close());
  document.getElementById("key-change").addEventListener("click", () => askForKey());
  document.getElementById("key-forget").addEventListener("click", () => {
    apiKey.clear();
    showKeyState();
    say("API key forgotten.");
    keyChanged();
  });
  showKeyState();
}

// ---- confirmation --------------------------------------------------------------------------

const confirmDialog = document.getElementById("confirm-dialog");

/** A modal question; resolves true when the user confirms (Escape and Cancel answer false). */
export function confirmAction({ title, body = [], confirm = "Confirm", danger = false }) {
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").replaceChildren(...body.map((b) => (b instanceof Node ? b : h("p", {}, b))));
  const ok = document.getElementById("confirm-ok");
  ok.textContent = confirm;
  ok.className = danger ? "danger" : "primary";
  confirmDialog.returnValue = "";
  confirmDialog.showModal();
  return new Promise((resolve) => {
    confirmDialog.addEventListener("close", () => resolve(confirmDialog.returnValue === "ok"), { once: true });
  });
}
