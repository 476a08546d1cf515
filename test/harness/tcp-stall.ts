// A TCP proxy a test can stall: stall() stops moving bytes both ways on every connection (as a server busy
// with one connection's earlier requests answers nothing more on it), resume() lets them flow again. The
// connections stay open throughout: nothing is lost, only late.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface StallProxy {
  /** The proxy's address, `127.0.0.1:<port>`. */
  readonly hostPort: string;
  stall(): void;
  resume(): void;
  close(): Promise<void>;
}

/** Bytes move both ways (piping resumes a paused socket). */
function flow([client, upstream]: [Socket, Socket]): void {
  client.pipe(upstream);
  upstream.pipe(client);
}

export async function stallProxy(targetHost: string, targetPort: number): Promise<StallProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let stalled = false;
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    for (const s of pair) {
      s.on("error", () => undefined);
      s.on("close", () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      });
    }
    if (!stalled) flow(pair);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    hostPort: `127.0.0.1:${port}`,
    stall() {
      stalled = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    resume() {
      stalled = false;
      for (const pair of pairs) flow(pair);
    },
    async close() {
      for (const pair of pairs) for (const s of pair) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
