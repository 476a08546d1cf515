// The HTTP API from the page: the key lives in this tab only (memory, and sessionStorage when asked to
// remember it across reloads) and travels in the Authorization header, never in a URL. Server-sent events
// are read with fetch streaming for the same reason (EventSource cannot set headers).

const STORAGE_KEY = "airtwin.apiKey";
let memoryKey = null;

/** The key of this tab, or null. */
export function currentKey() {
  if (memoryKey !== null) return memoryKey;
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** Keeps the key in memory; `remember`: also in sessionStorage (this tab, until it closes). */
export function useKey(key, remember) {
  memoryKey = key;
  try {
    if (remember) sessionStorage.setItem(STORAGE_KEY, key);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage disabled: memory only
  }
}

export function forgetKey() {
  memoryKey = null;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
}

/** An answer other than 2xx, with the API's error body (`code`, `message`, `details`). */
export class ApiError extends Error {
  constructor(status, body) {
    const message = body && typeof body === "object" && body.message ? body.message : `HTTP ${status}`;
    super(message);
    this.status = status;
    this.code = body && typeof body === "object" ? body.code : undefined;
    this.details = body && typeof body === "object" ? body.details : undefined;
  }

  /** The message with the fields the API named. */
  describe() {
    const fields = Array.isArray(this.details) ? this.details.map((d) => `${d.field}: ${d.message}`).join("; ") : "";
    return fields ? `${this.message} (${fields})` : this.message;
  }
}

function authHeaders(extra = {}) {
  const key = currentKey();
  return key === null ? { ...extra } : { authorization: `Bearer ${key}`, ...extra };
}

/** Calls the API; resolves with the JSON body (null for 204), rejects with ApiError. */
export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const res = await fetch(path, {
    method,
    headers: authHeaders(body === undefined ? headers : { "content-type": "application/json", ...headers }),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text === "" ? null : JSON.parse(text);
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** A command to a device's twin, with an idempotency key so a retried click is applied once. */
export function command(deviceId, body) {
  return api(`/v1/devices/${encodeURIComponent(deviceId)}/commands`, {
    method: "POST",
    body,
    headers: { "idempotency-key": crypto.randomUUID() },
  });
}

/** Parses SSE blocks out of `buffer`; returns the rest. */
function parseEvents(buffer, emit) {
  let at;
  while ((at = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, at);
    buffer = buffer.slice(at + 2);
    const e = { event: "message", data: "" };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") e.event = value;
      else if (field === "data") e.data += (e.data ? "\n" : "") + value;
      else if (field === "id") e.id = value;
      else if (field === "retry" && /^\d+$/.test(value)) e.retry = Number(value);
    }
    emit(e);
  }
  return buffer;
}

/**
 * Follows an SSE route with the key in the header; reconnects after the server's `retry` (2 s) when the
 * stream ends or fails, except on 401/403. `onEvent({ event, data, id })` gets parsed JSON data;
 * `onState("open" | "reconnecting" | "denied")`. Returns `stop()`.
 */
export function follow(path, onEvent, onState = () => undefined) {
  const abort = new AbortController();
  let retryMs = 2000;
  let stopped = false;
  const run = async () => {
    while (!stopped) {
      try {
        const res = await fetch(path, { headers: authHeaders({ accept: "text/event-stream" }), signal: abort.signal, cache: "no-store" });
        if (res.status === 401 || res.status === 403) {
          onState("denied");
          return;
        }
        if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = parseEvents(buffer + value.replace(/\r\n?/g, "\n"), (e) => {
            if (e.retry !== undefined) retryMs = e.retry;
            if (e.data === "") return;
            let data;
            try {
              data = JSON.parse(e.data);
            } catch {
              return;
            }
            if (e.event === "open") onState("open");
            onEvent({ event: e.event, data, id: e.id });
          });
        }
      } catch {
        if (stopped) return;
      }
      if (stopped) return;
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void run();
  return () => {
    stopped = true;
    abort.abort();
  };
}
