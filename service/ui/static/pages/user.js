// #/users/{id}: a user's counts, profile, sessions, memories by type, and activity per day.

import { collect, enc, get } from "../api.js";
import { dailyChart } from "../chart.js";
import { append, bar, clip, dl, h, link, route, section, table, when } from "../dom.js";

export const TYPES = ["semantic", "episodic", "procedural", "summary", "profile"];
const MAX_MEMORIES = 1000;
const CHART_SESSIONS = 25;
const CHART_MESSAGES = 2000;

function profileSection(profile) {
  const fields = Object.entries(profile.fields ?? {});
  return section(
    "Profile",
    h("h3", {}, "Fields"),
    fields.length
      ? dl(fields.map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]))
      : h("p", { class: "muted" }, "No fields set (PATCH /v1/users/{id}/profile sets them)."),
    h("h3", {}, "Facts"),
    profile.facts.length
      ? h(
          "ol",
          { class: "facts-list", id: "profile-facts" },
          profile.facts.map((f) => h("li", {}, link(["memories", f.id], clip(f.content, 200)), " ", bar(f.importance, "importance"))),
        )
      : h("p", { class: "muted" }, "No facts derived yet."),
    h("h3", {}, "Topics"),
    profile.topics.length
      ? h("ul", { class: "chips" }, profile.topics.map((t) => h("li", { title: `weight ${t.weight.toFixed(2)}` }, t.term)))
      : h("p", { class: "muted" }, "No recurring topics yet."),
    profile.updated_at ? h("p", { class: "muted" }, "Updated ", when(profile.updated_at)) : null,
  );
}

function sessionsSection(sessions) {
  return section(
    "Sessions",
    sessions.items.length
      ? table(
          "Sessions",
          ["Session", "Agent", "Started", "Updated"],
          sessions.items.map((s) => [link(["sessions", s.id], s.id), s.agent_id ?? "—", when(s.created_at), when(s.updated_at)]),
          { id: "sessions-table", class: "cards" },
        )
      : h("p", { class: "muted" }, "No sessions."),
    sessions.more ? h("p", { class: "muted" }, `The newest ${sessions.items.length} sessions.`) : null,
  );
}

function memoriesSection(memories) {
  const counts = Object.fromEntries(TYPES.map((t) => [t, memories.items.filter((m) => m.type === t).length]));
  const holder = h("div", { id: "memories" });
  const group = h("div", { class: "segmented", role: "group", "aria-label": "Memory type" });
  let current = "all";

  function draw() {
    for (const b of group.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.value === current));
    const shown = memories.items.filter((m) => current === "all" || m.type === current);
    holder.replaceChildren(
      shown.length
        ? table(
            "Memories",
            ["Memory", "Type", "Importance", "Event time", "Stored"],
            shown.map((m) => [
              link(["memories", m.id], clip(m.content, 160), { class: "memory-link" }),
              h("span", { class: `tag type-${m.type}` }, m.type),
              bar(m.importance, "importance"),
              when(m.event_time),
              when(m.created_at),
            ]),
            { id: "memories-table", class: "cards" },
          )
        : h("p", { class: "muted" }, "No memories of this type."),
    );
  }

  for (const [value, label] of [["all", `All (${memories.items.length})`], ...TYPES.map((t) => [t, `${t} (${counts[t]})`])]) {
    group.append(
      h("button", { type: "button", value, on: { click: () => ((current = value), draw()) } }, label),
    );
  }
  draw();
  return section(
    "Memories",
    group,
    holder,
    memories.more ? h("p", { class: "muted" }, `The newest ${memories.items.length} memories.`) : null,
  );
}

async function activity(userId, sessions, memories) {
  const times = [];
  for (const s of sessions.items.slice(0, CHART_SESSIONS)) {
    const page = await collect(`/v1/sessions/${enc(s.id)}/messages`, { order: "desc" }, { max: CHART_MESSAGES });
    times.push(...page.items.map((m) => m.created_at));
  }
  const chart = dailyChart(
    [
      { name: "messages", cls: "s-messages", times },
      { name: "memories", cls: "s-memories", times: memories.items.map((m) => m.event_time) },
    ],
    { title: `Activity of ${userId}` },
  );
  const note =
    sessions.items.length > CHART_SESSIONS
      ? h("p", { class: "muted" }, `Messages of the newest ${CHART_SESSIONS} sessions.`)
      : null;
  return [chart, note];
}

export async function userPage(view, userId) {
  const base = `/v1/users/${enc(userId)}`;
  const [user, profile, sessions, memories] = await Promise.all([
    get(base),
    get(`${base}/profile`),
    collect("/v1/sessions", { user_id: userId }, { max: 500 }),
    collect("/v1/memories", { user_id: userId }, { max: MAX_MEMORIES }),
  ]);
  const chartHolder = h("div", { id: "activity-chart" }, h("p", { class: "muted" }, "Counting messages…"));
  append(view, [
    h("p", { class: "crumbs" }, link(["users"], "Users"), " / "),
    h("h1", {}, `User ${user.id}`),
    h(
      "div",
      { class: "summary" },
      dl([
        ["Sessions", String(user.session_count)],
        ["Messages", String(user.message_count)],
        ["Memories", String(user.memory_count)],
        ["Documents", String(user.document_count)],
        ["First seen", when(user.first_seen)],
        ["Last seen", when(user.last_seen)],
      ]),
      h("a", { class: "button", href: route(["search"], { user_id: user.id }) }, "Search these memories"),
    ),
    section("Messages and memories per day", chartHolder),
    h("div", { class: "cols" }, profileSection(profile), sessionsSection(sessions)),
    memoriesSection(memories),
  ]);
  activity(userId, sessions, memories).then(
    (parts) => chartHolder.replaceChildren(...parts.filter(Boolean)),
    (err) => chartHolder.replaceChildren(h("p", { class: "problem" }, `Could not count the messages: ${err.message}`)),
  );
}

