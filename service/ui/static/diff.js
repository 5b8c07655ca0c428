// A word-level diff of two texts (longest common subsequence), drawn as <del> and <ins>.

import { h } from "./dom.js";

const MAX_CELLS = 4_000_000;

function tokens(text) {
  return String(text ?? "").split(/(\s+)/).filter((t) => t !== "");
}

/** [[op, text]] with op "=", "-" or "+". */
export function diffWords(before, after) {
  const a = tokens(before);
  const b = tokens(after);
  if (a.length * b.length > MAX_CELLS) return [["-", a.join("")], ["+", b.join("")]];
  const rows = a.length + 1;
  const cols = b.length + 1;
  const lcs = new Uint32Array(rows * cols);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * cols + j] = a[i] === b[j] ? lcs[(i + 1) * cols + j + 1] + 1 : Math.max(lcs[(i + 1) * cols + j], lcs[i * cols + j + 1]);
    }
  }
  const out = [];
  const push = (op, text) => {
    const last = out[out.length - 1];
    if (last && last[0] === op) last[1] += text;
    else out.push([op, text]);
  };
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      push("=", a[i]);
      i++;
      j++;
    } else if (lcs[(i + 1) * cols + j] >= lcs[i * cols + j + 1]) push("-", a[i++]);
    else push("+", b[j++]);
  }
  while (i < a.length) push("-", a[i++]);
  while (j < b.length) push("+", b[j++]);
  return out;
}

export function diffView(before, after) {
  return h(
    "p",
    { class: "diff" },
    diffWords(before, after).map(([op, text]) =>
      op === "=" ? text : op === "-" ? h("del", { title: "removed" }, text) : h("ins", { title: "added" }, text),
    ),
  );
}
