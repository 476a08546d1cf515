// A real local HTTP server playing a partner: records every request (headers, body, arrival time) and
// answers with whatever the test's responder says (status, headers, delay).
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";

export interface PartnerRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface PartnerAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer after this long (ms). */
  delayMs?: number;
  /** Then send the body a byte every this many ms, never ending it (a partner that holds the connection). */
  dripMs?: number;
}

export type Responder = (req: PartnerRequest, index: number) => PartnerAnswer | Promise<PartnerAnswer>;

export class Partner implements AsyncDisposable {
  readonly requests: PartnerRequest[] = [];
  respond: Responder = () => ({ status: 204 });
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(respond?: Responder): Promise<Partner> {
    const self: { partner?: Partner } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const p = self.partner as Partner;
        const r: PartnerRequest = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() };
        const index = p.requests.push(r) - 1;
        void Promise.resolve(p.respond(r, index)).then(async (a) => {
          if (a.delayMs) await new Promise((ok) => setTimeout(ok, a.delayMs));
          if (res.destroyed) return;
          res.writeHead(a.status ?? 204, { ...(a.body === undefined ? {} : { "content-type": "application/json" }), ...a.headers });
          if (a.dripMs !== undefined) {
            const drip = setInterval(() => res.write("."), a.dripMs);
            res.on("close", () => clearInterval(drip));
            return;
          }
          res.end(a.body);
        });
      });
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new Error("no address");
    const partner = (self.partner = new Partner(server, `http://127.0.0.1:${addr.port}`));
    if (respond) partner.respond = respond;
    return partner;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
