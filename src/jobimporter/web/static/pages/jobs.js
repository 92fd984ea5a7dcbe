// #/jobs (search and filters) and #/jobs/<key> (one job, its description shown sanitized and sandboxed).

import { api, query } from "../api.js";
import { dayToIso, debounce, extLink, field, h, num, select, tableWrap, time } from "../dom.js";
import { descriptionFrame } from "../sanitize.js";
import { allFeeds, changeDetector, loader, pager } from "./common.js";

const TEXT_FILTERS = [["q", "Search", "title, company, description"], ["job_type", "Type", "exact, e.g. full-time"],
  ["category", "Category", "exact, e.g. Data Science"], ["location", "Location", "exact, e.g. USA"]];
const SORTS = [["-last_changed", "Recently changed"], ["-published_at", "Newest published"], ["title", "Title A–Z"]];
const KEYS = ["q", "feed_id", "job_type", "category", "location", "since", "until", "sort"];

export const list = {
  render(main, _params, search) {
    const state = { page: Number(search.get("page")) || 1, page_size: Number(search.get("page_size")) || 20 };
    for (const key of KEYS) state[key] = search.get(key) || "";
    state.sort ||= "-last_changed";
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
    ...controls, field("Feed", feed),
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
  const rows = answer.items.map((job) => h("tr", {},
    h("th", { scope: "row", class: "wrap title" },
      h("a", { href: `#/jobs/${encodeURIComponent(job.key)}`, dataset: { focus: job.key } }, job.title)),
    h("td", { class: "wrap" }, job.company || "—"),
    h("td", { class: "wrap" }, (job.locations || []).join(", ")),
    h("td", {}, (job.job_types || []).join(", ")),
    h("td", { class: "wrap" }, (job.categories || []).join(", ")),
    h("td", {}, time(job.published_at, true)),
    h("td", {}, time(job.last_changed, true)),
  ));
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No jobs match.")));
  return h("table", { class: "jobs" },
    h("caption", {}, `Jobs: ${num(answer.total)} found`),
    h("thead", {}, h("tr", {}, ["Title", "Company", "Locations", "Type", "Categories", "Published", "Last changed"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

export const detail = {
  render(main, [key]) {
    const errors = h("div");
    const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    main.replaceChildren(h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " › job"), errors, body);
    loader(() => api(`/api/jobs/${encodeURIComponent(key)}`), (job) => body.replaceChildren(...jobView(job)), errors)();
  },
};

function jobView(job) {
  const salary = job.salary_min || job.salary_max
    ? `${[job.salary_min, job.salary_max].filter((v) => v != null).map(num).join("–")} ${job.salary_currency || ""}${job.salary_period ? ` per ${job.salary_period}` : ""}`
    : "—";
  const facts = [
    ["Company", job.company || "—"], ["Locations", (job.locations || []).join(", ") || "—"],
    ["Type", (job.job_types || []).join(", ") || "—"], ["Categories", (job.categories || []).join(", ") || "—"],
    ["Salary", salary], ["Published", time(job.published_at)], ["First seen", time(job.first_seen)],
    ["Last seen", time(job.last_seen)], ["Last changed", time(job.last_changed)],
    ["Source", `${job.source} · ${job.external_id}`], ["Original", job.url ? extLink(job.url) : "—"],
  ];
  return [
    h("h1", { class: "job-title" }, job.title),
    h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h("h2", {}, "Description"),
    job.description_html
      ? descriptionFrame(job.description_html, `Description of ${job.title}`)
      : h("p", { class: "pre" }, job.description_text || "No description."),
  ];
}
