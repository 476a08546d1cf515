// The built-in `thermostat` integration: the partner's ventilation goes on when a pm, voc or co2 event
// starts (or a `forecast` alert says one is coming) and back to automatic when the last such event on
// that thermostat ends. `target` is the partner's thermostat id. Exactly one partner call per
// transition, however often an alert arrives (repeats after a crash, two devices or subscriptions on
// one thermostat): the decisions live in a KV bucket (vent-state.ts) and only the writer that changes
// the mode calls. A forecast that no event follows stops holding after `forecastHoldMs`; a sweep every
// `sweepMs` releases such holds and makes calls left owed by a crashed process.
import { Kvm, type KV } from "@nats-io/kv";
import type { Channel } from "../../../actors/device-twin/domain/mod.ts";
import { defineIntegration, type BackoffOptions, type IntegrationDefinition, type StartContext } from "../define.ts";
import { ThermostatPartner, type ThermostatPartnerOptions, type VentMode } from "./partner-client.ts";
import { expire, hold, release, VentState, type Change } from "./vent-state.ts";

/** Channels whose events ventilate. */
export const VENTILATED_CHANNELS: readonly Channel[] = ["pm", "voc", "co2"];

/** Options of {@link thermostatIntegration}. */
export interface ThermostatOptions {
  partner: ThermostatPartnerOptions;
  /** How long a forecast holds the ventilation on after its expected crossing if no event starts, ms. Default 1 h. */
  forecastHoldMs?: number;
  /** Interval of the sweep (expired forecasts, calls left owed), ms. Default 30 000. */
  sweepMs?: number;
  /** JetStream replicas of the state bucket when created. Default 1. */
  replicas?: number;
  concurrency?: number;
  maxAttempts?: number;
  backoff?: BackoffOptions;
}

/** KV bucket of the thermostat state. */
export const thermostatBucket = (prefix: string): string => `${prefix}-thermostat`;

export type ThermostatIntegration = IntegrationDefinition & { readonly partner: ThermostatPartner; state(): VentState };

export function thermostatIntegration(o: ThermostatOptions): ThermostatIntegration {
  const partner = new ThermostatPartner(o.partner);
  const forecastHoldMs = o.forecastHoldMs ?? 3_600_000;
  let state: VentState | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  let log: StartContext["log"] = () => undefined;
  // one decision at a time per thermostat in this process; the KV's compare-and-set covers other processes
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const run = (queues.get(id) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    queues.set(id, tail);
    void tail.then(() => queues.get(id) === tail && queues.delete(id));
    return run;
  };

  async function transition(thermostatId: string, change: Change, signal?: AbortSignal): Promise<void> {
    await serial(thermostatId, async () => {
      const s = state as VentState;
      const owed: VentMode | undefined = await s.apply(thermostatId, change);
      if (owed === undefined) return;
      await partner.setVentilation(thermostatId, owed, signal);
      await s.settled(thermostatId, owed);
      log("info", "ventilation set", { thermostatId, mode: owed });
    });
  }

  async function sweep(): Promise<void> {
    const s = state as VentState;
    for (const id of await s.thermostats()) await transition(id, expire);
  }

  const def = defineIntegration({
    provider: "thermostat",
    concurrency: o.concurrency ?? 16,
    maxAttempts: o.maxAttempts ?? 10,
    ...(o.backoff === undefined ? {} : { backoff: o.backoff }),
    async start(ctx) {
      log = ctx.log;
      const kv: KV = await new Kvm(ctx.nc).create(thermostatBucket(ctx.prefix), { history: 1, replicas: o.replicas ?? 1 });
      state = new VentState(kv);
      sweeper = setInterval(() => void sweep().catch((err: unknown) => log("warn", "thermostat sweep failed", { error: String(err) })), o.sweepMs ?? 30_000);
      sweeper.unref();
    },
    async deliver(d, { signal }) {
      const alert = d.alert;
      if (alert === undefined || alert.ruleId === undefined || !VENTILATED_CHANNELS.includes(alert.channel as Channel)) return;
      const key = `${d.deviceId}:${alert.ruleId}`;
      const thermostatId = d.subscription.target;
      if (alert.kind === "event.start" && alert.eventId !== undefined) await transition(thermostatId, hold(key, alert.eventId, null), signal);
      else if (alert.kind === "forecast") {
        // held from now (wall clock) until the forecast crossing plus forecastHoldMs (the alert's times are event times)
        const leadMs = Math.max(0, (alert.expectedAt ?? alert.at) - alert.at);
        await transition(thermostatId, hold(key, null, Date.now() + leadMs + forecastHoldMs), signal);
      }
      else if (alert.kind === "event.end" && alert.eventId !== undefined) await transition(thermostatId, release(key, alert.eventId), signal);
    },
    async close() {
      if (sweeper !== undefined) clearInterval(sweeper);
      await partner.close();
    },
  });
  return Object.assign(def, { partner, state: () => state as VentState, sweep });
}
