// Client of an Ecobee-like thermostat partner API: OAuth2 client credentials (`POST <base>/token`,
// form-encoded), the bearer token refreshed before it expires (and once more on a 401), the partner's
// rate limit honoured both ahead of time (a calls-per-second pace) and when it says so (429/503 with
// Retry-After), and one call: set a thermostat's ventilation mode
// (`POST <base>/1/thermostat` `{ selection: { selectionType: "thermostats", selectionMatch: id },
// thermostat: { settings: { vent: "on" | "auto" } } }`).
import { Agent, request } from "undici";
import { RetryAfter } from "../define.ts";
import { IntegrationError } from "../errors.ts";
import { retryAfterMs } from "../retry-after.ts";

/** Settings of the partner (from configuration). */
export interface ThermostatPartnerOptions {
  /** Base URL of the partner API, e.g. https://api.partner.example. */
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  /** Most calls per second to the partner (the token request included). Default 2. */
  callsPerSecond?: number;
  /** A token is renewed when less than this share of its lifetime is left. Default 0.2. */
  refreshBeforeFraction?: number;
  /** One request's deadline, ms. Default 10 000. */
  timeoutMs?: number;
}

export type VentMode = "on" | "auto";

interface Token {
  value: string;
  expiresAt: number;
  refreshAt: number;
}

export class ThermostatPartner {
  private token: Token | undefined;
  private tokenRequest: Promise<Token> | undefined;
  private nextSlotAt = 0;
  private readonly agent: Agent;
  private readonly intervalMs: number;
  /** Token requests made (for tests and logs). */
  tokensFetched = 0;

  constructor(private readonly o: ThermostatPartnerOptions) {
    this.intervalMs = 1000 / (o.callsPerSecond ?? 2);
    this.agent = new Agent({ connections: 4, keepAliveTimeout: 30_000 });
  }

  /** Sets a thermostat's ventilation; throws RetryAfter when the partner asks for a pause. */
  async setVentilation(thermostatId: string, mode: VentMode, signal?: AbortSignal): Promise<void> {
    const body = JSON.stringify({ selection: { selectionType: "thermostats", selectionMatch: thermostatId }, thermostat: { settings: { vent: mode } } });
    for (let tries = 0; ; tries++) {
      const token = await this.validToken(signal);
      const res = await this.call("/1/thermostat", { authorization: `Bearer ${token.value}`, "content-type": "application/json" }, body, signal);
      if (res.status === 401 && tries === 0) {
        // revoked or expired early: one fresh token, once
        if (this.token === token) this.token = undefined;
        continue;
      }
      this.check(res, "thermostat");
      return;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async validToken(signal?: AbortSignal): Promise<Token> {
    if (this.token !== undefined && Date.now() < this.token.refreshAt) return this.token;
    this.tokenRequest ??= this.fetchToken(signal).finally(() => (this.tokenRequest = undefined));
    return this.tokenRequest;
  }

  private async fetchToken(signal?: AbortSignal): Promise<Token> {
    const form = new URLSearchParams({ grant_type: "client_credentials", client_id: this.o.clientId, client_secret: this.o.clientSecret });
    const res = await this.call("/token", { "content-type": "application/x-www-form-urlencoded" }, form.toString(), signal);
    this.check(res, "token");
    const json = JSON.parse(res.body) as { access_token?: unknown; expires_in?: unknown };
    if (typeof json.access_token !== "string" || !(typeof json.expires_in === "number" && json.expires_in > 0)) {
      throw new IntegrationError("INTEGRATION_PARTNER_FAILED", "the thermostat partner's token answer has no access_token/expires_in");
    }
    this.tokensFetched++;
    const now = Date.now();
    const lifetimeMs = json.expires_in * 1000;
    this.token = { value: json.access_token, expiresAt: now + lifetimeMs, refreshAt: now + lifetimeMs * (1 - (this.o.refreshBeforeFraction ?? 0.2)) };
    return this.token;
  }

  /** Waits for the next call slot of the pace, then calls. */
  private async call(path: string, headers: Record<string, string>, body: string, signal?: AbortSignal): Promise<{ status: number; body: string; retryAfter: string | undefined }> {
    const now = Date.now();
    const slot = Math.max(now, this.nextSlotAt);
    this.nextSlotAt = slot + this.intervalMs;
    if (slot > now) await new Promise((r) => setTimeout(r, slot - now));
    signal?.throwIfAborted();
    const res = await request(new URL(path, this.o.baseUrl), {
      method: "POST", headers, body, dispatcher: this.agent, ...(signal === undefined ? {} : { signal }),
      headersTimeout: this.o.timeoutMs ?? 10_000, bodyTimeout: this.o.timeoutMs ?? 10_000,
    });
    const text = await res.body.text();
    const ra = res.headers["retry-after"];
    return { status: res.statusCode, body: text, retryAfter: Array.isArray(ra) ? ra[0] : ra };
  }

  private check(res: { status: number; retryAfter: string | undefined }, what: string): void {
    if (res.status >= 200 && res.status < 300) return;
    const failure = new IntegrationError("INTEGRATION_PARTNER_FAILED", `thermostat partner ${what} answered ${res.status}`, { details: { status: res.status } });
    const wait = retryAfterMs(res.retryAfter);
    if (wait !== undefined) {
      // the pace follows the partner's pause too, for every call of this process
      this.nextSlotAt = Math.max(this.nextSlotAt, Date.now() + wait);
      throw new RetryAfter(wait, failure.message, { cause: failure });
    }
    throw failure;
  }
}
