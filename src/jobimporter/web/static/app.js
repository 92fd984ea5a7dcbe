// The shell: hash router, navigation, admin token, live indicator, notices.

import { getToken, setToken } from "./api.js";
import { h, TIME_ZONE } from "./dom.js";
import { liveMode, onLive, startLive } from "./live.js";
import { notify } from "./notice.js";
import * as charts from "./pages/charts.js";
import * as entry from "./pages/entry.js";
import * as failed from "./pages/failed.js";
import * as feeds from "./pages/feeds.js";
import * as history from "./pages/history.js";
import * as jobs from "./pages/jobs.js";
import * as queue from "./pages/queue.js";
import * as run from "./pages/run.js";
import * as webhooks from "./pages/webhooks.js";

// [pattern, page module, nav section]; each page exports render(main, params, query) → cleanup?
const ROUTES = [
  [/^\/history$/, history, "history"],
  [/^\/runs\/([^/]+)$/, run, "history"],
  [/^\/imports\/([^/]+)$/, entry, "history"],
  [/^\/queue$/, queue, "queue"],
  [/^\/failed$/, failed, "failed"],
  [/^\/feeds$/, feeds, "feeds"],
  [/^\/jobs$/, jobs.list, "jobs"],
  [/^\/jobs\/(.+)$/, jobs.detail, "jobs"],
  [/^\/charts$/, charts, "charts"],
  [/^\/webhooks$/, webhooks, "webhooks"],
];

const main = document.getElementById("main");
let cleanup = null;

function route() {
  const [path, search = ""] = location.hash.replace(/^#/, "").split("?");
  if (!path || path === "/") {
    location.replace("#/history");
    return;
  }
  if (cleanup) cleanup();
  cleanup = null;
  const match = ROUTES.map(([re, page, section]) => [re.exec(path), page, section]).find(([m]) => m);
  highlight(match ? match[2] : "");
  if (!match) {
    main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "#/history" }, "Import history")));
    return;
  }
  const [m, page] = match;
  const params = m.slice(1).map(decodeURIComponent);
  cleanup = page.render(main, params, new URLSearchParams(search)) || null;
}

function highlight(section) {
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function setupToken() {
  const input = document.getElementById("token-input");
  input.value = getToken();
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    notify(input.value.trim() ? "Admin token saved in this browser." : "Admin token removed.");
    input.closest("details").open = false;
  });
}

function setupIndicator() {
  const badge = document.getElementById("live");
  const show = (mode) => {
    badge.dataset.mode = mode;
    badge.textContent = mode;
    badge.title = mode === "live" ? "Updates arrive as they happen (event stream)"
      : mode === "polling" ? "Event stream unavailable: checking every 3 s" : "Connecting to the event stream";
  };
  show(liveMode());
  onLive((type, data) => type === "Mode" && show(data));
}

setupToken();
setupIndicator();
document.getElementById("tz").textContent = `${TIME_ZONE} (your time zone)`;
startLive();
window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true }); // screen readers and keyboards start at the new page
});
route();
