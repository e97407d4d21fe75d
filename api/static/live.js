// The live connection: a snapshot, then the broadcaster's events in order; desks read again.

import { addToFeed } from "./feed.js";
import { describe } from "./form.js";
import {
  PAGE_SIZE,
  RELOADED_FOR_MS,
  BACKOFF_MS,
  broadcasterUrl,
  state,
  sleep,
  refreshStatus,
  setStatus,
  showSeq,
} from "./page.js";
import { api, totalOf } from "./rest.js";
import { table, replaceAll, upsert, remove } from "./rows.js";
import { askForToken } from "./token.js";

// The first page paints at once; with more desks than a page, every desk is then read as the
// store holds it, in one answer. Both are live reads taken after the log's head they name,
// so each desk shown is at least that new and never goes back: the events that follow are
// applied only when newer (by version). The registry's own head is where replay starts.
async function loadSnapshot(showFirst) {
  const first = await api("GET", `/api/desks?page_size=${PAGE_SIZE}`);
  if (totalOf(first.headers) <= first.data.length) {
    return { desks: first.data, seq: Number(first.headers.get("X-Event-Seq")) };
  }
  showFirst(first.data); // while the rest loads
  const whole = await api("GET", "/api/registry");
  return { desks: whole.data, seq: Number(whole.headers.get("X-Event-Seq")) };
}

export async function start(reason) {
  const generation = ++state.generation;
  closeSocket();
  forgetRereads(); // the snapshot about to load holds the truth about them
  for (;;) {
    try {
      const snapshot = await loadSnapshot((desks) => {
        if (generation === state.generation) replaceAll(desks);
      });
      if (generation !== state.generation) return;
      replaceAll(snapshot.desks);
      state.seq = snapshot.seq;
      showSeq();
      break;
    } catch (error) {
      if (generation !== state.generation) return;
      if (error.status === 401 || error.status === 403) {
        setStatus("unauthorized", describe(error));
        return; // until a token is given (the token form starts again)
      }
      setStatus("reconnecting", `the API did not answer (${error.message})`);
      await sleep(backoff());
    }
  }
  if (reason) state.reloadedUntil = Date.now() + RELOADED_FOR_MS;
  connect(generation);
}

function connect(generation) {
  const url = new URL(broadcasterUrl);
  url.searchParams.set("after", String(state.seq));
  if (state.epoch) url.searchParams.set("epoch", state.epoch);
  // A browser cannot set headers on a WebSocket: the token goes in the query (over TLS).
  if (state.token) url.searchParams.set("token", state.token);
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onmessage = (message) => {
    if (generation === state.generation) receive(JSON.parse(message.data), generation);
  };
  socket.onclose = (closed) => {
    if (generation !== state.generation) return;
    state.connected = false;
    if (closed.code === 4401) {
      setStatus("unauthorized", "the token expired");
      askForToken("The token expired: paste a new one to go on.");
      return; // starts again (a fresh snapshot) once a new token is given
    }
    setStatus("reconnecting");
    setTimeout(() => {
      if (generation === state.generation) connect(generation);
    }, backoff());
  };
}

function closeSocket() {
  if (state.socket) {
    state.socket.onclose = null;
    state.socket.onmessage = null;
    state.socket.close();
    state.socket = null;
  }
  state.connected = false;
}

function receive(message, generation) {
  switch (message.type) {
    case "hello":
      if (message.head === null) return; // the broadcaster follows no log yet: a hello follows
      if (state.epoch && message.epoch !== state.epoch) {
        state.epoch = message.epoch; // a new log: our seq means nothing in it
        start("new log");
        return;
      }
      state.epoch = message.epoch;
      state.connected = true;
      state.attempt = 0;
      refreshStatus();
      return;
    case "reset":
      state.epoch = message.epoch;
      start("reset");
      return;
    default:
      if (typeof message.seq === "number") applyEvent(message, generation);
  }
}

function applyEvent(event, generation) {
  if (state.seq !== null && event.seq <= state.seq) return; // replayed, already in the snapshot
  state.seq = event.seq;
  showSeq();
  switch (event.type) {
    case "desk_created":
      if (event.truncated) refetch(event.desk_id, event.version, generation);
      else upsert(event.desk, event.version);
      break;
    case "desk_updated":
    case "desk_snapshot":
      // A change to a desk not held: the snapshot, newer than the log, may not hold it because
      // it was deleted since. Only the store knows; an upsert would bring it back until then.
      if (!table.get(String(event.desk_id))) rereadSoon(event.desk_id, generation);
      else if (event.truncated) refetch(event.desk_id, event.version, generation);
      else upsert(event.desk, event.version);
      break;
    case "desk_deleted":
      remove(event.desk_id, event.version);
      break;
    case "resync": // changes were never logged: only a new snapshot tells the truth
      addToFeed(event);
      start("resync");
      return;
    default:
      break; // a snapshot marker: the reload at its resync already covers it
  }
  addToFeed(event);
}

// Desks not held whose change came, read again once the burst they came in is applied: the
// delete that usually follows at once makes the read needless (a replay brings many).
const REREAD_AFTER_MS = 200;

export const toReread = new Set();

let rereadTimer = null;

function rereadSoon(id, generation) {
  toReread.add(String(id));
  showRereads();
  if (rereadTimer !== null) return;
  rereadTimer = setTimeout(() => {
    rereadTimer = null;
    const ids = [...toReread];
    toReread.clear();
    for (const each of ids) refetch(each, 0, generation); // a reload cancels this timer
    showRereads();
  }, REREAD_AFTER_MS);
}

function forgetRereads() {
  clearTimeout(rereadTimer);
  rereadTimer = null;
  toReread.clear();
  showRereads();
}

// Desks being read, one read at a time each, with whether a delete came meanwhile: an answer
// the store gave before that delete must not bring the desk back (ids are never reused).
export const rereading = new Map();

async function refetch(id, version, generation) {
  id = String(id);
  const known = rereading.get(id);
  if (known && known.generation === generation) {
    known.again = true; // a newer event came while reading: read once more after
    return;
  }
  const reread = { generation, deleted: false, again: false };
  rereading.set(id, reread);
  showRereads();
  for (let attempt = 0; ; attempt++) {
    try {
      const { data } = await api("GET", `/api/desks/${encodeURIComponent(id)}`);
      if (generation === state.generation && !reread.deleted) upsert(data, data.version);
      if (!reread.again || reread.deleted) break;
      reread.again = false;
    } catch (error) {
      if (error.status === 404) {
        if (generation === state.generation) remove(id, version);
        break;
      }
      if (generation !== state.generation || reread.deleted) break;
      // Only what passes: the API away (no answer, 5xx) or busy (429). A 401 already asked
      // for a token, and a new token starts a new snapshot; other answers will not change.
      const passing = error.status === undefined || error.status === 429 || error.status >= 500;
      if (!passing) break;
      const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      await sleep(wait / 2 + Math.random() * wait); // jitter: dashboards do not ask in step
    }
  }
  if (rereading.get(id) === reread) rereading.delete(id);
  showRereads();
}

// How many desks wait to be read again (a test waits for none).
export function showRereads() {
  document.body.dataset.rereads = String(toReread.size + rereading.size);
}

function backoff() {
  const base = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
  state.attempt += 1;
  return base / 2 + Math.random() * base; // jitter: dashboards do not reconnect in step
}
