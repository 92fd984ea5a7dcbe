// Pieces several pages share: pager, feed list, load-error box, "render only when the data changed".

import { api } from "../api.js";
import { h, select } from "../dom.js";

export const PAGE_SIZES = ["20", "50", "100", "200"];

// "Previous / Page p of n / Next" plus a page-size select; onChange(page, pageSize).
export function pager(list, onChange, label = "items") {
  const pages = Math.max(1, Math.ceil(list.total / list.page_size));
  const size = select("page_size", PAGE_SIZES.map((s) => [s, `${s} per page`]), String(list.page_size));
  size.setAttribute("aria-label", "Page size");
  size.addEventListener("change", () => onChange(1, Number(size.value)));
  return h("nav", { class: "pager", "aria-label": `Pages of ${label}` },
    h("button", { type: "button", disabled: list.page <= 1, onclick: () => onChange(list.page - 1, list.page_size) }, "‹ Previous"),
    h("span", {}, `Page ${list.page} of ${pages} · ${list.total} ${label}`),
    h("button", { type: "button", disabled: list.page >= pages, onclick: () => onChange(list.page + 1, list.page_size) }, "Next ›"),
    size);
}

let feedsCache = null;

// Every feed (for filters and pickers); kept until a page asks for a fresh list (the Feeds page does).
export async function allFeeds(fresh = false) {
  if (!feedsCache || fresh) feedsCache = api("/api/feeds?page_size=200").then((list) => list.items);
  try {
    return await feedsCache;
  } catch (error) {
    feedsCache = null;
    throw error;
  }
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, `Could not load: ${error.message}`);
}

// Calls render(data) only when the answer differs from the last one: polling never disturbs focus.
export function changeDetector(render) {
  let last = null;
  return (data) => {
    const text = JSON.stringify(data);
    if (text === last) return;
    last = text;
    render(data);
  };
}

// Fetch-and-render with the latest request winning; shows errors in place of a stuck spinner.
export function loader(fetchData, render, errorSlot) {
  let current = 0;
  return async () => {
    const mine = ++current;
    try {
      const data = await fetchData();
      if (mine !== current) return;
      errorSlot.replaceChildren();
      render(data);
    } catch (error) {
      if (mine === current) errorSlot.replaceChildren(errorBox(error));
    }
  };
}
