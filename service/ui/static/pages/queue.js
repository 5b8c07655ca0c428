// #/queue: background jobs waiting and parked, the age of the oldest, and retrying a parked one.

import { api, enc, get } from "../api.js";
import { age, append, h, link, problemBox, section, table, when } from "../dom.js";
import { say } from "../shell.js";

function subjectCell(job) {
  return job.kind.includes("memory") ? link(["memories", job.subject], job.subject) : job.subject;
}

export async function queuePage(view, ctx) {
  const tenantId = ctx.query.get("tenant_id") ?? "";
  const query = tenantId ? { tenant_id: tenantId } : {};
  const holder = h("div");
  const problem = h("div", { "aria-live": "polite" });

  function draw(state) {
    const stats = h(
      "div",
      { class: "stats", id: "queue-stats" },
      [
        ["Pending", String(state.pending), "queue-pending"],
        ["Failed", String(state.failed), "queue-failed"],
        ["Oldest pending", age(state.oldest_pending_age_seconds), "queue-age"],
      ].map(([label, value, id]) => h("div", { class: "stat" }, h("span", { class: "stat-label" }, label), h("strong", { id }, value))),
    );
    const failures = state.failures.length
      ? table(
          "Parked jobs",
          ["Job", "Kind", "Subject", "Attempts", "Queued", "Last error", ""],
          state.failures.map((job) => [
            String(job.id),
            h("code", {}, job.kind),
            subjectCell(job),
            String(job.attempts),
            when(job.created_at),
            job.error ? h("details", {}, h("summary", {}, job.error.split("\n")[0].slice(0, 80)), h("pre", {}, job.error)) : "—",
            h("button", { type: "button", "data-job": String(job.id), on: { click: (e) => retry(job, e.currentTarget) } }, `Retry job ${job.id}`),
          ]),
          { id: "failures-table", class: "cards" },
        )
      : h("p", { class: "muted", id: "no-failures" }, "No parked jobs.");
    holder.replaceChildren(stats, section(`Parked jobs (newest ${state.failures.length})`, failures));
  }

  async function retry(job, button) {
    button.disabled = true;
    try {
      draw(await api("POST", `/v1/admin/queue/${enc(String(job.id))}/retry`, { query }));
      problem.replaceChildren();
      say(`Job ${job.id} queued again.`);
    } catch (err) {
      button.disabled = false;
      problem.replaceChildren(problemBox(err));
    }
  }

  draw(await get("/v1/admin/queue", query));
  const form = h(
    "form",
    { class: "toolbar", id: "queue-form" },
    h("label", { for: "q-tenant" }, "Tenant (admins; empty: your own)"),
    h("input", { id: "q-tenant", name: "tenant_id", value: tenantId, autocomplete: "off" }),
    h("button", { type: "submit" }, "Refresh"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = String(new FormData(form).get("tenant_id")).trim();
    const hash = next ? `#/queue?${new URLSearchParams({ tenant_id: next })}` : "#/queue";
    if (location.hash === hash) ctx.rerender();
    else location.hash = hash;
  });
  append(view, [h("h1", {}, "Background queue"), form, problem, holder]);
}
