// The import-entry table (history and run pages): the brief's columns and the jobs that left the feed
// (expired), updated in place by live events.

import { badge, duration, h, labelRow, num, tableWrap, time } from "../dom.js";

const FINAL = new Set(["completed", "failed", "not_modified"]);
const COUNTS = ["new", "updated", "unchanged", "failed", "expired"];
const HEADINGS = [
  ["File name (feed URL)", "text"], ["Imported at", "text"], ["Total", "num"], ["New", "num"],
  ["Updated", "num"], ["Unchanged", "num"], ["Failed", "num"], ["Expired", "num"], ["Status", "text"],
  ["Duration", "num"], ["Run", "text"],
];

export class EntryTable {
  constructor(label) {
    this.caption = h("caption", {}, label);
    this.body = h("tbody");
    this.rows = new Map(); // entry id → {entry, tr}
    this.batches = new Map(); // entry id → Map(batch_no → counts): running counts while processing
    const head = h("thead", {}, h("tr", {},
      HEADINGS.map(([text, kind]) => h("th", { scope: "col", class: kind }, text))));
    this.table = h("table", { class: "entries" }, this.caption, head, this.body);
    this.table.addEventListener("click", (event) => openRow(event));
    this.el = tableWrap(this.table, label);
  }

  setCaption(text) {
    this.caption.textContent = text;
  }

  setEntries(entries, emptyText = "No imports match.") {
    const focused = document.activeElement?.dataset?.focus;
    this.rows.clear();
    const trs = entries.map((entry) => {
      const tr = h("tr", { dataset: { id: entry.id } });
      this.rows.set(entry.id, { entry, tr });
      this.fill(entry.id);
      return tr;
    });
    if (!trs.length) trs.push(h("tr", {}, h("td", { colspan: HEADINGS.length, class: "empty" }, emptyText)));
    this.body.replaceChildren(...trs);
    if (focused) this.body.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
  }

  // Apply one live event; returns false when it concerns an entry this table does not show.
  apply(type, data) {
    if (type === "BatchProcessed") {
      if (!this.batches.has(data.entry_id)) this.batches.set(data.entry_id, new Map());
      this.batches.get(data.entry_id).set(data.batch_no, data);
    }
    const row = this.rows.get(data.entry_id);
    if (!row) return false;
    if (type === "EntryChanged") {
      const { status, total_fetched, error } = data;
      row.entry = { ...row.entry, status, total_fetched, error };
      if (FINAL.has(status)) for (const key of COUNTS) row.entry[key] = data[key];
    }
    this.fill(data.entry_id);
    return true;
  }

  // While an entry is processing, its stored counts lag behind the batches already written.
  shown(entry) {
    const batches = this.batches.get(entry.id);
    if (FINAL.has(entry.status) || !batches) return entry;
    const counts = { ...entry };
    for (const key of COUNTS) {
      let sum = 0;
      for (const batch of batches.values()) sum += batch[key] || 0;
      counts[key] = Math.max(entry[key] || 0, sum);
    }
    return counts;
  }

  fill(id) {
    const { entry, tr } = this.rows.get(id);
    const e = this.shown(entry);
    const link = h("a", { href: `#/imports/${encodeURIComponent(e.id)}`, dataset: { focus: e.id } }, e.url);
    tr.dataset.status = e.status;
    tr.replaceChildren(
      h("td", { class: "url" }, link, e.name && e.name !== e.url ? h("div", { class: "muted small" }, e.name) : null),
      h("td", {}, time(e.started_at)),
      h("td", { class: "num total" }, num(e.total_fetched)),
      ...COUNTS.map((key) => h("td", { class: `num ${key}${key === "failed" && e.failed ? " bad" : ""}` }, num(e[key]))),
      h("td", { class: "status" }, badge(e.status), reasonLine(e)),
      h("td", { class: "num" }, duration(e.duration_s)),
      h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(e.run_id)}` }, e.trigger || "run")),
    );
    labelRow(tr, this.table);
  }
}

// Why a feed failed (or was skipped, or lost items), shortened in the row; the whole of it on hover.
const REASON_CHARS = 90;

function reasonLine(e) {
  const failure = e.failures && e.failures[0];
  const reason = e.error || (failure ? `${failure.external_id}: ${failure.reason}` : "");
  if (!reason) return null;
  const short = reason.length > REASON_CHARS ? `${reason.slice(0, REASON_CHARS - 1)}…` : reason;
  return h("div", { class: "reason small", title: reason }, short);
}

// A click anywhere on a row opens its entry (the link in the first cell is the keyboard way).
function openRow(event) {
  if (event.target.closest("a, button")) return;
  const tr = event.target.closest("tr[data-id]");
  if (tr) location.hash = `#/imports/${encodeURIComponent(tr.dataset.id)}`;
}
