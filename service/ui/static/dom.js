// Building the page from data without ever parsing data as HTML: every text goes in through
// textContent or a text node, attribute names are constants of this code, links are in-page.

const SVG_NS = "http://www.w3.org/2000/svg";

function setProps(el, props) {
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.setAttribute("class", value);
    else if (name === "text") el.textContent = String(value);
    else if (name === "on") for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (name === "style") for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v);
    else if (name === "value" || name === "checked") el[name] = value;
    else {
      if (name === "href" && !/^[#/]/.test(String(value))) throw new Error(`refusing a link outside the page: ${value}`);
      if (/^on/i.test(name)) throw new Error(`use the "on" property for ${name}`);
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** An HTML element: h("a", {href: "#/users"}, "Users"). Children that are not nodes become text. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  return append(el, children);
}

/** An SVG element, the same way. */
export function s(tag, props = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  return append(el, children);
}

/** An in-page link to a route: link(["users", id], text). */
export function link(parts, text, props = {}) {
  return h("a", { href: route(parts), ...props }, text);
}

export function route(parts, query) {
  const path = "#/" + parts.map((p) => encodeURIComponent(String(p))).join("/");
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v != null)).toString() : "";
  return qs ? `${path}?${qs}` : path;
}

export function section(title, ...children) {
  const id = "sec-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** A table from column titles and rows of cells; wrapped so it scrolls sideways on a phone. */
export function table(caption, columns, rows, props = {}) {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      props,
      caption ? h("caption", { class: "sr-only" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) => h("td", { "data-label": columns[i] }, c))))),
    ),
  );
}

export function dl(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const STEPS = [
  ["second", 60],
  ["minute", 60],
  ["hour", 24],
  ["day", 30],
  ["month", 12],
  ["year", Infinity],
];

export function relative(iso, nowMs = Date.now()) {
  let value = (new Date(iso).getTime() - nowMs) / 1000;
  for (const [unit, size] of STEPS) {
    if (Math.abs(value) < size) return RELATIVE.format(Math.round(value), unit);
    value /= size;
  }
  return iso;
}

export function fullTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** <time> with the relative time shown and the full one on hover. */
export function when(iso) {
  if (!iso) return "—";
  return h("time", { datetime: iso, title: fullTime(iso) }, relative(iso));
}

export function age(seconds) {
  if (seconds == null) return "—";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.round((seconds % 86400) / 3600)} h`;
}

export function clip(text, max = 240) {
  const str = String(text ?? "");
  return str.length > max ? str.slice(0, max - 1) + "…" : str;
}

export const num = (n, digits = 3) => (typeof n === "number" ? n.toFixed(digits) : "—");

/** A 0..1 value as a bar with its number, for importance and score parts. */
export function bar(value, label, cls = "") {
  const pct = Math.max(0, Math.min(1, Number(value) || 0)) * 100;
  return h(
    "span",
    { class: `bar ${cls}`.trim(), role: "img", "aria-label": `${label}: ${num(value, 2)}` },
    h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: { width: `${pct}%` } })),
    h("span", { class: "bar-value", "aria-hidden": "true" }, num(value, 2)),
  );
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function problemBox(err) {
  const problem = err?.problem;
  return h(
    "div",
    { class: "problem", role: "alert" },
    h("strong", {}, problem?.title ?? err?.message ?? "Something went wrong"),
    problem?.detail ? h("p", {}, problem.detail) : null,
    err?.status ? h("p", { class: "muted" }, `HTTP ${err.status}${problem?.code ? ` · ${problem.code}` : ""}`) : null,
  );
}
