// Connecting to NATS the way every airtwin process should: no async stack traces (they cost on every
// request), reconnect forever, a name the server shows in its connection list; and a bounded drain.

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
  const servers = natsServerList(opts.servers);
  try {
    return await connect({
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
      `cannot connect to NATS at ${servers.join(", ")}: ${(err as Error).message ?? String(err)}`,
      { cause: err, details: { servers } },
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
