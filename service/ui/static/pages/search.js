// #/search: hybrid recall with its mode, filters and weights; every hit with its score parts.

import { api, get } from "../api.js";
import { append, bar, clip, h, link, num, problemBox, when } from "../dom.js";
import { TYPES } from "./user.js";

// The defaults of SearchWeights (service/schemas/memories.py).
const WEIGHTS = { semantic: 1.0, keyword: 1.0, speaker: 1.0, date: 0.8, context: 0.9, recency: 0.0, importance: 0.0 };
const HALF_LIFE_DAYS = 30;
const PARTS = Object.keys(WEIGHTS);

function field(id, label, input) {
  return [h("label", { for: id }, label), input];
}

function isoOrNull(local) {
  return local ? new Date(local).toISOString() : null;
}

function listOf(text) {
  return String(text ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

/** The score as the sum of its weighted parts, one segment each (widths relative to the best hit). */
function sumView(hit, weights, top) {
  const parts = PARTS.map((p) => [p, hit.parts[p] * weights[p]]).filter(([, v]) => v > 0);
  return h(
    "div",
    { class: "stack", role: "img", "aria-label": `score ${num(hit.score)}: ${parts.map(([p, v]) => `${p} ${num(v)}`).join(", ")}` },
    parts.map(([p, v]) => h("span", { class: `stack-part part-${p}`, title: `${p}: ${num(v)}`, style: { width: `${(100 * v) / top}%` } })),
  );
}

function bestSum(hits, weights) {
  return Math.max(1e-9, ...hits.map((hit) => PARTS.reduce((sum, p) => sum + Math.max(0, hit.parts[p] * weights[p]), 0)));
}

function hitView(hit, rank, weights, top) {
  const m = hit.memory;
  return h(
    "li",
    { class: "hit card" },
    h(
      "div",
      { class: "hit-head" },
      h("span", { class: "rank" }, `#${rank}`),
      h("span", { class: "score" }, `score ${num(hit.score)}`),
      h("span", { class: `tag type-${m.type}` }, m.type),
      m.speaker ? h("span", {}, `said by ${m.speaker}`) : null,
      when(m.event_time),
    ),
    h("p", { class: "hit-text" }, link(["memories", m.id], clip(m.content, 600))),
    sumView(hit, weights, top),
    h(
      "table",
      { class: "parts" },
      h("caption", { class: "sr-only" }, "Score parts"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Part"), h("th", { scope: "col" }, "Value (0–1)"), h("th", { scope: "col" }, "× weight"))),
      h(
        "tbody",
        {},
        PARTS.map((p) =>
          h(
            "tr",
            { "data-part": p },
            h("th", { scope: "row" }, p),
            h("td", {}, bar(hit.parts[p], p, `part-${p}`)),
            h("td", { class: "num" }, num(hit.parts[p] * weights[p])),
          ),
        ),
      ),
    ),
  );
}

export async function searchPage(view, ctx) {
  const q = ctx.query;
  const users = await get("/v1/users", { limit: 200 });
  const userList = h("datalist", { id: "search-users" }, users.items.map((u) => h("option", { value: u.id })));
  const results = h("div", { id: "search-results", "aria-live": "polite" });

  const weightInputs = PARTS.map((p) =>
    field(`w-${p}`, p, h("input", { id: `w-${p}`, name: `w-${p}`, type: "number", min: 0, max: 10, step: "any", value: String(WEIGHTS[p]) })),
  );
  const form = h(
    "form",
    { id: "search-form", role: "search" },
    h(
      "div",
      { class: "form-grid" },
      field("s-query", "Query", h("input", { id: "s-query", name: "query", type: "search", required: true, maxlength: 4000, value: q.get("query") ?? "" })),
      field("s-user", "User", h("input", { id: "s-user", name: "user_id", required: true, list: "search-users", autocomplete: "off", value: q.get("user_id") ?? "" })),
      field(
        "s-mode",
        "Mode",
        h("select", { id: "s-mode", name: "mode" }, ["hybrid", "semantic", "keyword"].map((m) => h("option", { value: m }, m))),
      ),
      field("s-limit", "Limit", h("input", { id: "s-limit", name: "limit", type: "number", min: 1, max: 100, value: "10" })),
    ),
    h(
      "details",
      { class: "more" },
      h("summary", {}, "Filters"),
      h(
        "div",
        { class: "form-grid" },
        h(
          "fieldset",
          { class: "span" },
          h("legend", {}, "Types (none: all)"),
          TYPES.map((t) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "types", value: t }), t)),
        ),
        field("s-session", "Session id", h("input", { id: "s-session", name: "session_id" })),
        field("s-agent", "Agent id", h("input", { id: "s-agent", name: "agent_id" })),
        field("s-topics", "Topics (comma-separated)", h("input", { id: "s-topics", name: "topics" })),
        field("s-after", "Event time after", h("input", { id: "s-after", name: "after", type: "datetime-local" })),
        field("s-before", "Event time before", h("input", { id: "s-before", name: "before", type: "datetime-local" })),
        field("s-metadata", "Metadata equals (JSON object)", h("input", { id: "s-metadata", name: "metadata", placeholder: '{"source": "chat"}' })),
        field("s-min", "Minimum score", h("input", { id: "s-min", name: "min_score", type: "number", step: "any" })),
        field("s-mmr", "MMR λ (0–1, diversity)", h("input", { id: "s-mmr", name: "mmr", type: "number", min: 0, max: 1, step: "any" })),
      ),
    ),
    h(
      "details",
      { class: "more" },
      h("summary", {}, "Weights"),
      h(
        "div",
        { class: "form-grid" },
        weightInputs,
        field("w-half-life", "recency half-life (days)", h("input", { id: "w-half-life", name: "half_life", type: "number", min: 0.01, max: 36500, step: "any", value: String(HALF_LIFE_DAYS) })),
      ),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Search")),
  );

  function request() {
    const d = new FormData(form);
    const body = { query: String(d.get("query")), user_id: String(d.get("user_id")).trim(), mode: d.get("mode"), limit: Number(d.get("limit") || 10) };
    const types = d.getAll("types");
    if (types.length) body.types = types;
    for (const name of ["session_id", "agent_id"]) if (String(d.get(name) ?? "").trim()) body[name] = String(d.get(name)).trim();
    const topics = listOf(d.get("topics"));
    if (topics.length) body.topics = topics;
    for (const name of ["after", "before"]) if (d.get(name)) body[name] = isoOrNull(d.get(name));
    const metadata = String(d.get("metadata") ?? "").trim();
    if (metadata) body.metadata = JSON.parse(metadata);
    for (const name of ["min_score", "mmr"]) if (String(d.get(name) ?? "") !== "") body[name] = Number(d.get(name));
    const weights = Object.fromEntries(PARTS.map((p) => [p, Number(d.get(`w-${p}`))]));
    body.weights = { ...weights, recency_half_life_days: Number(d.get("half_life") || HALF_LIFE_DAYS) };
    return body;
  }

  async function run() {
    let body;
    try {
      body = request();
    } catch (err) {
      results.replaceChildren(problemBox({ message: "The metadata filter is not a JSON object", problem: { title: "The metadata filter is not JSON", detail: err.message } }));
      return;
    }
    history.replaceState(null, "", `#/search?${new URLSearchParams({ user_id: body.user_id, query: body.query })}`);
    results.replaceChildren(h("p", { class: "muted" }, "Searching…"));
    try {
      const found = await api("POST", "/v1/memories/search", { body });
      const top = bestSum(found.items, body.weights);
      results.replaceChildren(
        h("p", { class: "muted", id: "hit-count" }, `${found.items.length} hit${found.items.length === 1 ? "" : "s"} for ${body.user_id}`),
        found.items.length
          ? h("ol", { class: "hits" }, found.items.map((hit, i) => hitView(hit, i + 1, body.weights, top)))
          : h("p", {}, "Nothing recalled."),
      );
    } catch (err) {
      results.replaceChildren(problemBox(err));
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  append(view, [h("h1", {}, "Search memories"), userList, form, results]);
  if (q.get("query") && q.get("user_id")) run();
}
