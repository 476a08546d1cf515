// Free TCP ports for tests that must know a port before the server starts (cluster routes).
// Prefer letting the server pick (-1) and reading it back; use these only where that is impossible.

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
 * `count` distinct free ports on `host` (default 127.0.0.1). They are held open together while being
 * chosen, so they differ from each other; another process may still take one before you bind it.
 */
export async function getFreePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listen(0, host));
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
