// #/webhooks: the endpoints told what happens (add, enable/disable, delete) and every delivery to them,
// with each attempt's answer.

import { api, query } from "../api.js";
import { badge, debounce, extLink, field, h, num, select, tableWrap, time } from "../dom.js";
import { onLive } from "../live.js";
import { attempt, notify } from "../notice.js";
import { changeDetector, loader, pager } from "./common.js";

const EVENTS = [
  ["run.finished", "every finished run"], ["run.partial", "partial runs"], ["run.failed", "failed runs"],
  ["feed.paused", "a feed paused itself"], ["jobs.changed", "job changes (the change log)"],
];
const STATUSES = [["", "Any status"], ["pending", "pending"], ["delivered", "delivered"], ["failed", "failed"]];

export function render(main) {
  const state = { status: "", page: 1, page_size: 20 };
  const errors = h("div");
  const hooksSlot = h("div");
  const secretSlot = h("div", { "aria-live": "polite" });
  const deliveriesSlot = h("div");
  const statusPick = select("status", STATUSES, "");
  let names = new Map();

  const form = hookForm((created) => {
    secretSlot.replaceChildren(h("p", { class: "secret" }, `Secret of ${created.name} (shown this once; the receiver checks signatures with it): `,
      h("code", {}, created.secret)));
    reloadHooks();
  });
  main.replaceChildren(h("h1", {}, "Webhooks"), form, secretSlot, errors, hooksSlot,
    h("h2", {}, "Deliveries"), h("div", { class: "toolbar" }, field("Status", statusPick)), deliveriesSlot);

  const showHooks = changeDetector((list) => {
    names = new Map(list.items.map((hook) => [hook.id, hook.name]));
    hooksSlot.replaceChildren(tableWrap(hookTable(list.items, reloadHooks), "Webhook endpoints"));
  });
  const reloadHooks = loader(() => api("/api/webhooks?page_size=200"), showHooks, errors);
  const showDeliveries = changeDetector((list) => deliveriesSlot.replaceChildren(
    tableWrap(deliveryTable(list, names), "Deliveries"),
    pager(list, (page, size) => {
      Object.assign(state, { page, page_size: size });
      reloadDeliveries();
    }, "deliveries"),
  ));
  const reloadDeliveries = loader(() => api(`/api/webhooks/deliveries${query(state)}`), showDeliveries, errors);
  statusPick.addEventListener("change", () => {
    Object.assign(state, { status: statusPick.value, page: 1 });
    reloadDeliveries();
  });
  const reloadSoon = debounce(() => reloadDeliveries(), 500);
  const stop = onLive((type) => {
    if (type === "RunFinished" || type === "BatchProcessed" || type === "Resync" || type === "Poll" || type === "QueueCounts") reloadSoon();
  });
  reloadHooks().then(reloadDeliveries);
  return () => {
    stop();
    reloadSoon.cancel();
  };
}

function hookForm(onCreated) {
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const url = h("input", { name: "url", type: "url", required: true, placeholder: "https://…", autocomplete: "off" });
  const format = select("format", [["json", "JSON, signed"], ["slack", "Slack (run and feed events)"]], "json");
  const secret = h("input", { name: "secret", autocomplete: "off", placeholder: "made for you when empty", minlength: 16 });
  const boxes = EVENTS.map(([value, label]) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "events", value, checked: value === "jobs.changed" }), ` ${value} `, h("span", { class: "muted small" }, label)));
  const el = h("form", { class: "feed-form hook-form" }, h("fieldset", {}, h("legend", {}, "Add a webhook"),
    field("Name", name), field("URL", url), field("Format", format), field("Secret", secret),
    h("fieldset", { class: "events" }, h("legend", {}, "Events"), boxes),
    h("button", { type: "submit", class: "primary" }, "Add webhook")));
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const events = [...el.querySelectorAll("input[name=events]:checked")].map((box) => box.value);
    const body = { name: name.value.trim(), url: url.value.trim(), format: format.value, events };
    if (secret.value.trim()) body.secret = secret.value.trim();
    const created = await attempt(() => api("/api/webhooks", { method: "POST", body }));
    if (!created) return;
    notify(`Added webhook ${created.name}.`);
    el.reset();
    onCreated(created);
  });
  return el;
}

function hookTable(hooks, reload) {
  const act = async (hook, request, label) => {
    if (await attempt(request) !== undefined) notify(label);
    reload();
  };
  const rows = hooks.map((hook) => {
    const path = `/api/webhooks/${encodeURIComponent(hook.id)}`;
    return h("tr", { dataset: { id: hook.id, enabled: String(hook.enabled) } },
      h("th", { scope: "row", class: "url" }, h("div", {}, hook.name), h("div", { class: "small" }, extLink(hook.url))),
      h("td", { class: "wrap" }, hook.events.join(", ")),
      h("td", {}, hook.format),
      h("td", {}, hook.enabled ? "enabled" : badge("paused")),
      h("td", {}, h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => act(hook, () => api(path, { method: "PATCH", body: { enabled: !hook.enabled } }), `${hook.enabled ? "Disabled" : "Enabled"} ${hook.name}.`) },
          hook.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", class: "danger", onclick: () => confirm(`Delete webhook "${hook.name}"? Its deliveries stay.`)
          && act(hook, () => api(path, { method: "DELETE" }), `Deleted ${hook.name}.`) }, "Delete"))));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No webhooks yet.")));
  return h("table", { class: "webhooks" },
    h("caption", {}, `Endpoints: ${hooks.length}`),
    h("thead", {}, h("tr", {}, ["Endpoint", "Events", "Format", "State", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

function deliveryTable(list, names) {
  const rows = list.items.map((d) => {
    const last = d.attempts[d.attempts.length - 1];
    const answer = !last ? "—" : last.status_code ? `HTTP ${last.status_code}` : last.error;
    return h("tr", { dataset: { id: d.id, status: d.status } },
      h("td", {}, time(d.created_at)),
      h("td", { class: "wrap" }, names.get(d.webhook_id) || d.webhook_id),
      h("td", {}, d.event),
      h("td", { class: "status" }, badge(d.status)),
      h("td", { class: "num" }, num(d.attempts.length)),
      h("td", { class: "wrap answer" }, answer, last && last.response ? h("div", { class: "small muted" }, last.response.slice(0, 200)) : null),
      h("td", { class: "wrap" }, h("details", {}, h("summary", {}, "body and attempts"),
        h("pre", { class: "body" }, d.body),
        h("ul", { class: "summary" }, d.attempts.map((a) => h("li", {}, time(a.at), ` · ${a.status_code ? `HTTP ${a.status_code}` : "no answer"}`,
          a.error ? ` · ${a.error}` : "", ` · ${a.duration_s.toFixed(2)} s`))))));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No deliveries.")));
  return h("table", { class: "deliveries" },
    h("caption", {}, `Deliveries: ${num(list.total)}`),
    h("thead", {}, h("tr", {}, ["Created", "Endpoint", "Event", "Status", "Attempts", "Last answer", "Details"]
      .map((t) => h("th", { scope: "col", class: t === "Attempts" ? "num" : null }, t)))),
    h("tbody", {}, rows));
}
