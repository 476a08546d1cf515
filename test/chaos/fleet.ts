// The simulated fleet of a chaos run: sim/'s realistic devices driven by sim/'s runner (one request in
// flight per device, readings in order, a 503 or a lost connection sent again — the same readings, so
// the same (deviceId, t) identities, docs/design.md §3.2), over HTTP through both gateways. Every 202 is
// recorded here, in the device's order: that is what the end checks hold the system to.
import type { Reading } from "../../actors/device-twin/domain/mod.ts";
import { SimClock } from "../../sim/clock.ts";
import { HttpTransport } from "../../sim/http-transport.ts";
import { Fleet } from "../../sim/model/fleet.ts";
import { SimRunner } from "../../sim/runner.ts";
import { setupHttpFleet } from "../../sim/setup.ts";
import type { SendOutcome, Transport } from "../../sim/transport.ts";
import { FleetReference, type DeviceMessage } from "../integration/runtime/fleet.ts";
import type { ChaosParams } from "./params.ts";
import { ADMIN_TOKEN } from "./system.ts";

export const FLEET_USER = "chaos-owner";
const INTERVAL_MS = 300_000;

/** The longest stretch one device was refused, from its first refusal to its next 202. */
export interface RefusalWindow {
  deviceId: string;
  ms: number;
  codes: string[];
}

/**
 * The runner's transport: each device posts to one gateway and switches to the other after a refusal
 * (a killed gateway refuses connections until it is back); records accepted messages and refusals.
 */
class RecordingTransport implements Transport {
  readonly name = "http";
  readonly #gateways: HttpTransport[];
  readonly #gatewayOf = new Map<string, number>();
  readonly #refusedSince = new Map<string, { at: number; at503?: number; codes: Set<string> }>();
  /** The readings of each device's last attempt that got no 202 (cleared by a 202). */
  readonly unanswered = new Map<string, Reading[]>();

  constructor(
    private readonly fleet: ChaosFleet,
    gatewayUrls: readonly string[],
    tokens: ReadonlyMap<string, string>,
  ) {
    this.#gateways = gatewayUrls.map((gatewayUrl) => new HttpTransport({ gatewayUrl, tokens, connections: 32, timeoutMs: 30_000 }));
  }

  async send(deviceId: string, readings: readonly Reading[]): Promise<SendOutcome> {
    const f = this.fleet;
    const g = this.#gatewayOf.get(deviceId) ?? f.indexOf(deviceId) % this.#gateways.length;
    f.requests++;
    const outcome = await this.#gateways[g]!.send(deviceId, readings);
    const now = Date.now();
    if (outcome.kind === "accepted") {
      if (outcome.accepted !== readings.length) f.problems.push(`${deviceId}: 202 said accepted ${outcome.accepted} of ${readings.length}`);
      f.record({ deviceId, readings: [...readings].sort((a, b) => a.t - b.t) });
      this.unanswered.delete(deviceId);
      const since = this.#refusedSince.get(deviceId);
      if (since !== undefined) {
        this.#refusedSince.delete(deviceId);
        const window = { deviceId, ms: now - since.at, codes: [...since.codes] };
        if (window.ms > f.longestRefusal.ms) f.longestRefusal = window;
        if (since.at503 !== undefined && now - since.at503 > f.longest503.ms) f.longest503 = { ...window, ms: now - since.at503 };
      }
      return outcome;
    }
    if (outcome.kind === "retry") {
      f.retriedByCode[outcome.code] = (f.retriedByCode[outcome.code] ?? 0) + 1;
      f.resentReadings.set(deviceId, (f.resentReadings.get(deviceId) ?? 0) + readings.length);
      this.unanswered.set(deviceId, [...readings]);
      const since = this.#refusedSince.get(deviceId) ?? { at: now, codes: new Set<string>() };
      since.codes.add(outcome.status === 0 ? outcome.code : `${outcome.status} ${outcome.code}`);
      if (outcome.status === 503) since.at503 ??= now;
      this.#refusedSince.set(deviceId, since);
      this.#gatewayOf.set(deviceId, (g + 1) % this.#gateways.length);
      return outcome;
    }
    f.problems.push(`${deviceId}: refused for good: ${outcome.status} ${outcome.code} ${outcome.message}`);
    return outcome;
  }

