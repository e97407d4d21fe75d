// History: a desk's timeline, and the registry as of any earlier seq.

import { LABELS, summary } from "./feed.js";
import { describe } from "./form.js";
import { PAGE_SIZE, $, time } from "./page.js";
import { api, totalOf } from "./rest.js";
import { cell } from "./rows.js";

export const history = { kind: null, page: 1, seq: null };

export async function timeline(id, name) {
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

export async function asOf(event) {
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

export async function showAsOf() {
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
