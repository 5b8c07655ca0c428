// #/users: the tenant's users with their counts and last activity, filtered as you type.

import { get } from "../api.js";
import { append, h, link, table, when } from "../dom.js";

const PAGE = 200;
const SORTS = {
  id: (a, b) => a.id.localeCompare(b.id),
  last_seen: (a, b) => new Date(b.last_seen) - new Date(a.last_seen),
  memories: (a, b) => b.memory_count - a.memory_count || a.id.localeCompare(b.id),
  messages: (a, b) => b.message_count - a.message_count || a.id.localeCompare(b.id),
};

export async function usersPage(view, ctx) {
  const users = [];
  let cursor = null;
  const first = await get("/v1/users", { limit: PAGE });
  users.push(...first.items);
  cursor = first.next_cursor;

  const filter = h("input", { type: "search", id: "user-filter", name: "q", autocomplete: "off", value: ctx.query.get("q") ?? "" });
  const sort = h(
    "select",
    { id: "user-sort", name: "sort" },
    h("option", { value: "id" }, "id"),
    h("option", { value: "last_seen" }, "last seen"),
    h("option", { value: "memories" }, "memories"),
    h("option", { value: "messages" }, "messages"),
  );
  const count = h("p", { class: "muted", id: "user-count", "aria-live": "polite" });
  const holder = h("div");
  const more = h("button", { type: "button", id: "users-more" }, "Load more users");

  function draw() {
    const needle = filter.value.trim().toLowerCase();
    const shown = users.filter((u) => u.id.toLowerCase().includes(needle)).sort(SORTS[sort.value]);
    count.textContent = `${shown.length} of ${users.length} loaded user${users.length === 1 ? "" : "s"}${cursor ? " (more to load)" : ""}`;
    more.hidden = !cursor;
    if (users.length === 0) {
      holder.replaceChildren(h("p", {}, "No users yet: a user appears with their first session, memory or profile."));
      return;
    }
    holder.replaceChildren(
      table(
        "Users",
        ["User", "Sessions", "Messages", "Memories", "Documents", "Last seen"],
        shown.map((u) => [
          link(["users", u.id], u.id),
          String(u.session_count),
          String(u.message_count),
          String(u.memory_count),
          String(u.document_count),
          when(u.last_seen),
        ]),
        { id: "users-table", class: "numbers cards" },
      ),
    );
  }

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await get("/v1/users", { limit: PAGE, cursor });
      users.push(...page.items);
      cursor = page.next_cursor;
      draw();
    } finally {
      more.disabled = false;
    }
  });
  filter.addEventListener("input", draw);
  sort.addEventListener("change", draw);

  append(view, [
    h("h1", {}, "Users"),
    h(
      "form",
      { class: "toolbar", role: "search", on: { submit: (e) => (e.preventDefault(), draw()) } },
      h("label", { for: "user-filter" }, "Find a user"),
      filter,
      h("label", { for: "user-sort" }, "Sort by"),
      sort,
    ),
    count,
    holder,
    more,
  ]);
  draw();
}
