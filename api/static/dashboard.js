// The live dashboard: a REST snapshot kept current by the broadcaster's events
// (docs/events.md, "A dashboard, step by step"). No framework, no build step.

import { DeskTable } from "./table.js";

const PAGE_SIZE = 100; // the live first page: it paints at once
const FEED_SIZE = 50;
const RELOADED_FOR_MS = 3000; // how long the indicator says "reloaded" before "live"
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000]; // then 8 s, with jitter

const $ = (id) => document.getElementById(id);
const broadcasterUrl = document.querySelector('meta[name="desks-broadcaster"]').content;

const state = {
  seq: null, // the last seq applied (or the snapshot's X-Event-Seq)
  epoch: null, // the log the seq belongs to, from hello
  socket: null,
  generation: 0, // bumps on every reload: messages of an older socket are ignored
  attempt: 0,
  connected: false,
  reloadedUntil: 0,
  editing: null, // {id, version} while the form edits a desk
  token: sessionStorage.getItem("desks-token") || "", // this tab only, never a cookie
};

// The desks, in order; only the rows around the view are in the document.
const table = new DeskTable($("desks").tBodies[0], $("desks-scroll"), row, flash);

// -- REST -----------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(response, body) {
    super(`HTTP ${response.status}`);
    this.status = response.status;
    this.body = body;
    this.headers = response.headers;
  }
}

async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401) askForToken(data?.message ?? "a token is required");
  if (!response.ok) throw new HttpError(response, data);
  return { data, headers: response.headers };
}

function totalOf(headers) {
  const pagination = headers.get("X-Pagination");
  return pagination ? JSON.parse(pagination).total : 0;
}

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

// -- the live connection ---------------------------------------------------------------------

