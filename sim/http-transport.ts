// Readings over HTTP, as a device posts them: POST /v1/devices/:id/readings with its bearer token, JSON,
// on a keep-alive connection pool (undici).
import { Pool } from "undici";
import type { Reading } from "../actors/device-twin/domain/mod.ts";
import type { SendOutcome, Transport } from "./transport.ts";

export interface HttpTransportOptions {
  gatewayUrl: string;
  /** deviceId → token. */
  tokens: ReadonlyMap<string, string>;
  /** Connections to the gateway. Default 16. */
  connections?: number;
  /** Longest wait for an answer (ms). Default 30 000. */
  timeoutMs?: number;
}

const RETRY_STATUSES = new Set([429, 502, 503, 504]);

export class HttpTransport implements Transport {
  readonly name = "http";
  private readonly pool: Pool;

  constructor(private readonly o: HttpTransportOptions) {
    const timeoutMs = o.timeoutMs ?? 30_000;
    this.pool = new Pool(new URL(o.gatewayUrl).origin, { connections: o.connections ?? 16, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  async send(deviceId: string, readings: readonly Reading[]): Promise<SendOutcome> {
    const token = this.o.tokens.get(deviceId);
    if (token === undefined) return { kind: "rejected", status: 0, code: "NO_TOKEN", message: `no token for ${deviceId}` };
    try {
      const res = await this.pool.request({
        path: `/v1/devices/${encodeURIComponent(deviceId)}/readings`,
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ readings }),
      });
      const text = await res.body.text();
      if (res.statusCode === 202) return { kind: "accepted", accepted: (JSON.parse(text) as { accepted: number }).accepted };
      let body: { code?: string; message?: string } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        body = { message: text.slice(0, 200) };
      }
      const code = body.code ?? `HTTP_${res.statusCode}`;
      const message = body.message ?? "";
      if (RETRY_STATUSES.has(res.statusCode)) {
        const header = res.headers["retry-after"];
        const seconds = Number(Array.isArray(header) ? header[0] : header);
        return { kind: "retry", status: res.statusCode, code, message, ...(Number.isFinite(seconds) && seconds > 0 ? { retryAfterMs: seconds * 1000 } : {}) };
      }
      return { kind: "rejected", status: res.statusCode, code, message };
    } catch (err) {
      // refused, reset or timed out: the gateway may be restarting; the device tries again
      const e = err as { code?: string; message?: string };
      return { kind: "retry", status: 0, code: e.code ?? "NETWORK", message: e.message ?? String(err) };
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
