// The REST API as the dashboard calls it: JSON in and out, the token, errors as HttpError.

import { state } from "./page.js";
import { askForToken } from "./token.js";

class HttpError extends Error {
  constructor(response, body) {
    super(`HTTP ${response.status}`);
    this.status = response.status;
    this.body = body;
    this.headers = response.headers;
  }
}

export async function api(method, path, body, headers = {}) {
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

export function totalOf(headers) {
  const pagination = headers.get("X-Pagination");
  return pagination ? JSON.parse(pagination).total : 0;
}
