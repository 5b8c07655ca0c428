// #/memories/{id}: one memory, its versions as diffs, and editing or deleting it (after a confirmation).

import { api, enc, get } from "../api.js";
import { diffView } from "../diff.js";
import { append, bar, dl, h, json, link, problemBox, section, when } from "../dom.js";
import { confirmAction, flash, say } from "../shell.js";
import { TYPES } from "./user.js";

const GONE = new Set(["deleted", "expired"]);

function value(v) {
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function changeView(name, before, after) {
  if (typeof before === "string" && typeof after === "string") {
    return h("div", { class: "change" }, h("h4", {}, name), diffView(before, after));
  }
  return h(
    "div",
    { class: "change" },
    h("h4", {}, name),
    h("p", { class: "diff" }, h("del", {}, value(before)), " → ", h("ins", {}, value(after))),
  );
}

function versionView(v) {
  const changes = Object.entries(v.changes ?? {});
  return h(
    "li",
    { class: `version op-${v.op}`, "data-version": String(v.version) },
    h("div", { class: "version-head" }, h("strong", {}, `v${v.version}`), h("span", { class: "tag" }, v.op), when(v.at)),
    v.op === "created"
      ? h("p", { class: "prose" }, value(v.snapshot?.content))
      : changes.length
        ? changes.map(([name, pair]) => changeView(name, ...(Array.isArray(pair) ? pair : [undefined, pair])))
        : h("p", { class: "muted" }, v.op === "merged" ? "A near-identical memory was folded into this one." : "No field changed."),
  );
}

function details(m) {
  return dl([
    ["Content", h("p", { class: "prose", id: "memory-content" }, m.content)],
    ["Type", m.type],
    ["Importance", bar(m.importance, "importance")],
    ["User", link(["users", m.user_id], m.user_id)],
    ["Session", m.session_id ? link(["sessions", m.session_id], m.session_id) : "—"],
    ["Agent", m.agent_id ?? "—"],
    ["Speaker", m.speaker ?? "—"],
    ["Topic", m.topic ?? "—"],
    ["Keywords", m.keywords.length ? h("ul", { class: "chips" }, m.keywords.map((k) => h("li", {}, k))) : "—"],
    ["Modality", m.media_url ? `${m.modality} (${m.media_url})` : m.modality],
    ["Event time", when(m.event_time)],
    ["Stored", when(m.created_at)],
    ["Changed", when(m.updated_at)],
    ["Expires", when(m.expires_at)],
    ["Version", String(m.version)],
    Object.keys(m.metadata ?? {}).length ? ["Metadata", json(m.metadata)] : null,
  ]);
}

function editForm(m, ctx) {
  const form = h(
    "form",
    { id: "edit-form", class: "form-grid" },
    h("label", { for: "e-content" }, "Content"),
    h("textarea", { id: "e-content", name: "content", rows: 5, required: true, value: m.content }),
    h("label", { for: "e-type" }, "Type"),
    h("select", { id: "e-type", name: "type" }, TYPES.map((t) => h("option", { value: t, selected: t === m.type }, t))),
    h("label", { for: "e-importance" }, "Importance (0–1)"),
    h("input", { id: "e-importance", name: "importance", type: "number", min: 0, max: 1, step: "any", value: String(m.importance) }),
    h("label", { for: "e-topic" }, "Topic"),
    h("input", { id: "e-topic", name: "topic", value: m.topic ?? "" }),
    h("label", { for: "e-keywords" }, "Keywords (comma-separated)"),
    h("input", { id: "e-keywords", name: "keywords", value: m.keywords.join(", ") }),
    h("div", { class: "span actions" }, h("button", { type: "submit", class: "primary" }, "Save changes…")),
  );
  const problem = h("div", { "aria-live": "polite" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = new FormData(form);
    const next = {
      content: String(d.get("content")),
      type: String(d.get("type")),
      importance: Number(d.get("importance")),
      topic: String(d.get("topic")).trim() || null,
      keywords: String(d.get("keywords")).split(",").map((k) => k.trim()).filter(Boolean),
    };
    const changes = Object.fromEntries(Object.entries(next).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(m[k] ?? null)));
    if (Object.keys(changes).length === 0) {
      say("Nothing changed.");
      return;
    }
    const ok = await confirmAction({
      title: "Save a new version?",
      body: [
        `Version ${m.version + 1} of this memory will have:`,
        ...Object.entries(changes).map(([k, v]) => changeView(k, m[k], v)),
        "The current version stays in the history.",
      ],
      confirm: "Save",
    });
    if (!ok) return;
    try {
      const saved = await api("PATCH", `/v1/memories/${enc(m.id)}`, { body: changes });
      flash(`Saved version ${saved.version}.`);
      ctx.rerender();
    } catch (err) {
      problem.replaceChildren(problemBox(err));
    }
  });
  return section("Edit", form, problem);
}

function deleteSection(m) {
  const problem = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "button", class: "danger", id: "delete-memory" }, "Delete this memory…");
  button.addEventListener("click", async () => {
    const ok = await confirmAction({
      title: "Delete this memory?",
      body: [h("blockquote", {}, m.content), "It is no longer recalled; its history keeps a tombstone."],
      confirm: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      await api("DELETE", `/v1/memories/${enc(m.id)}`);
      flash(`Memory ${m.id} deleted.`);
      location.hash = `#/users/${enc(m.user_id)}`;
    } catch (err) {
      problem.replaceChildren(problemBox(err));
    }
  });
  return section("Delete", button, problem);
}

export async function memoryPage(view, memoryId, ctx) {
  const history = await get(`/v1/memories/${enc(memoryId)}/history`);
  const last = history.versions.at(-1);
  const gone = last && GONE.has(last.op);
  const memory = gone ? null : await get(`/v1/memories/${enc(memoryId)}`);
  const shown = memory ?? last?.snapshot ?? {};
  const userId = shown.user_id;
  append(view, [
    h("p", { class: "crumbs" }, link(["users"], "Users"), " / ", userId ? [link(["users", userId], userId), " / "] : null),
    h("h1", {}, `Memory ${memoryId}`),
    gone ? h("p", { class: "problem", role: "status" }, `This memory was ${last.op} `, when(last.at), ".") : null,
    memory ? section("Now", details(memory)) : null,
    h(
      "section",
      { class: "card", "aria-labelledby": "sec-versions" },
      h("h2", { id: "sec-versions" }, `Versions (${history.versions.length})`),
      h("ol", { class: "versions", id: "versions", reversed: true }, history.versions.slice().reverse().map(versionView)),
    ),
    memory ? editForm(memory, ctx) : null,
    memory ? deleteSection(memory) : null,
  ]);
}
