// The HTTP/1.1 server under the fastify app, and what it does with clients that never finish, send
// bytes that are not HTTP, or open too many connections. Each such client gets an answer in the error
// shape with its AIRTWIN_ERR_HTTP_* code where HTTP still allows one, then its connection is closed:
// - headers not complete within `headersTimeoutMs`, or the whole request (body included) not within
//   `requestTimeoutMs` → 408 (Node checks every `connectionsCheckingInterval`);
// - no byte for `idleTimeoutMs` while a request is being received → 408; between requests (keep-alive)
//   the connection is just closed; a request being answered (a slow twin, a live stream) is never cut;
// - unparseable bytes → 400, headers over 16 KiB → 431, CONNECT → 405, an Expect other than 100-continue → 417;
// - more than `maxConnectionsPerClient` open connections from one remote address → requests on the
//   extra ones get 429 and those connections are closed.
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyServerFactoryHandler } from "fastify";
import { errorBody, GatewayErrors, type GatewayErrorName } from "../errors.ts";

/** Limits of the HTTP server against slow, stuck or greedy clients. Every field documented with its env variable in docs/gateway.md. */
export interface HttpServerLimits {
  /** The request line and headers must arrive within this (ms); else 408. */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (ms); else 408. At least headersTimeoutMs. */
  requestTimeoutMs: number;
  /** Longest silence of a connection, between requests or within one being received (ms). */
  idleTimeoutMs: number;
  /** Open connections one remote address may hold; 0 means unbounded. */
  maxConnectionsPerClient: number;
}

export const DEFAULT_HTTP_SERVER_LIMITS: Readonly<HttpServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  // longer than the 60 s idle timeout of common load balancers, which must close first
  idleTimeoutMs: 72_000,
  maxConnectionsPerClient: 256,
});

/** Where refusals are counted and said (a log line at info: the client's fault is not the server's error). */
export interface ClientErrorSink {
  refused(code: string, detail: Record<string, unknown>): void;
}

/** Node's private link from a socket to the response being written on it (what Node's own clientError answer checks). */
function currentResponse(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/** A whole HTTP/1.1 error response in the error shape, written straight to a socket, closing it. */
function rawErrorResponse(which: GatewayErrorName, message: string, details?: Record<string, unknown>, headers: Record<string, string> = {}): string {
  const e = GatewayErrors[which];
  const body = JSON.stringify(errorBody(e.code, message, details, e.status));
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  return `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`;
}

/** Answers (if nothing was written for the current request yet) and closes the connection. */
function refuseOnSocket(socket: Socket, which: GatewayErrorName, message: string, details?: Record<string, unknown>, headers?: Record<string, string>): void {
  const res = currentResponse(socket);
  if (socket.writable && (res === undefined || !res.headersSent)) {
    socket.end(rawErrorResponse(which, message, details, headers));
  }
  // a peer that never reads must not keep the socket: give the answer a moment to leave, then drop it
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** The HTTP server's handling of client errors (fastify's `clientErrorHandler`): coded answers instead of Node's bare ones. */
export function clientErrorHandler(limits: HttpServerLimits, sink: ClientErrorSink) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    // the client went away (a reset, or a socket already closed): nobody to answer, nothing to log
    if (err.code === "ECONNRESET" || err.code === "EPIPE" || socket.destroyed) return;
    if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      const inBody = currentResponse(socket) !== undefined;
      const message = inBody
        ? `the request body did not arrive within ${limits.requestTimeoutMs} ms`
        : `the request headers did not arrive within ${limits.headersTimeoutMs} ms`;
      sink.refused(GatewayErrors.HTTP_REQUEST_TIMEOUT.code, { remote: socket.remoteAddress, stage: inBody ? "body" : "headers" });
      refuseOnSocket(socket, "HTTP_REQUEST_TIMEOUT", message);
    } else if (err.code === "HPE_HEADER_OVERFLOW") {
      sink.refused(GatewayErrors.HTTP_HEADERS_TOO_LARGE.code, { remote: socket.remoteAddress });
      refuseOnSocket(socket, "HTTP_HEADERS_TOO_LARGE", "the request line and headers exceed 16 KiB");
    } else {
      const parser = typeof err.code === "string" ? err.code : "unknown";
      sink.refused(GatewayErrors.HTTP_MALFORMED.code, { remote: socket.remoteAddress, parser });
      refuseOnSocket(socket, "HTTP_MALFORMED", `the request is not valid HTTP/1.1 (${parser})`, { parser });
    }
  };
}

/** Open connections per remote address; marks those beyond the bound. */
class ConnectionsPerClient {
  private readonly open = new Map<string, number>();
  private readonly overLimit = new WeakSet<Socket>();

  constructor(private readonly max: number) {}

