// The token: asked for when the API or the broadcaster wants one, kept in this tab only.

import { start } from "./live.js";
import { $, state } from "./page.js";

export function askForToken(reason) {
  $("auth").open = true;
  $("token-message").textContent = reason;
}

export function useToken(event) {
  event.preventDefault();
  state.token = $("token").value.trim();
  if (state.token) sessionStorage.setItem("desks-token", state.token);
  else sessionStorage.removeItem("desks-token");
  $("token").value = "";
  $("token-message").textContent = state.token ? "Token in use." : "No token.";
  $("auth").open = false;
  start(null);
}