async function start(reason) {
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
const toReread = new Set();
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
const rereading = new Map();

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
function showRereads() {
  document.body.dataset.rereads = String(toReread.size + rereading.size);
}

function backoff() {
  const base = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
  state.attempt += 1;
  return base / 2 + Math.random() * base; // jitter: dashboards do not reconnect in step
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- the table ------------------------------------------------------------------------------

function replaceAll(desks) {
  table.replaceAll(desks);
  showCount();
}

// An event applies only if it is newer than what the table holds (version 0: unversioned).
function upsert(desk, version) {
  const id = String(desk.id);
  const held = table.get(id);
  if (held && version && Number(held.version) >= version) return;
  table.put(desk);
  if (state.editing && state.editing.id === id) state.editing.current = desk.version;
  showCount();
}

function remove(id, version) {
  id = String(id);
  if (toReread.delete(id)) showRereads();
  const reread = rereading.get(id);
  if (reread) reread.deleted = true;
  const held = table.get(id);
  if (!held || (version && Number(held.version) > version)) return;
  table.delete(id);
  if (state.editing && state.editing.id === id) {
    showMessage("This desk was just deleted by someone else.");
  }
  showCount();
}

function row(desk) {
  const tr = document.createElement("tr");
  tr.dataset.id = String(desk.id);
  tr.dataset.created = String(desk.created_at ?? "");
  const name = String(desk.name ?? "(unnamed)");
  tr.append(
    cell(name, "name"),
    cell(`${desk.width ?? "?"} × ${desk.height ?? "?"}`, "size"),
    cell(String(desk.version ?? ""), "version"),
    cell(time(desk.updated_at ?? desk.created_at), "wide"),
  );
  const actions = document.createElement("td");
  actions.className = "row-actions";
  actions.append(
    button("Edit", `Edit ${name}`, () => edit(String(desk.id))),
    button("History", `History of ${name}`, () => timeline(String(desk.id), name)),
    deleteButton(String(desk.id), name),
  );
  tr.append(actions);
  return tr;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  td.className = className;
  return td;
}

function button(text, label, onClick, className = "link") {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = className;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

// Two steps, no modal: the first press asks, the second (within 5 s) deletes.
function deleteButton(id, name) {
  const b = button("Delete", `Delete ${name}`, async () => {
    if (!b.dataset.confirm) {
      b.dataset.confirm = "true";
      b.textContent = "Confirm delete";
      b.setAttribute("aria-label", `Confirm: delete ${name}`);
      setTimeout(() => {
        delete b.dataset.confirm;
        b.textContent = "Delete";
        b.setAttribute("aria-label", `Delete ${name}`);
      }, 5000);
      return;
    }
    const held = table.get(id);
    try {
      await api("DELETE", `/api/desks/${encodeURIComponent(id)}`, undefined, ifMatch(held));
    } catch (error) {
      showMessage(
        error.status === 412
          ? `${name} changed meanwhile (now version ${versionOf(error)}): not deleted.`
          : error.status === 404
            ? `${name} was already deleted.`
            : `Could not delete ${name}: ${describe(error)}`,
      );
    }
  }, "link danger");
  return b;
}

function flash(element) {
  element.classList.remove("flash");
  void element.offsetWidth; // restart the animation
  element.classList.add("flash");
}

function showCount() {
  const count = table.size;
  $("count").textContent = `(${count})`;
  $("empty").hidden = count > 0;
}

// -- the form: create and edit -------------------------------------------------------------

const FIELDS = ["name", "width", "height"];

function edit(id) {
  const desk = table.get(id);
  if (!desk) return;
  state.editing = { id, version: desk.version, current: desk.version };
  $("name").value = desk.name ?? "";
  $("width").value = desk.width ?? "";
  $("height").value = desk.height ?? "";
  $("form-heading").textContent = `Edit ${desk.name ?? "desk"} (version ${desk.version ?? "none"})`;
  $("save").textContent = "Save changes";
  $("cancel").hidden = false;
  clearErrors();
  $("name").focus();
}

function stopEditing() {
  state.editing = null;
  $("desk-form").reset();
  $("form-heading").textContent = "New desk";
  $("save").textContent = "Create desk";
  $("cancel").hidden = true;
  clearErrors();
}

function formValues() {
  const number = (id) => {
    const raw = $(id).value.trim();
    return raw === "" ? undefined : Number(raw);
  };
  const values = { name: $("name").value, width: number("width"), height: number("height") };
  for (const key of Object.keys(values)) if (values[key] === undefined) delete values[key];
  return values;
}

async function submitDesk(event) {
  event.preventDefault();
  clearErrors();
  const values = formValues();
  const editing = state.editing;
  $("save").disabled = true;
  try {
    if (editing) {
      // A desk written around the API without an integer version has no ETag to match.
      const versioned = Number.isInteger(editing.version) && editing.version > 0;
      const headers = versioned ? { "If-Match": `"${editing.version}"` } : {};
      await api("PATCH", `/api/desks/${encodeURIComponent(editing.id)}`, values, headers);
      stopEditing();
      showMessage("Saved.");
    } else {
      const { data } = await api("POST", "/api/desks", values, {
        "Idempotency-Key": crypto.randomUUID(),
      });
      $("desk-form").reset();
      showMessage(`Created ${data.name}.`);
      $("name").focus();
    }
  } catch (error) {
    await explain(error, editing);
  } finally {
    $("save").disabled = false;
  }
}

async function explain(error, editing) {
  if (error.status === 422) {
    const fields = error.body?.errors?.json ?? {};
    let shown = false;
    for (const [field, messages] of Object.entries(fields)) {
      const target = document.querySelector(`#desk-form .error[data-field="${CSS.escape(field)}"]`);
      if (target) {
        target.textContent = [].concat(messages).join(" ");
        $(field).setAttribute("aria-invalid", "true");
        if (!shown) $(field).focus();
        shown = true;
      }
    }
    if (!shown) showMessage(describe(error));
  } else if (error.status === 412 && editing) {
    // Someone else saved first: show their version; saving again overwrites it knowingly.
    try {
      const { data } = await api("GET", `/api/desks/${encodeURIComponent(editing.id)}`);
      editing.version = data.version;
      showMessage(
        `Someone else changed this desk: it is now at version ${data.version} ` +
          `(${data.name}, ${data.width} × ${data.height}). Save again to replace their change.`,
      );
    } catch {
      showMessage("Someone else changed or deleted this desk.");
    }
  } else if (error.status === 404 && editing) {
    showMessage("This desk was deleted by someone else.");
  } else {
    showMessage(describe(error));
  }
}

function describe(error) {
  return error.body?.message ?? error.message ?? "request failed";
}

function versionOf(error) {
  const etag = error.headers?.get("ETag") ?? "";
  return etag.replace(/^W\//, "").replaceAll('"', "") || "?";
}

function ifMatch(desk) {
  return desk && desk.version ? { "If-Match": `"${desk.version}"` } : {};
}

function clearErrors() {
  for (const target of document.querySelectorAll("#desk-form .error")) target.textContent = "";
  for (const field of FIELDS) $(field).removeAttribute("aria-invalid");
  showMessage("");
}

function showMessage(text) {
  $("form-message").textContent = text;
}

// -- the live feed ---------------------------------------------------------------------------

const LABELS = {
  desk_created: "created",
  desk_updated: "updated",
  desk_deleted: "deleted",
  desk_snapshot: "snapshot",
  resync: "resync",
  snapshot: "snapshot",
};

function addToFeed(event) {
  const li = document.createElement("li");
  li.dataset.seq = String(event.seq);
  li.className = event.type;
  const when = document.createElement("time");
  when.dateTime = event.at;
  when.textContent = time(event.at);
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = LABELS[event.type] ?? event.type;
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = summary(event);
  li.append(when, kind, what);
  const feed = $("feed");
  feed.prepend(li);
  while (feed.children.length > FEED_SIZE) feed.lastElementChild.remove();
}

function summary(event) {
  if (event.type === "resync") return `history lost (${event.reason}): reloading`;
  if (event.type === "snapshot") return "the registry as it stood follows";
  const desk = event.desk ?? {};
  const text = `${desk.name ?? event.desk_id} (${desk.width ?? "?"}×${desk.height ?? "?"}cm)`;
  return event.type === "desk_updated" ? `${text}: ${changes(event)}` : text;
}

function changes(event) {
  const set = event.changes?.set ?? {};
  const previous = event.changes?.previous ?? {};
  const shown = Object.keys(set).filter((key) => !["version", "updated_at"].includes(key));
  const parts = shown.map((key) =>
    key in previous ? `${key} ${previous[key]} → ${set[key]}` : `${key} → ${set[key]}`,
  );
  for (const key of event.changes?.removed ?? []) parts.push(`${key} removed`);
  return parts.join(", ") || "changed";
}

// -- history: a desk's timeline, the registry as of a seq -------------------------------------

const history = { kind: null, page: 1, seq: null };

async function timeline(id, name) {
  showHistory(`History of ${name}`);
  try {
    const { data } = await api("GET", `/api/desks/${encodeURIComponent(id)}/events?limit=1000`);
    const list = document.createElement("ol");
    list.className = "timeline";
    for (const event of data) {
      const li = document.createElement("li");
      li.textContent = `seq ${event.seq} · ${time(event.at)} · ${LABELS[event.type] ?? event.type} · ${summary(event)}`;
      list.append(li);
    }
    $("history-body").replaceChildren(list);
  } catch (error) {
    $("history-body").replaceChildren(paragraph(describe(error)));
  }
}

async function asOf(event) {
  event.preventDefault();
  $("as-of-error").textContent = "";
  $("as-of").removeAttribute("aria-invalid");
  const raw = $("as-of").value.trim();
  if (!/^\d+$/.test(raw)) {
    $("as-of-error").textContent = "Enter a seq: a whole number from 0.";
    $("as-of").setAttribute("aria-invalid", "true");
    return;
  }
  history.seq = Number(raw);
  history.page = 1;
  await showAsOf();
}

async function showAsOf() {
  const path = `/api/desks?as_of=${history.seq}&page=${history.page}&page_size=${PAGE_SIZE}`;
  try {
    const { data, headers } = await api("GET", path);
    const total = totalOf(headers);
    showHistory(`The registry as of seq ${history.seq}: ${total} desks`);
    const table = document.createElement("table");
    const caption = table.createCaption();
    caption.className = "visually-hidden";
    caption.textContent = `Desks as they stood right after seq ${history.seq}`;
    const head = table.createTHead().insertRow();
    for (const title of ["Name", "Size (cm)", "Version"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = title;
      head.append(th);
    }
    const body = table.createTBody();
    for (const desk of data) {
      const tr = body.insertRow();
      tr.append(
        cell(String(desk.name ?? ""), "name"),
        cell(`${desk.width ?? "?"} × ${desk.height ?? "?"}`, "size"),
        cell(String(desk.version ?? ""), "version"),
      );
    }
    $("history-body").replaceChildren(table);
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    $("history-pager").hidden = pages <= 1;
    $("history-page").textContent = `page ${history.page} of ${pages}`;
    $("history-prev").disabled = history.page <= 1;
    $("history-next").disabled = history.page >= pages;
  } catch (error) {
    const messages = error.body?.errors?.query?.as_of;
    $("as-of-error").textContent = messages ? [].concat(messages).join(" ") : describe(error);
    $("as-of").setAttribute("aria-invalid", "true");
    $("as-of").focus();
  }
}

function showHistory(title) {
  $("history-view").hidden = false;
  $("history-title").textContent = title;
  $("history-pager").hidden = true;
  $("history-body").replaceChildren(paragraph("Loading…"));
}

function paragraph(text) {
  const p = document.createElement("p");
  p.textContent = text;
  return p;
}

// -- the indicator ---------------------------------------------------------------------------

function refreshStatus() {
  if (!state.connected) return;
  const reloaded = Date.now() < state.reloadedUntil;
  setStatus(reloaded ? "reloaded" : "live");
  if (reloaded) setTimeout(refreshStatus, state.reloadedUntil - Date.now() + 10);
}

function setStatus(name, detail = "") {
  $("status").dataset.state = name;
  $("status-text").textContent = name;
  $("status").title = detail;
}

function showSeq() {
  $("seq").textContent = state.seq === null ? "–" : String(state.seq);
}

function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString();
}

// -- the token -------------------------------------------------------------------------------

function askForToken(reason) {
  $("auth").open = true;
  $("token-message").textContent = reason;
}

function useToken(event) {
  event.preventDefault();
  state.token = $("token").value.trim();
  if (state.token) sessionStorage.setItem("desks-token", state.token);
  else sessionStorage.removeItem("desks-token");
  $("token").value = "";
  $("token-message").textContent = state.token ? "Token in use." : "No token.";
  $("auth").open = false;
  start(null);
}

// -- start -----------------------------------------------------------------------------------

$("desk-form").addEventListener("submit", submitDesk);
$("token-form").addEventListener("submit", useToken);
$("cancel").addEventListener("click", stopEditing);
$("as-of-form").addEventListener("submit", asOf);
$("history-close").addEventListener("click", () => {
  $("history-view").hidden = true;
});
$("history-prev").addEventListener("click", () => {
  history.page -= 1;
  showAsOf();
});
$("history-next").addEventListener("click", () => {
  history.page += 1;
  showAsOf();
});
start(null);