  accept(socket: Socket): void {
    if (this.max <= 0) return;
    const client = socket.remoteAddress ?? "";
    const n = (this.open.get(client) ?? 0) + 1;
    this.open.set(client, n);
    if (n > this.max) this.overLimit.add(socket);
    socket.once("close", () => {
      const left = (this.open.get(client) ?? 1) - 1;
      if (left <= 0) this.open.delete(client);
      else this.open.set(client, left);
    });
  }

  isOverLimit(socket: Socket): boolean {
    return this.overLimit.has(socket);
  }
}

/** Longest wait for a client to stop sending after the answer that closes its connection (ms). */
const LINGER_MS = 2000;

/**
 * Lingering close (as Apache and nginx do). Node closes a connection right after an answer that ends
 * it — a 413, or any answer to `Connection: close` — even while the client is still sending its body;
 * the bytes arriving after the close make the kernel reset the connection, and the client's kernel
 * then drops the answer it had not read yet: the client sees a reset instead of our 413. So: send FIN,
 * keep reading (Node's parser discards the rest of the body), and close when the client does or after
 * `lingerMs`.
 */
function lingerOnClose(socket: Socket, lingerMs: number): void {
  const s = socket as Socket & { destroySoon?: () => void };
  if (typeof s.destroySoon !== "function") return;
  s.destroySoon = function lingeringClose(this: Socket) {
    if (this.writable) this.end();
    const timer = setTimeout(() => this.destroy(), lingerMs);
    timer.unref();
    this.once("close", () => clearTimeout(timer));
    this.once("end", () => this.destroy());
  };
}

/**
 * fastify's `serverFactory`: a Node HTTP server with the limits above. (fastify's own defaults leave
 * the request and idle timeouts off, so a client that never finishes its body held a request open
 * for minutes.)
 */
export function httpServerFactory(limits: HttpServerLimits, sink: ClientErrorSink) {
  return (handler: FastifyServerFactoryHandler): Server => {
    const perClient = new ConnectionsPerClient(limits.maxConnectionsPerClient);
    const tooMany = (req: IncomingMessage, res: ServerResponse): void => {
      sink.refused(GatewayErrors.HTTP_TOO_MANY_CONNECTIONS.code, { remote: req.socket.remoteAddress, max: limits.maxConnectionsPerClient });
      const e = GatewayErrors.HTTP_TOO_MANY_CONNECTIONS;
      const body = JSON.stringify(errorBody(e.code, `more than ${limits.maxConnectionsPerClient} open connections from this client; close some and retry`));
      res.writeHead(e.status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), "retry-after": "1", connection: "close" });
      res.end(body);
    };
    const server = createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.idleTimeoutMs,
        // how often Node looks for requests past their deadline: a tenth of the shorter one, 50 ms to 1 s
        connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 10))),
      },
      (req, res) => {
        if (perClient.isOverLimit(req.socket)) tooMany(req, res);
        else handler(req, res);
      },
    );
    server.on("connection", (socket: Socket) => {
      perClient.accept(socket);
      lingerOnClose(socket, Math.min(LINGER_MS, limits.idleTimeoutMs));
    });
    server.setTimeout(limits.idleTimeoutMs);
    // with a listener Node no longer destroys idle sockets itself: decide here
    server.on("timeout", (socket: Socket) => {
      const res = currentResponse(socket);
      // a request received in full and being answered (a slow twin, a live stream) is the server's business
      if (res !== undefined && res.req.complete) return;
      if (res !== undefined && !res.headersSent) {
        sink.refused(GatewayErrors.HTTP_REQUEST_TIMEOUT.code, { remote: socket.remoteAddress, stage: "idle" });
        refuseOnSocket(socket, "HTTP_REQUEST_TIMEOUT", `the connection was silent for ${limits.idleTimeoutMs} ms before the request was complete`);
        return;
      }
      socket.destroy();
    });
    // Node would answer 417 with an empty body
    server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
      sink.refused(GatewayErrors.HTTP_EXPECTATION_FAILED.code, { remote: req.socket.remoteAddress, expect: String(req.headers.expect).slice(0, 64) });
      const e = GatewayErrors.HTTP_EXPECTATION_FAILED;
      const body = JSON.stringify(errorBody(e.code, e.message));
      res.writeHead(e.status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), connection: "close" });
      res.end(body);
    });
    // Node would destroy a CONNECT socket without a word
    server.on("connect", (req: IncomingMessage, socket: Socket) => {
      sink.refused(GatewayErrors.HTTP_METHOD_NOT_ALLOWED.code, { remote: socket.remoteAddress, method: req.method });
      socket.on("error", () => undefined);
      refuseOnSocket(socket, "HTTP_METHOD_NOT_ALLOWED", "CONNECT is not supported: this is no proxy", undefined, { allow: "GET, POST, PATCH, DELETE" });
    });
    return server;
  };
}
