// Connecting to NATS the way every airtwin process should: no async stack traces (they cost on every
// request), reconnect forever, a name the server shows in its connection list, the credentials of the
// URL (`nats://user:pass@host`, `nats://token@host`: nats.js itself ignores them) with the password
// never in a message; and a bounded drain.

import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { RuntimeError } from "./errors.ts";

/** Options of {@link connectNats}. */
export interface ConnectNatsOptions {
  /** Server URL(s); a string may hold several separated by commas. Default "nats://127.0.0.1:4222". */
  servers?: string | readonly string[];
  /** Connection name shown by the server (e.g. "airtwin node <nodeId>"). Default "airtwin". */
  name?: string;
  /** Milliseconds between reconnect attempts to the same server. Default 250. */
  reconnectTimeWaitMs?: number;
  /** Milliseconds allowed for the initial connection. Default 5000. */
  connectTimeoutMs?: number;
  /** Any further nats.js option (auth, TLS, …); the settings above take precedence. */
  extra?: Partial<NodeConnectionOptions>;
}

/** Credentials found in server URLs, and the URLs without them. */
export interface ServerCredentials {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/** A URL's userinfo: `//user:pass@` or `//token@`. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i;

/**
 * Takes the credentials out of server URLs: `nats://user:pass@host` gives user and password,
 * `nats://token@host` a token (percent-decoded). nats.js uses one set per connection, so servers
 * naming different credentials are refused; servers naming none use those of the others.
 * @throws RuntimeError AIRTWIN_ERR_CONFIG_INVALID when two servers name different credentials.
 */
export function credentialsOf(servers: readonly string[]): ServerCredentials {
  const out: ServerCredentials = { servers: [] };
  let seen: string | undefined;
  for (const server of servers) {
    const m = USERINFO.exec(server);
    if (m === null) {
      out.servers.push(server);
      continue;
    }
    const userinfo = m[2]!;
    if (seen !== undefined && seen !== userinfo) {
      throw new RuntimeError("CONFIG_INVALID", `NATS_URL: the servers name different credentials (${servers.map(maskUrl).join(", ")}); give every server the same`, {
        details: { problems: [{ variable: "NATS_URL", value: servers.map(maskUrl).join(","), reason: "servers name different credentials" }], variables: ["NATS_URL"] },
      });
    }
    seen = userinfo;
    out.servers.push(m[1]! + server.slice(m[0].length));
    const colon = userinfo.indexOf(":");
    if (colon >= 0) {
      out.user = decodeURIComponent(userinfo.slice(0, colon));
      out.pass = decodeURIComponent(userinfo.slice(colon + 1));
    } else if (userinfo !== "") {
      out.token = decodeURIComponent(userinfo);
    }
  }
  return out;
}

/** A server URL safe to print: `nats://user:***@host`, `nats://***@host` (a token). Several, comma-separated, each masked. */
export function maskUrl(url: string): string {
  return url
    .split(",")
    .map((one) => one.replace(USERINFO, (_m, scheme: string, userinfo: string) => (userinfo.includes(":") ? `${scheme}${userinfo.slice(0, userinfo.indexOf(":"))}:***@` : `${scheme}***@`)))
    .join(",");
}

/** Splits comma-separated server lists. */
export function natsServerList(servers: string | readonly string[] | undefined): string[] {
  const list = typeof servers === "string" || servers === undefined ? (servers ?? "nats://127.0.0.1:4222").split(",") : [...servers];
  return list.map((s) => s.trim()).filter(Boolean);
}

/**
 * Connects to NATS with `noAsyncTraces`, unlimited reconnects and the given name.
 * @throws RuntimeError AIRTWIN_ERR_NATS_UNAVAILABLE when the first connection fails (details.servers).
 */
export async function connectNats(opts: ConnectNatsOptions = {}): Promise<NatsConnection> {
  const listed = natsServerList(opts.servers);
  const { servers, ...credentials } = credentialsOf(listed);
  try {
    return await connect({
      // explicit options (extra) win over the URL's credentials
      ...credentials,
      ...opts.extra,
      servers,
      name: opts.name ?? "airtwin",
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? 250,
      timeout: opts.connectTimeoutMs ?? 5000,
    });
  } catch (err) {
    throw new RuntimeError(
      "NATS_UNAVAILABLE",
      `cannot connect to NATS at ${listed.map(maskUrl).join(", ")}: ${(err as Error).message ?? String(err)}`,
      { cause: err, details: { servers: listed.map(maskUrl) } },
    );
  }
}

/**
 * Drains `nc` (subscriptions finish what they hold, pending publishes are flushed) and closes it; if the
 * drain takes longer than `timeoutMs` (default 5000) — e.g. NATS is unreachable — closes it anyway.
 * Safe on a connection that is already closed or draining.
 */
export async function closeNats(nc: NatsConnection, timeoutMs = 5000): Promise<void> {
  if (nc.isClosed()) return;
  if (!nc.isDraining()) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    try {
      await Promise.race([nc.drain().catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
  if (!nc.isClosed()) await nc.close();
}
