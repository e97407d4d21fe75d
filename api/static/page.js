// What every part of the dashboard shares: its elements, its state, the indicator, messages.


export const PAGE_SIZE = 100; // the live first page: it paints at once

export const FEED_SIZE = 50;

export const RELOADED_FOR_MS = 3000; // how long the indicator says "reloaded" before "live"

export const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000]; // then 8 s, with jitter

export const $ = (id) => document.getElementById(id);

export const broadcasterUrl = document.querySelector('meta[name="desks-broadcaster"]').content;

export const state = {
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

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function refreshStatus() {
  if (!state.connected) return;
  const reloaded = Date.now() < state.reloadedUntil;
  setStatus(reloaded ? "reloaded" : "live");
  if (reloaded) setTimeout(refreshStatus, state.reloadedUntil - Date.now() + 10);
}

export function setStatus(name, detail = "") {
  $("status").dataset.state = name;
  $("status-text").textContent = name;
  $("status").title = detail;
}

export function showSeq() {
  $("seq").textContent = state.seq === null ? "–" : String(state.seq);
}

export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString();
}

export function showMessage(text) {
  $("form-message").textContent = text;
}