  async close(): Promise<void> {
    await Promise.all(this.#gateways.map((g) => g.close()));
  }
}

export class ChaosFleet {
  readonly ref = new FleetReference();
  /** Accepted messages per device, in the order they were accepted. */
  readonly accepted = new Map<string, DeviceMessage[]>();
  /** Readings sent again per device after an attempt without a 202 (that attempt may have been stored). */
  readonly resentReadings = new Map<string, number>();
  readonly retriedByCode: Record<string, number> = {};
  readonly problems: string[] = [];
  requests = 0;
  acceptedReadings = 0;
  longestRefusal: RefusalWindow = { deviceId: "-", ms: 0, codes: [] };
  longest503: RefusalWindow = { deviceId: "-", ms: 0, codes: [] };
  readonly ids: string[];
  /** Event time of the fleet's first samples. */
  readonly startMs: number;
  readonly #index: Map<string, number>;
  readonly #source: Fleet;
  #tokens = new Map<string, string>();
  #transport: RecordingTransport | undefined;
  #runner: SimRunner | undefined;

  constructor(readonly params: ChaosParams) {
    // ten days back, so a long run's event time stays in the past (catching up with the clock at worst)
    const startMs = Math.floor((Date.now() - 10 * 86_400_000) / INTERVAL_MS) * INTERVAL_MS;
    this.#source = new Fleet({ seed: params.seed, devices: params.devices, idPrefix: "chaos", startMs, intervalMs: INTERVAL_MS });
    this.ids = [...this.#source.deviceIds];
    this.#index = new Map(this.ids.map((id, i) => [id, i]));
    this.startMs = startMs;
  }

  indexOf(deviceId: string): number {
    return this.#index.get(deviceId) ?? 0;
  }

  /** Registers the owner and the devices over the admin API; returns the owner's API key. */
  async register(gatewayUrl: string): Promise<string> {
    const file = { version: 1 as const, userId: FLEET_USER, tokens: {} as Record<string, string> } as Parameters<typeof setupHttpFleet>[0]["file"];
    this.#tokens = await setupHttpFleet({ gatewayUrl, adminToken: ADMIN_TOKEN, userId: FLEET_USER, deviceIds: this.ids, file, replaceUnknown: false, concurrency: 16 });
    return file.apiKey!;
  }

  record(msg: DeviceMessage): void {
    this.ref.accept(msg);
    this.acceptedReadings += msg.readings.length;
    const list = this.accepted.get(msg.deviceId) ?? [];
    list.push(msg);
    this.accepted.set(msg.deviceId, list);
  }

  /** Runs the fleet until `signal` aborts; resolves with the runner's stats once the requests in flight answered. */
  run(gatewayUrls: readonly string[], signal: AbortSignal): Promise<SimRunner["stats"]> {
    this.#transport = new RecordingTransport(this, gatewayUrls, this.#tokens);
    const clock = new SimClock({ startEventMs: this.startMs, speed: this.params.speed, catchUp: true });
    this.#runner = new SimRunner({
      source: this.#source,
      transport: this.#transport,
      clock,
      minRequestGapMs: this.params.minRequestGapMs,
      maxInFlight: this.params.maxInFlight,
      signal,
    });
    return this.#runner.run();
  }

  /**
   * After the load stopped: a device whose last attempt got no 202 sends it again until it does, so
   * nothing that may have been stored is left out of what the checks expect.
   */
  async settleUnanswered(timeoutMs = 180_000): Promise<number> {
    const t = this.#transport!;
    const deadline = Date.now() + timeoutMs;
    const todo = [...t.unanswered.entries()];
    await Promise.all(
      todo.map(async ([deviceId, readings]) => {
        for (;;) {
          const o = await t.send(deviceId, readings);
          if (o.kind === "accepted") return;
          if (o.kind === "rejected" || Date.now() > deadline) throw new Error(`${deviceId}: its last readings still not accepted: ${JSON.stringify(o)}`);
          await new Promise((r) => setTimeout(r, 500)); // a device's pause before it tries again
        }
      }),
    );
    await t.close();
    return todo.length;
  }
}
