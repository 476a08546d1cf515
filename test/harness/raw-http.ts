// HTTP over a raw TCP socket, for what fetch cannot do: requests that never finish, bytes that are not
// HTTP, bodies sent slowly, half-closed connections. Collects what the server answers until it closes
// the connection or a deadline passes.
import { connect, type Socket } from "node:net";

export interface RawAnswer {
  /** Status of the first response, if any arrived. */
  status: number | undefined;
  headers: Record<string, string>;
  /** Body of the first response (by Content-Length, else everything after the headers). */
  body: string;
  /** Everything the server sent. */
  raw: string;
  /** True when the server closed the connection before the deadline. */
  closed: boolean;
  /** From the first byte sent to the close (or the deadline). */
  elapsedMs: number;
}

export interface RawOptions {
  /** Give up (and destroy the socket) after this long. Default 10 000 ms. */
  deadlineMs?: number;
  /** Pause between the chunks (ms). Default 0. */
  gapMs?: number;
  /** Half-close (FIN) after the last chunk. Default false. */
  end?: boolean;
  /** Stop (and destroy the socket) as soon as what arrived satisfies this, e.g. a stream's headers. */
  stopWhen?: (received: string) => boolean;
}

/** Parses the first HTTP response in `raw`. */
export function parseResponse(raw: string): Pick<RawAnswer, "status" | "headers" | "body"> {
  const head = raw.indexOf("\r\n\r\n");
  if (head < 0) return { status: undefined, headers: {}, body: "" };
  const [statusLine, ...lines] = raw.slice(0, head).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1]);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const rest = raw.slice(head + 4);
  const length = headers["content-length"] === undefined ? undefined : Number(headers["content-length"]);
  return { status: Number.isFinite(status) ? status : undefined, headers, body: length === undefined ? rest : Buffer.from(rest).subarray(0, length).toString() };
}

/** Opens a connection to `url`'s host and port (resolves once connected). */
export function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: hostname, port: Number(port) }, () => resolve(s));
    s.once("error", reject);
  });
}

/** Sends `chunks` on a new connection and collects the answer. */
export async function rawExchange(url: string, chunks: (string | Buffer)[], o: RawOptions = {}): Promise<RawAnswer> {
  const socket = await openSocket(url);
  return exchangeOn(socket, chunks, o);
}

/** Sends `chunks` on an open socket and collects the answer until the server closes it or the deadline. */
export function exchangeOn(socket: Socket, chunks: (string | Buffer)[], o: RawOptions = {}): Promise<RawAnswer> {
  const started = performance.now();
  const received: Buffer[] = [];
  let closed = false;
  socket.on("error", () => undefined);
  const done = new Promise<void>((resolve) => {
    socket.on("data", (b: Buffer) => {
      received.push(b);
      if (o.stopWhen?.(Buffer.concat(received).toString()) === true) resolve();
    });
    socket.once("close", () => {
      closed = true;
      resolve();
    });
    setTimeout(resolve, o.deadlineMs ?? 10_000).unref();
  });
  void (async () => {
    for (const [i, c] of chunks.entries()) {
      if (socket.destroyed) return;
      if (i > 0 && (o.gapMs ?? 0) > 0) await new Promise((r) => setTimeout(r, o.gapMs));
      if (!socket.destroyed) socket.write(c);
    }
    if (o.end === true && !socket.destroyed) socket.end();
  })();
  return done.then(() => {
    const elapsedMs = performance.now() - started;
    if (!closed) socket.destroy();
    const raw = Buffer.concat(received).toString();
    return { ...parseResponse(raw), raw, closed, elapsedMs };
  });
}
