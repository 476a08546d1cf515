// A TCP proxy in front of Postgres that a test controls: down() cuts every connection and refuses new
// ones (Postgres "unavailable" as a client sees it), up() lets them through again. Used by the archive's
// fault test and the chaos run.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface PgProxy {
  readonly port: number;
  /** The URL of `target` with its host and port replaced by the proxy's. */
  readonly url: string;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function pgProxy(target: URL): Promise<PgProxy> {
  let refusing = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const proxied = new URL(target.toString());
  proxied.host = `127.0.0.1:${port}`;
  return {
    port,
    url: proxied.toString(),
    down() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    up() {
      refusing = false;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
