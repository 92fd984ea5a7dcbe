// #/jobs (search and filters, active jobs by default) and #/jobs/<key> (one job: its status, its description
// shown sanitized and sandboxed, and its changes).

import { api, query } from "../api.js";
import { badge, dayToIso, debounce, extLink, field, h, num, select, tableWrap, time } from "../dom.js";
import { descriptionFrame } from "../sanitize.js";
import { allFeeds, changeDetector, loader, pager } from "./common.js";

const TEXT_FILTERS = [["q", "Search", "title, company, description"], ["job_type", "Type", "exact, e.g. full-time"],
  ["category", "Category", "exact, e.g. Data Science"], ["location", "Location", "exact, e.g. USA"]];
const SORTS = [["-last_changed", "Recently changed"], ["-published_at", "Newest published"], ["title", "Title A–Z"]];
const STATUSES = [["active", "Active"], ["expired", "Expired"], ["all", "All"]];
const KEYS = ["q", "feed_id", "job_type", "category", "location", "status", "since", "until", "sort"];

export const list = {
  render(main, _params, search) {
    const state = { page: Number(search.get("page")) || 1, page_size: Number(search.get("page_size")) || 20 };
    for (const key of KEYS) state[key] = search.get(key) || "";
    state.sort ||= "-last_changed";
    state.status ||= "active";
    const errors = h("div");
    const slot = h("div");
    main.replaceChildren(h("h1", {}, "Jobs"), searchForm(state, () => {
      state.page = 1;
      reload();
    }), errors, slot);
    const show = changeDetector((answer) => slot.replaceChildren(
      tableWrap(jobTable(answer), "Jobs"),
      pager(answer, (page, size) => {
        Object.assign(state, { page, page_size: size });
        reload();
      }, "jobs"),
    ));
    const reload = loader(() => {
      history.replaceState(null, "", `#/jobs${query(state)}`);
      return api(`/api/jobs${query({ ...state, since: dayToIso(state.since), until: dayToIso(state.until, true) })}`);
    }, show, errors);
    reload();
  },
};

function searchForm(state, onChange) {
  const controls = TEXT_FILTERS.map(([name, label, hint]) =>
    field(label, h("input", { name, type: name === "q" ? "search" : "text", value: state[name], placeholder: hint })));
  const feed = select("feed_id", [["", "All feeds"]], state.feed_id);
  const form = h("form", { class: "filters", role: "search", "aria-label": "Search jobs" },
    ...controls, field("Feed", feed), field("Status", select("status", STATUSES, state.status)),
    field("Published from", h("input", { type: "date", name: "since", value: state.since })),
    field("to", h("input", { type: "date", name: "until", value: state.until })),
    field("Sort", select("sort", SORTS, state.sort)),
    h("button", { type: "submit", class: "primary" }, "Search"));
  const changed = (event) => {
    if (!event.target.name) return;
    state[event.target.name] = event.target.value;
    onChangeSoon();
  };
  const onChangeSoon = debounce(onChange, 350);
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onChangeSoon.cancel();
    onChange();
  });
  allFeeds().then((feeds) => feed.append(
    ...feeds.map((f) => h("option", { value: f.id, selected: f.id === state.feed_id }, f.name)),
  )).catch(() => {});
  return form;
}

function jobTable(answer) {
  const rows = answer.items.map((job) => h("tr", { dataset: { status: job.status } },
    h("th", { scope: "row", class: "wrap title" },
      h("a", { href: `#/jobs/${encodeURIComponent(job.key)}`, dataset: { focus: job.key } }, job.title)),
    h("td", { class: "wrap" }, job.company || "—"),
    h("td", { class: "wrap" }, (job.locations || []).join(", ")),
    h("td", {}, (job.job_types || []).join(", ")),
    h("td", { class: "wrap" }, (job.categories || []).join(", ")),
    h("td", { class: "status" }, statusBadge(job)),
    h("td", {}, time(job.published_at, true)),
    h("td", {}, time(job.last_changed, true)),
  ));
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No jobs match.")));
  return h("table", { class: "jobs" },
    h("caption", {}, `Jobs: ${num(answer.total)} found`),
    h("thead", {}, h("tr", {}, ["Title", "Company", "Locations", "Type", "Categories", "Status", "Published", "Last changed"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

// "active", "expired" (with why, on hover), or "active" with a note while it waits out its grace period.
function statusBadge(job) {
  if (job.status === "expired") return h("span", { class: "badge s-expired", title: job.expiry_reason || "" }, "expired");
  return [badge("active"), job.unlisted_at ? h("div", { class: "small muted" }, "no feed lists it") : null];
}

export const detail = {
  render(main, [key]) {
    const errors = h("div");
    const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    main.replaceChildren(h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " › job"), errors, body);
    const load = async () => {
      const path = `/api/jobs/${encodeURIComponent(key)}`;
      const [job, changes] = await Promise.all([api(path), api(`${path}/changes`)]);
      return { job, changes };
    };
    loader(load, ({ job, changes }) => body.replaceChildren(...jobView(job, changeList(changes))), errors)();
  },
};

// The job's changes, oldest first: when, what, which fields (or why it expired), and the import that did it.
function changeList(changes) {
  const rows = changes.map((c) => h("tr", { dataset: { kind: c.kind, cursor: c.cursor } },
    h("td", {}, time(c.at)),
    h("td", {}, h("span", { class: `badge s-${c.kind}` }, c.kind)),
    h("td", { class: "wrap fields" }, c.fields.length ? c.fields.join(", ") : c.reason || "—"),
    h("td", {}, c.entry_id ? h("a", { href: `#/imports/${encodeURIComponent(c.entry_id)}` }, "import") : "expiry sweep"),
  ));
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No changes recorded.")));
  const table = h("table", { class: "changes" },
    h("caption", {}, `Changes: ${changes.length}`),
    h("thead", {}, h("tr", {}, ["When", "Change", "Fields or reason", "By"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
  return [h("h2", {}, "Changes"), tableWrap(table, "Changes of this job")];
}

function jobView(job, changes) {
  const salary = job.salary_min || job.salary_max
    ? `${[job.salary_min, job.salary_max].filter((v) => v != null).map(num).join("–")} ${job.salary_currency || ""}${job.salary_period ? ` per ${job.salary_period}` : ""}`
    : "—";
  const status = job.status === "expired"
    ? [h("span", { class: "badge s-expired" }, "expired"), ` ${job.expiry_reason || ""}, `, time(job.expired_at)]
    : [badge("active"), job.unlisted_at ? [" · no feed lists it since ", time(job.unlisted_at)] : null];
  const facts = [
    ["Status", status], ["Expires", time(job.expires_at)],
    ["Company", job.company || "—"], ["Locations", (job.locations || []).join(", ") || "—"],
    ["Type", (job.job_types || []).join(", ") || "—"], ["Categories", (job.categories || []).join(", ") || "—"],
    ["Salary", salary], ["Published", time(job.published_at)], ["First seen", time(job.first_seen)],
    ["Last seen", time(job.last_seen)], ["Last changed", time(job.last_changed)],
    ["Source", `${job.source} · ${job.external_id}`], ["Original", job.url ? extLink(job.url) : "—"],
  ];
  return [
    h("h1", { class: "job-title" }, job.title),
    h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    ...changes,
    h("h2", {}, "Description"),
    job.description_html
      ? descriptionFrame(job.description_html, `Description of ${job.title}`)
      : h("p", { class: "pre" }, job.description_text || "No description."),
  ];
}
