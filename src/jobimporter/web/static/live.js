// Live updates: one EventSource for the whole page; while it is down, poll every 3 s instead.
//
// Listeners get (type, data): the SSE event types of the API contract, plus
//   "Mode"   data "live" | "polling"  (which way updates currently arrive)
//   "Resync" the stream (re)opened: reload whatever may have been missed
//   "Poll"   data {runs, queue}: a polling round's answers (/api/runs, /api/queue)

import { api } from "./api.js";

const EVENT_TYPES = ["RunStarted", "RunFinished", "EntryChanged", "BatchProcessed", "QueueCounts"];
const POLL_MS = 3000;
const STALE_MS = 45000; // QueueCounts arrive every few seconds; silence this long means a dead stream
const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 10000;

const listeners = new Set();
let source = null;
let mode = "connecting";
let pollTimer = null;
let retryTimer = null;
let staleTimer = null;
let retryMs = RETRY_MIN_MS;
let lastEventId = "";

export function onLive(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function liveMode() {
  return mode;
}

export function startLive() {
  connect();
}

function emit(type, data) {
  for (const listener of [...listeners]) {
    try {
      listener(type, data);
    } catch (error) {
      console.error("live listener failed", type, error);
    }
  }
}

function setMode(next) {
  if (mode === next) return;
  mode = next;
  emit("Mode", next);
}

function connect() {
  clearTimeout(retryTimer);
  if (source) source.close();
  // A new EventSource cannot send Last-Event-ID itself; the API takes it as a query parameter too.
  source = new EventSource(lastEventId ? `/api/events?last_event_id=${encodeURIComponent(lastEventId)}` : "/api/events");
  source.addEventListener("open", () => {
    retryMs = RETRY_MIN_MS;
    stopPolling();
    setMode("live");
    markAlive();
    emit("Resync");
  });
  source.addEventListener("error", streamDown);
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (event) => {
      markAlive();
      if (event.lastEventId) lastEventId = event.lastEventId;
      const data = parse(event.data);
      if (data) emit(type, data);
    });
  }
}

// The browser retries a dropped connection by itself (readyState CONNECTING); after a refused one
// (CLOSED: an error status, a proxy page) it gives up, so we open a new one with a growing delay.
function streamDown() {
  clearTimeout(staleTimer);
  startPolling();
  setMode("polling");
  if (source.readyState === EventSource.CLOSED) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  }
}

function markAlive() {
  clearTimeout(staleTimer);
  staleTimer = setTimeout(() => {
    source.close();
    streamDown();
  }, STALE_MS);
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function startPolling() {
  if (pollTimer) return;
  pollTimer = setInterval(poll, POLL_MS);
  poll();
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

async function poll() {
  try {
    const [runs, queue] = await Promise.all([api("/api/runs?page_size=20"), api("/api/queue")]);
    if (pollTimer) emit("Poll", { runs, queue });
  } catch {
    // The server is unreachable too: keep trying, pages keep showing what they had.
  }
}
