// #/feeds: feeds with their health (a feed its failures paused says when and why); add (after a preview if
// wished), edit, pause/resume, prioritise, delete, run one now.

import { api } from "../api.js";
import { badge, debounce, duration, extLink, field, h, percent, select, tableWrap, time } from "../dom.js";
import { onLive } from "../live.js";
import { attempt, notify } from "../notice.js";
import { allFeeds, changeDetector, loader } from "./common.js";

const FORMATS = [
  "auto", "rss", "atom", "job-xml", "personio-xml", "jsonld", "greenhouse", "lever", "ashby", "workable",
  "smartrecruiters", "recruitee", "remotive", "remoteok", "arbeitnow", "himalayas", "workingnomads", "usajobs",
  "adzuna", "jobicy-json",
];
const PROFILES = ["auto", "none", "weworkremotely", "wordpress-jobs", "stackoverflow", "pythonorg"];

export function render(main) {
  const errors = h("div");
  const slot = h("div");
  const form = feedForm(() => reload());
  main.replaceChildren(h("h1", {}, "Feeds"), form.el, errors, slot);

  const actions = {
    edit: (feed) => form.edit(feed),
    patch: async (feed, change, label) => {
      if (await attempt(() => api(`/api/feeds/${encodeURIComponent(feed.id)}`, { method: "PATCH", body: change }))) {
        notify(label);
      }
      reload();
    },
    remove: async (feed) => {
      if (!confirm(`Delete feed "${feed.name}"? Its import history stays.`)) return;
      const done = await attempt(() => api(`/api/feeds/${encodeURIComponent(feed.id)}`, { method: "DELETE" }));
      if (done !== undefined) notify(`Deleted ${feed.name}.`);
      reload();
    },
    run: async (feed) => {
      const answer = await attempt(() => api("/api/runs", { method: "POST", body: { feed_ids: [feed.id] } }));
      if (answer) notify(["Run ", h("a", { href: `#/runs/${encodeURIComponent(answer.run_id)}` }, answer.run_id), ` started for ${feed.name}.`]);
    },
  };
  const show = changeDetector((feeds) => slot.replaceChildren(tableWrap(feedTable(feeds, actions), "Feeds")));
  const reload = loader(() => allFeeds(true), show, errors);
  const reloadSoon = debounce(reload, 500);
  const stop = onLive((type) => {
    if (type === "RunFinished" || type === "EntryChanged" || type === "Resync" || type === "Poll") reloadSoon();
  });
  reload();
  return () => {
    stop();
    reloadSoon.cancel();
  };
}

// One form for "add" and "edit": edit(feed) switches it to PATCH that feed.
function feedForm(onSaved) {
  let editing = null;
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const url = h("input", { name: "url", type: "url", required: true, placeholder: "https://…", autocomplete: "off" });
  const format = select("format", FORMATS.map((f) => [f, f]), "auto");
  const priority = select("priority", [["normal", "normal"], ["high", "high"]], "normal");
  const cron = h("input", { name: "cron", autocomplete: "off", spellcheck: false, placeholder: "the scheduler's", title: "Cron, UTC: 5 fields, or 6 with seconds first. Empty: the scheduler's cron." });
  const enabled = h("input", { name: "enabled", type: "checkbox", checked: true });
  const profile = select("profile", PROFILES.map((p) => [p, p]), "auto");
  const maxPages = h("input", { name: "max_pages", type: "number", min: 1, max: 10000, value: 50 });
  const mapping = h("textarea", { name: "mapping", rows: 3, spellcheck: false, placeholder: '{"items": "//job", "fields": {"title": "title", "link": "url"}}' });
  const legend = h("legend", {}, "Add a feed");
  const submit = h("button", { type: "submit", class: "primary" }, "Add feed");
  const previewButton = h("button", { type: "button" }, "Preview");
  const cancel = h("button", { type: "button", hidden: true }, "Cancel");
  const shown = h("div", { class: "feed-preview", hidden: true, "aria-live": "polite" });
  const el = h("form", { class: "feed-form" }, h("fieldset", {}, legend,
    field("Name", name), field("URL", url), field("Format", format), field("Priority", priority),
    field("Schedule (cron, UTC)", cron), field("Board profile", profile), field("Page cap", maxPages),
    h("div", { class: "field check" }, h("label", {}, enabled, " Enabled")),
    field("Field mapping (JSON, optional)", mapping), previewButton, submit, cancel), shown);

  const reset = () => {
    editing = null;
    el.reset();
    shown.hidden = true;
    shown.replaceChildren();
    legend.textContent = "Add a feed";
    submit.textContent = "Add feed";
    cancel.hidden = true;
  };
  // The form's fields as the API takes them; null when the mapping is not JSON (said in a notice).
  const formBody = () => {
    const body = { name: name.value.trim(), url: url.value.trim(), format: format.value, priority: priority.value,
      enabled: enabled.checked, profile: profile.value, max_pages: Number(maxPages.value) || 50 };
    // Empty: the scheduler's cron (a PATCH says so with "", a POST by leaving it out).
    body.cron = cron.value.trim() || (editing ? "" : null);
    const text = mapping.value.trim();
    if (!text) body.mapping = editing ? "" : null;
    else {
      try {
        body.mapping = JSON.parse(text);
      } catch (error) {
        notify(`The field mapping is not JSON: ${error.message}`, "error");
        return null;
      }
    }
    return body;
  };
  previewButton.addEventListener("click", async () => {
    const body = formBody();
    if (!body || !el.reportValidity()) return;
    const previewed = { ...body, cron: null, mapping: body.mapping === "" ? null : body.mapping };
    const answer = await attempt(() => api("/api/feeds/preview?limit=3", { method: "POST", body: previewed }));
    if (!answer) return;
    shown.replaceChildren(...previewView(answer));
    shown.hidden = false;
  });
  cancel.addEventListener("click", reset);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = formBody();
    if (!body) return;
    const path = editing ? `/api/feeds/${encodeURIComponent(editing.id)}` : "/api/feeds";
    const saved = await attempt(() => api(path, { method: editing ? "PATCH" : "POST", body }));
    if (!saved) return;
    notify(`${editing ? "Saved" : "Added"} ${saved.name}.`);
    reset();
    onSaved();
  });
  const edit = (feed) => {
    editing = feed;
    name.value = feed.name;
    url.value = feed.url;
    format.value = feed.format;
    priority.value = feed.priority;
    cron.value = feed.cron || "";
    enabled.checked = feed.enabled;
    profile.value = feed.profile || "auto";
    maxPages.value = feed.max_pages || 50;
    mapping.value = feed.mapping ? JSON.stringify(feed.mapping) : "";
    legend.textContent = `Edit ${feed.name}`;
    submit.textContent = "Save changes";
    cancel.hidden = false;
    name.focus();
  };
  return { el, edit };
}

