// The feed of the latest events.

import { FEED_SIZE, $, time } from "./page.js";

export const LABELS = {
  desk_created: "created",
  desk_updated: "updated",
  desk_deleted: "deleted",
  desk_snapshot: "snapshot",
  resync: "resync",
  snapshot: "snapshot",
};

export function addToFeed(event) {
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

export function summary(event) {
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
