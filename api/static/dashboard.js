// The live dashboard: a REST snapshot kept current by the broadcaster's events
// (docs/events.md, "A dashboard, step by step"). No framework, no build step: ES modules
// served as they are. This one wires the page; live.js keeps the table (rows.js, table.js)
// current, form.js edits desks, feed.js and history.js show events, token.js asks for a token.

import { stopEditing, submitDesk } from "./form.js";
import { history, asOf, showAsOf } from "./history.js";
import { start } from "./live.js";
import { $ } from "./page.js";
import { useToken } from "./token.js";

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