// What importing the feed would store: format, profile, counts, the first records field by field
// (empty ones marked), the source fields no field took, and the items that would fail.
function previewView(p) {
  const parts = [h("h2", {}, `Preview: ${p.name}`)];
  const facts = [["Format", p.format || "—"], ["Profile", p.profile || "none"],
    ["Items read", `${p.items_read}${p.more_pages ? " (first page; more follow)" : ""}`], ["Would fail", p.failures.length]];
  parts.push(h("dl", { class: "facts preview-facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { fact: k } }, String(v))])));
  if (p.error) parts.push(h("p", { class: "error-text preview-error" }, p.error));
  p.records.forEach((record, index) => {
    const empty = new Set(p.empty_fields[index] || []);
    const rows = Object.entries(record).map(([key, value]) => h("tr", { class: empty.has(key) ? "empty-field" : null, dataset: { field: key } },
      h("th", { scope: "row" }, key), h("td", {}, empty.has(key) ? h("span", { class: "muted" }, "— empty") : shownValue(value))));
    parts.push(tableWrap(h("table", { class: "preview-record" }, h("caption", {}, `Record ${index + 1} as it would be stored`), h("tbody", {}, rows)), `Record ${index + 1}`));
  });
  if (p.unmapped.length) parts.push(h("p", { class: "small preview-unmapped" }, "Source fields no field took (kept in extra): ", p.unmapped.join(", ")));
  if (p.failures.length) {
    parts.push(h("h3", {}, "Items that would fail"), h("ul", { class: "preview-failures" }, p.failures.map((f) => h("li", {}, h("code", {}, f.item), ": ", f.reason))));
  }
  return parts;
}

function shownValue(value) {
  if (Array.isArray(value)) return value.join("; ");
  if (value && typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(", ") : v}`).join(" · ");
  return String(value);
}

function feedTable(feeds, actions) {
  const heads = ["Feed", "Settings", "Last import", "Last success", "Success rate", "Median fetch", "Actions"];
  const rows = feeds.map((feed) => {
    const health = feed.health || {};
    const high = feed.priority === "high";
    return h("tr", { dataset: { id: feed.id, enabled: String(feed.enabled), priority: feed.priority, paused: feed.paused_at ? "health" : "" } },
      h("th", { scope: "row", class: "url" }, h("div", {}, feed.name), h("div", { class: "small" }, extLink(feed.url)),
        health.last_error ? h("div", { class: "small error-text" }, health.last_error) : null),
      h("td", {}, h("div", {}, feed.enabled ? "enabled" : h("span", { class: "badge s-paused" }, "paused")),
        feed.paused_at ? h("div", { class: "small paused-reason" }, "paused itself ", time(feed.paused_at, true), `: ${feed.paused_reason}`) : null,
        health.permanent_failures ? h("div", { class: "small error-text", dataset: { failures: health.permanent_failures } },
          `${health.permanent_failures} permanent failure${health.permanent_failures === 1 ? "" : "s"} in a row`) : null,
        h("div", { class: "small" }, high ? h("strong", {}, "high priority") : "normal priority", ` · ${feed.format}`),
        h("div", { class: "small", dataset: { cron: feed.cron || "" } }, feed.cron ? h("span", {}, "own schedule ", h("code", {}, feed.cron)) : "scheduler's schedule")),
      h("td", {}, health.last_status ? badge(health.last_status) : "—", h("div", { class: "small" }, time(health.last_run_at, true))),
      h("td", {}, time(health.last_success_at, true)),
      h("td", { class: "num" }, percent(health.success_rate)),
      h("td", { class: "num" }, duration(health.median_fetch_s)),
      h("td", {}, h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => actions.patch(feed, { enabled: !feed.enabled }, `${feed.enabled ? "Paused" : "Resumed"} ${feed.name}.`) },
          feed.enabled ? "Pause" : "Resume"),
        h("button", { type: "button", onclick: () => actions.patch(feed, { priority: high ? "normal" : "high" }, `${feed.name}: priority ${high ? "normal" : "high"}.`) },
          high ? "Normal priority" : "Prioritise"),
        h("button", { type: "button", onclick: () => actions.run(feed), disabled: !feed.enabled }, "Run now"),
        h("button", { type: "button", onclick: () => actions.edit(feed) }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => actions.remove(feed) }, "Delete"))));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: heads.length, class: "empty" }, "No feeds yet.")));
  return h("table", { class: "feeds" },
    h("caption", {}, `Feeds and their health (success rate over the last 20 imports): ${feeds.length}`),
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col", class: t === "Success rate" || t === "Median fetch" ? "num" : null }, t)))),
    h("tbody", {}, rows));
}
