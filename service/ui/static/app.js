// The memory inspector: hash routes over the public /v1 API, rendered as text, never as HTML.

import { ApiError, apiKey } from "./api.js";
import { h, problemBox } from "./dom.js";
import { memoryPage } from "./pages/memory.js";
import { queuePage } from "./pages/queue.js";
import { searchPage } from "./pages/search.js";
import { sessionPage } from "./pages/session.js";
import { userPage } from "./pages/user.js";
import { usersPage } from "./pages/users.js";
import { askForKey, say, setUpKey, takeFlash } from "./shell.js";

// [path pattern, page, the nav entry it belongs to]; a page is async (view, ...params, ctx).
const ROUTES = [
  [/^\/users$/, usersPage, "users"],
  [/^\/users\/([^/]+)$/, userPage, "users"],
  [/^\/sessions\/([^/]+)$/, sessionPage, "users"],
  [/^\/search$/, searchPage, "search"],
  [/^\/memories\/([^/]+)$/, memoryPage, "users"],
  [/^\/queue$/, queuePage, "queue"],
];

const main = document.getElementById("view");
let generation = 0;

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/users";
  const at = raw.indexOf("?");
  const path = at < 0 ? raw : raw.slice(0, at);
  const query = new URLSearchParams(at < 0 ? "" : raw.slice(at + 1));
  return { path: path.replace(/\/+$/, "") || "/users", query };
}

function markNav(section) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function needKeyView(err) {
  return h(
    "div",
    { class: "card" },
    h("h1", {}, "An API key is needed"),
    h("p", {}, err.problem?.detail ?? "This service runs with API keys."),
    h("button", { type: "button", class: "primary", on: { click: () => askForKey() } }, "Enter an API key"),
  );
}

function forbiddenView(err) {
  return h(
    "div",
    { class: "card" },
    h("h1", {}, "Not allowed with this key"),
    h("p", {}, err.problem?.detail ?? "The key's role may not do this."),
    h("button", { type: "button", class: "primary", on: { click: () => askForKey("This page needs an admin key.") } }, "Use another key"),
  );
}

/** Render the route in the hash; the page builds off-screen and replaces the view when ready. */
async function render({ focus = false } = {}) {
  const mine = ++generation;
  const { path, query } = parseHash();
  const found = ROUTES.map(([re, page, nav]) => [path.match(re), page, nav]).find(([m]) => m);
  main.setAttribute("aria-busy", "true");
  const view = h("div", { class: "page" });
  const ctx = { query, current: () => mine === generation, rerender: () => render() };
  try {
    if (!found) {
      markNav(null);
      view.append(h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "#/users" }, "See the users.")));
    } else {
      const [match, page, nav] = found;
      markNav(nav);
      await page(view, ...match.slice(1).map(decodeURIComponent), ctx);
    }
  } catch (err) {
    if (mine !== generation) return;
    view.replaceChildren();
    if (err instanceof ApiError && err.status === 401) {
      view.append(needKeyView(err));
      askForKey(apiKey.get() ? "The key was refused; enter another one." : "This service needs an API key.");
    } else if (err instanceof ApiError && err.status === 403) view.append(forbiddenView(err));
    else {
      view.append(h("h1", {}, "Could not load this page"), problemBox(err));
      if (!(err instanceof ApiError)) console.error(err); // a bug of this page, not an answer of the API
    }
  }
  if (mine !== generation) return;
  main.replaceChildren(view);
  main.removeAttribute("aria-busy");
  const heading = view.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Memory inspector` : "Memory inspector";
  const message = takeFlash();
  if (message) say(message);
  if (focus) main.focus();
}

document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", () => {
  if (location.hash === "" || location.hash.startsWith("#/")) {
    say("");
    render({ focus: true });
    window.scrollTo(0, 0);
  }
});

setUpKey(() => render({ focus: true }));
render();
