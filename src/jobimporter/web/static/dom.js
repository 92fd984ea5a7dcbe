// Small DOM and formatting helpers. Text always goes in as text nodes, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  el.append(...nodes(children));
  return el;
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(el, attrs);
  el.append(...nodes(children));
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function nodes(children) {
  return children.flat(Infinity)
    .filter((c) => c !== undefined && c !== null && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
}

// Only http(s) links are followed; anything else (javascript:, data:) is dropped.
export function safeUrl(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

export function extLink(url, text = url) {
  const href = safeUrl(url);
  return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, text) : h("span", {}, text);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const shortTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
const chartTime = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
const numbers = new Intl.NumberFormat();

export const TIME_ZONE = dateTime.resolvedOptions().timeZone;

// An API time (ISO 8601 UTC) in the viewer's time zone, inside <time datetime>.
export function time(iso, short = false) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, iso);
  return h("time", { datetime: iso, title: iso }, (short ? shortTime : dateTime).format(date));
}

// A compact label for chart axes and tooltips (no year).
export function shortDate(iso) {
  return iso ? chartTime.format(new Date(iso)) : "";
}

export function num(value) {
  return value === undefined || value === null ? "—" : numbers.format(value);
}

export function duration(seconds) {
  if (seconds === undefined || seconds === null) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

export function percent(ratio) {
  return ratio === undefined || ratio === null ? "—" : `${Math.round(ratio * 100)} %`;
}

export function badge(status) {
  return h("span", { class: `badge s-${status || "unknown"}` }, (status || "unknown").replace("_", " "));
}

// A local calendar day (from <input type=date>) as the UTC instant it starts; endOfDay: the next day's start.
export function dayToIso(day, endOfDay = false) {
  if (!day) return "";
  const date = new Date(`${day}T00:00:00`);
  if (endOfDay) date.setDate(date.getDate() + 1);
  return date.toISOString();
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

// A labelled form control: <label> + control, wrapped so it lays out as one field.
export function field(label, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

export function select(name, options, value = "") {
  return h("select", { name },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

// A scrolling wrapper for wide tables; at phone width the rows become cards (style.css), each cell
// labelled with its column heading (data-label).
export function tableWrap(table, label) {
  table.classList.add("cards");
  for (const row of table.tBodies[0]?.rows || []) labelRow(row, table);
  return h("div", { class: "table-wrap", role: "region", "aria-label": label, tabindex: "0" }, table);
}

export function labelRow(row, table = row.closest("table")) {
  const heads = [...(table?.tHead?.rows[0]?.cells || [])].map((th) => th.textContent);
  [...row.cells].forEach((cell, i) => {
    if (cell.colSpan === 1 && heads[i]) cell.dataset.label = heads[i];
  });
}
