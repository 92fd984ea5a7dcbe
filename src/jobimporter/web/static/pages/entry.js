// #/imports/<id>: one feed import with its feed error and every failed item's reason.

import { api } from "../api.js";
import { badge, debounce, duration, extLink, h, num, tableWrap, time } from "../dom.js";
import { onLive } from "../live.js";
import { changeDetector, loader } from "./common.js";

export function render(main, [entryId]) {
  const body = h("div");
  const errors = h("div");
  main.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/history" }, "Import history"), " › feed import"),
    h("h1", {}, "Feed import"),
    errors, body,
  );
  const show = changeDetector((entry) => body.replaceChildren(...content(entry).filter(Boolean)));
  const reload = loader(() => api(`/api/imports/${encodeURIComponent(entryId)}`), show, errors);
  const reloadSoon = debounce(reload, 300);
  const stop = onLive((type, data) => {
    if (type === "Poll" || type === "Resync" || data?.entry_id === entryId) reloadSoon();
  });
  reload();
  return () => {
    stop();
    reloadSoon.cancel();
  };
}

function content(e) {
  const facts = [
    ["Feed", e.name], ["File name (feed URL)", extLink(e.url)], ["Status", badge(e.status)],
    ["Run", h("a", { href: `#/runs/${encodeURIComponent(e.run_id)}` }, `${e.run_id}${e.trigger ? ` (${e.trigger})` : ""}`)],
    ["Imported at", time(e.started_at)], ["Finished", time(e.finished_at)], ["Duration", duration(e.duration_s)],
    ["HTTP status", e.http_status ?? "—"], ["Bytes", num(e.bytes)], ["Batches", num(e.batches)],
    ["Total", num(e.total_fetched)], ["New", num(e.new)], ["Updated", num(e.updated)],
    ["Unchanged", num(e.unchanged)], ["Failed", num(e.failed)], ["Expired (left the feed)", num(e.expired)],
  ];
  const failures = e.failures || [];
  return [
    h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    e.error ? h("section", { class: "feed-error", "aria-labelledby": "feed-error-h" },
      h("h2", { id: "feed-error-h" }, "Feed error"), h("p", { class: "error-text" }, e.error)) : null,
    h("h2", {}, "Failed items"),
    failures.length ? tableWrap(failureTable(failures), "Failed items") : h("p", { class: "muted" }, "No item failed."),
  ];
}

function failureTable(failures) {
  return h("table", {},
    h("caption", {}, `${failures.length} failed item${failures.length === 1 ? "" : "s"} and why`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "External id"), h("th", { scope: "col" }, "Reason"))),
    h("tbody", {}, failures.map((f) => h("tr", {}, h("td", { class: "wrap" }, f.external_id), h("td", { class: "wrap" }, f.reason)))));
}
