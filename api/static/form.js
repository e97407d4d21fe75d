// The form: create and edit desks with If-Match, the API's errors under their fields.

import { $, state, showMessage } from "./page.js";
import { api } from "./rest.js";
import { table } from "./rows.js";

const FIELDS = ["name", "width", "height"];

export function edit(id) {
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

export function stopEditing() {
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

export async function submitDesk(event) {
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

export function describe(error) {
  return error.body?.message ?? error.message ?? "request failed";
}

export function versionOf(error) {
  const etag = error.headers?.get("ETag") ?? "";
  return etag.replace(/^W\//, "").replaceAll('"', "") || "?";
}

export function ifMatch(desk) {
  return desk && desk.version ? { "If-Match": `"${desk.version}"` } : {};
}

function clearErrors() {
  for (const target of document.querySelectorAll("#desk-form .error")) target.textContent = "";
  for (const field of FIELDS) $(field).removeAttribute("aria-invalid");
  showMessage("");
}
