// Messages and memories per day, drawn as inline SVG from the records the page listed.

import { h, s } from "./dom.js";

const DAY_MS = 86_400_000;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const dayKey = (ms) => new Date(ms).toISOString().slice(0, 10);
const dayStart = (iso) => Math.floor(new Date(iso).getTime() / DAY_MS) * DAY_MS;

function label(ms) {
  const d = new Date(ms);
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
}

/**
 * series: [{name, cls, times: [iso, ...]}]. Days run from the first record's to the last's (UTC),
 * the latest ``maxDays`` of them when there are more.
 */
export function dailyChart(series, { maxDays = 120, title = "Per day" } = {}) {
  const starts = series.flatMap((x) => x.times.map(dayStart)).filter(Number.isFinite);
  if (starts.length === 0) return h("p", { class: "muted" }, "No messages or memories to chart yet.");
  const last = Math.max(...starts);
  let first = Math.min(...starts);
  const clipped = (last - first) / DAY_MS + 1 > maxDays;
  if (clipped) first = last - (maxDays - 1) * DAY_MS;
  const days = [];
  for (let t = first; t <= last; t += DAY_MS) days.push(t);
  const counts = series.map((x) => {
    const byDay = new Map();
    for (const t of x.times.map(dayStart)) if (t >= first) byDay.set(t, (byDay.get(t) ?? 0) + 1);
    return days.map((d) => byDay.get(d) ?? 0);
  });
  const top = Math.max(1, ...counts.flat());

  const W = 720;
  const H = 220;
  const M = { left: 36, right: 8, top: 10, bottom: 28 };
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const slot = plotW / days.length;
  const barW = Math.max(1, (slot * 0.8) / series.length);
  const y = (v) => M.top + plotH - (v / top) * plotH;

  const ticks = [...new Set([0, Math.round(top / 2), top])];
  const every = Math.ceil(days.length / 8);
  const svg = s(
    "svg",
    {
      class: "chart",
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-label": `${title}: ${series.map((x, i) => `${counts[i].reduce((a, b) => a + b, 0)} ${x.name}`).join(", ")}, from ${dayKey(first)} to ${dayKey(last)}`,
    },
    ticks.map((t) => [
      s("line", { class: "grid", x1: M.left, x2: W - M.right, y1: y(t), y2: y(t) }),
      s("text", { class: "axis", x: M.left - 6, y: y(t) + 4, "text-anchor": "end" }, String(t)),
    ]),
    days.map((d, di) => [
      series.map((x, si) => {
        const v = counts[si][di];
        if (v === 0) return null;
        return s(
          "rect",
          { class: `series ${x.cls}`, x: M.left + di * slot + slot * 0.1 + si * barW, y: y(v), width: barW, height: y(0) - y(v) },
          s("title", {}, `${dayKey(d)}: ${v} ${x.name}`),
        );
      }),
      di % every === 0 ? s("text", { class: "axis", x: M.left + di * slot + slot / 2, y: H - 8, "text-anchor": "middle" }, label(d)) : null,
    ]),
  );
  const legend = h(
    "ul",
    { class: "legend" },
    series.map((x, i) => h("li", {}, h("span", { class: `swatch ${x.cls}`, "aria-hidden": "true" }), `${x.name} (${counts[i].reduce((a, b) => a + b, 0)})`)),
  );
  const rows = days
    .map((d, di) => [d, counts.map((c) => c[di])])
    .filter(([, vs]) => vs.some((v) => v > 0));
  const numbers = h(
    "details",
    { class: "chart-table" },
    h("summary", {}, "Show the numbers"),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day (UTC)"), series.map((x) => h("th", { scope: "col" }, x.name)))),
        h("tbody", {}, rows.map(([d, vs]) => h("tr", {}, h("td", {}, dayKey(d)), vs.map((v) => h("td", {}, String(v)))))),
      ),
    ),
  );
  return h(
    "figure",
    { class: "chart-figure" },
    svg,
    h("figcaption", {}, legend, clipped ? h("p", { class: "muted" }, `The latest ${maxDays} days.`) : null),
    numbers,
  );
}
