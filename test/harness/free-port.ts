// Free TCP ports for tests that must know a port before the server starts (cluster routes).
// Prefer letting the server pick (-1) and reading it back; use these only where that is impossible.

import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";

function listen(port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ port, host, exclusive: true }, () => resolve(srv));
  });
}

function close(srv: Server): Promise<void> {
  return new Promise((resolve) => srv.close(() => resolve()));
}

/**
 * The range to choose from: below the kernel's ephemeral range. A port the kernel hands out for port 0
 * lies in that range, where every outgoing connection of every parallel test takes its local port too:
 * a server started seconds after its port was chosen (a gateway after its cluster came up) found it
 * taken by a client socket (EADDRINUSE in CI). Below the range only listeners compete.
 */
function choosableRange(): [number, number] | undefined {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? [10_000, low - 1] : undefined;
  } catch {
    return undefined; // not Linux: the kernel's choice
  }
}

async function listenOutsideEphemeral(host: string, range: [number, number]): Promise<Server> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = range[0] + Math.floor(Math.random() * (range[1] - range[0] + 1));
    try {
      return await listen(port, host);
    } catch {
      // in use: another
    }
  }
  return listen(0, host);
}

/**
 * `count` distinct free ports on `host` (default 127.0.0.1), below the ephemeral range where there is
 * one. They are held open together while being chosen, so they differ from each other; another process
 * may still take one before you bind it.
 */
export async function getFreePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers: Server[] = [];
  const range = choosableRange();
  try {
    for (let i = 0; i < count; i++) servers.push(await (range === undefined ? listen(0, host) : listenOutsideEphemeral(host, range)));
    return servers.map((s) => {
      const addr = s.address();
      if (addr === null || typeof addr === "string") throw new Error("unexpected listen address");
      return addr.port;
    });
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** One free port on `host` (default 127.0.0.1). */
export async function getFreePort(host = "127.0.0.1"): Promise<number> {
  const [port] = await getFreePorts(1, host);
  return port!;
}

/** True when nothing listens on `port` (we can bind it ourselves). */
export async function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  try {
    await close(await listen(port, host));
    return true;
  } catch {
    return false;
  }
}
