// #/history: every feed import (newest first) with filters, pagination, live updates and "Run import now".

import { api, query } from "../api.js";
import { dayToIso, debounce, field, h, select } from "../dom.js";
import { onLive } from "../live.js";
import { notify } from "../notice.js";
import { allFeeds, changeDetector, loader, pager } from "./common.js";
import { EntryTable } from "./entries.js";

const STATUSES = ["queued", "fetching", "processing", "completed", "failed", "not_modified"];
const TRIGGERS = ["manual", "cron", "cli"];
const FILTERS = ["feed_id", "status", "trigger", "since", "until"];

export function render(main, _params, search) {
  const state = { page: Number(search.get("page")) || 1, page_size: Number(search.get("page_size")) || 20 };
  for (const key of FILTERS) state[key] = search.get(key) || "";

  const table = new EntryTable("Import history");
  const errors = h("div");
  const pagerSlot = h("div");
  const filters = filterForm(state, () => {
    state.page = 1;
    reload();
  });
  main.replaceChildren(
    h("h1", {}, "Import history"),
    runNowPanel(() => reload()),
    filters, errors, table.el, pagerSlot,
  );

  const show = changeDetector((list) => {
    const pages = Math.max(1, Math.ceil(list.total / list.page_size));
    table.setCaption(`Import history: ${list.total} feed imports, page ${list.page} of ${pages}, newest first`);
    table.setEntries(list.items);
    pagerSlot.replaceChildren(pager(list, (page, size) => {
      Object.assign(state, { page, page_size: size });
      reload();
    }, "feed imports"));
  });
  const reload = loader(() => {
    history.replaceState(null, "", `#/history${query(state)}`);
    return api(`/api/imports${query(apiParams(state))}`);
  }, show, errors);
  const reloadSoon = debounce(reload, 300);

  const stop = onLive((type, data) => {
    if (type === "EntryChanged" || type === "BatchProcessed") {
      if (!table.apply(type, data)) reloadSoon();
    } else if (type === "RunStarted" || type === "RunFinished" || type === "Poll" || type === "Resync") {
      reloadSoon();
    }
  });
  reload();
  return () => {
    stop();
    reloadSoon.cancel();
  };
}

function apiParams(state) {
  return {
    ...state,
    since: dayToIso(state.since),
    until: dayToIso(state.until, true),
    sort: "-started_at",
  };
}

function filterForm(state, onChange) {
  const feed = select("feed_id", [["", "All feeds"]], state.feed_id);
  const status = select("status", [["", "Any status"], ...STATUSES.map((s) => [s, s.replace("_", " ")])], state.status);
  const trigger = select("trigger", [["", "Any trigger"], ...TRIGGERS.map((t) => [t, t])], state.trigger);
  const since = h("input", { type: "date", name: "since", value: state.since });
  const until = h("input", { type: "date", name: "until", value: state.until });
  const form = h("form", { class: "filters", "aria-label": "Filter import history" },
    field("Feed", feed), field("Status", status), field("Trigger", trigger),
    field("From", since), field("To", until),
    h("button", { type: "reset" }, "Clear filters"));
  form.addEventListener("change", (event) => {
    state[event.target.name] = event.target.value;
    onChange();
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("reset", () => {
    for (const key of FILTERS) state[key] = "";
    setTimeout(onChange); // after the form has cleared its controls
  });
  allFeeds().then((feeds) => {
    feed.append(...feeds.map((f) => h("option", { value: f.id, selected: f.id === state.feed_id }, f.name)));
  }).catch(() => {});
  return form;
}

// "Run import now" for all enabled feeds, or only the ticked ones.
function runNowPanel(onStarted) {
  const list = h("ul", { class: "feed-picks" }, h("li", { class: "muted" }, "Loading feeds…"));
  const button = h("button", { type: "submit", class: "primary" }, "Run import now");
  const form = h("form", { class: "run-now", "aria-label": "Run an import now" },
    button,
    h("details", {}, h("summary", {}, "Choose feeds"),
      h("p", { class: "muted small" }, "Tick feeds to import only those; with none ticked every enabled feed runs."),
      list));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = [...form.querySelectorAll("input[name=feed]:checked")].map((box) => box.value);
    button.disabled = true;
    try {
      const answer = await api("/api/runs", { method: "POST", body: ids.length ? { feed_ids: ids } : {} });
      notify(["Run ", h("a", { href: `#/runs/${encodeURIComponent(answer.run_id)}` }, answer.run_id),
        ` started for ${ids.length ? `${ids.length} feed${ids.length > 1 ? "s" : ""}` : "all enabled feeds"}.`]);
      onStarted(answer.run_id);
    } catch (error) {
      notify(`Could not start a run: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
  allFeeds().then((feeds) => {
    list.replaceChildren(...feeds.map((f) => h("li", {},
      h("label", {}, h("input", { type: "checkbox", name: "feed", value: f.id }), " ", f.name,
        f.enabled ? null : h("span", { class: "muted" }, " (paused)")))));
    if (!feeds.length) list.replaceChildren(h("li", { class: "muted" }, "No feeds yet: add one on the Feeds page."));
  }).catch((error) => list.replaceChildren(h("li", { class: "error" }, error.message)));
  return form;
}
