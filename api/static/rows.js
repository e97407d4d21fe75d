// The table's rows: desks put, removed and drawn, the newest version only.

import { DeskTable } from "./table.js";
import { edit, describe, versionOf, ifMatch } from "./form.js";
import { timeline } from "./history.js";
import { toReread, rereading, showRereads } from "./live.js";
import { $, state, showMessage, time } from "./page.js";
import { api } from "./rest.js";

// The desks, in order; only the rows around the view are in the document.
export const table = new DeskTable($("desks").tBodies[0], $("desks-scroll"), row, flash);

export function replaceAll(desks) {
  table.replaceAll(desks);
  showCount();
}

// An event applies only if it is newer than what the table holds (version 0: unversioned).
export function upsert(desk, version) {
  const id = String(desk.id);
  const held = table.get(id);
  if (held && version && Number(held.version) >= version) return;
  table.put(desk);
  if (state.editing && state.editing.id === id) state.editing.current = desk.version;
  showCount();
}

export function remove(id, version) {
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

export function cell(text, className) {
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
