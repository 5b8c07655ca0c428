// #/sessions/{id}: the messages, the buffer, the rolling summary, and a preview of the context.

import { api, enc, get } from "../api.js";
import { append, dl, h, json, link, num, problemBox, section, table, when } from "../dom.js";
import { TYPES } from "./user.js";

const MESSAGES_PAGE = 100;

function messageItem(m) {
  return h(
    "li",
    { class: `message role-${m.role}` },
    h(
      "div",
      { class: "message-head" },
      h("span", { class: "tag" }, m.role),
      m.name ? h("span", {}, m.name) : null,
      when(m.created_at),
      h("span", { class: "muted" }, `${m.token_count} tokens`),
    ),
    h("p", { class: "message-text" }, m.content),
  );
}

async function messagesSection(base) {
  const list = h("ol", { class: "messages", id: "messages" });
  const more = h("button", { type: "button" }, "Load more messages");
  let cursor = null;
  async function load() {
    const page = await get(`${base}/messages`, { order: "asc", limit: MESSAGES_PAGE, cursor });
    list.append(...page.items.map(messageItem));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!list.children.length) list.replaceWith(h("p", { class: "muted" }, "No messages."));
  }
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      await load();
    } finally {
      more.disabled = false;
    }
  });
  await load();
  return section("Messages", list, more);
}

function bufferSection(buffer) {
  return section(
    "Buffer",
    dl([
      ["Messages", `${buffer.messages.length} (keeps at most ${buffer.cap})`],
      ["Tokens", String(buffer.total_tokens)],
      ["Expires after idle", `${buffer.ttl_seconds} s`],
      ["Rebuilt on this read", buffer.rebuilt ? "yes, from the stored messages" : "no"],
    ]),
    buffer.messages.length
      ? table(
          "Buffered messages",
          ["Role", "Message", "Tokens", "Time"],
          buffer.messages.map((m) => [m.role, m.content, String(m.token_count), when(m.created_at)]),
          { id: "buffer-table", class: "cards" },
        )
      : h("p", { class: "muted" }, "The buffer is empty."),
  );
}

function summarySection(summary) {
  return section(
    "Rolling summary",
    summary.text
      ? h("p", { class: "prose", id: "summary-text" }, summary.text)
      : h("p", { class: "muted" }, "No summary yet: it starts when a message leaves the buffer."),
    dl([
      ["Tokens", String(summary.tokens)],
      ["Covers", `${summary.message_count} messages`],
      ["Until", when(summary.covers_until)],
      ["Updated", when(summary.updated_at)],
    ]),
  );
}

function contextView(context) {
  const used = h(
    "div",
    { class: "stack", role: "img", "aria-label": context.sections.map((s) => `${s.name} ${s.tokens} tokens`).join(", ") },
    context.sections
      .filter((s) => s.tokens > 0)
      .map((s) =>
        h("span", { class: `stack-part sec-${s.name}`, title: `${s.name}: ${s.tokens} tokens`, style: { width: `${(100 * s.tokens) / context.max_tokens}%` } }),
      ),
  );
  return h(
    "div",
    { id: "context-result" },
    h("p", { class: "total" }, h("strong", { id: "context-tokens" }, `${context.tokens} of ${context.max_tokens} tokens`), " used"),
    used,
    h(
      "ul",
      { class: "legend" },
      context.sections.map((s) => h("li", {}, h("span", { class: `swatch sec-${s.name}`, "aria-hidden": "true" }), `${s.name} (${s.tokens})`)),
    ),
    context.sections.map((s) =>
      h(
        "section",
        { class: "context-section", "data-section": s.name },
        h("h3", {}, `${s.name} · ${s.tokens} tokens · ${s.items.length} item${s.items.length === 1 ? "" : "s"}`),
        s.items.length
          ? table(
              `Items of ${s.name}`,
              ["Kind", "Item", "Tokens", "Score"],
              s.items.map((i) => [i.kind, i.kind === "memory" ? link(["memories", i.id], i.id) : i.id, String(i.tokens), i.score == null ? "—" : num(i.score)]),
              { class: "numbers" },
            )
          : null,
        s.text ? h("pre", { class: "prompt" }, s.text) : h("p", { class: "muted" }, "Empty at this budget."),
      ),
    ),
    h("details", {}, h("summary", {}, "The whole prompt"), h("pre", { class: "prompt" }, context.prompt)),
  );
}

function contextSection(base) {
  const result = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { id: "context-form", class: "form-grid" },
    h("label", { for: "ctx-max" }, "max_tokens"),
    h("input", { id: "ctx-max", name: "max_tokens", type: "number", min: 1, max: 200000, step: 1, value: "800", required: true }),
    h("label", { for: "ctx-query" }, "Query (optional)"),
    h("input", { id: "ctx-query", name: "query", type: "text", maxlength: 4000, placeholder: "the latest user message" }),
    h(
      "fieldset",
      { class: "span" },
      h("legend", {}, "Memory types (none: all)"),
      TYPES.map((t) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "types", value: t }), t)),
    ),
    h("div", { class: "span" }, h("button", { type: "submit", class: "primary" }, "Preview context")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { max_tokens: Number(data.get("max_tokens")) };
    const query = String(data.get("query") ?? "").trim();
    if (query) body.query = query;
    const types = data.getAll("types");
    if (types.length) body.types = types;
    result.replaceChildren(h("p", { class: "muted" }, "Packing…"));
    try {
      result.replaceChildren(contextView(await api("POST", `${base}/context`, { body })));
    } catch (err) {
      result.replaceChildren(problemBox(err));
    }
  });
  return section("Context preview", h("p", { class: "muted" }, "What POST …/context would give a prompt of this size."), form, result);
}

export async function sessionPage(view, sessionId) {
  const base = `/v1/sessions/${enc(sessionId)}`;
  const session = await get(base);
  const [messages, buffer, summary] = await Promise.all([messagesSection(base), get(`${base}/buffer`), get(`${base}/summary`)]);
  append(view, [
    h("p", { class: "crumbs" }, link(["users"], "Users"), " / ", link(["users", session.user_id], session.user_id), " / "),
    h("h1", {}, `Session ${session.id}`),
    dl([
      ["User", link(["users", session.user_id], session.user_id)],
      ["Agent", session.agent_id ?? "—"],
      ["Started", when(session.created_at)],
      ["Updated", when(session.updated_at)],
      Object.keys(session.metadata ?? {}).length ? ["Metadata", json(session.metadata)] : null,
    ]),
    contextSection(base),
    h("div", { class: "cols" }, messages, h("div", {}, bufferSection(buffer), summarySection(summary))),
  ]);
}
