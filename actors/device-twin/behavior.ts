// Binds the pure device-twin domain to the actor runtime: input kinds, output subjects (docs/design.md §5),
// live queries, wake-ups for offline detection, and the snapshot codec.
import type { Applied, ApplyContext, EntityBehavior, EntityOutput } from "../../runtime/mod.ts";
import {
  applyInput,
  createTwin,
  decodeTwin,
  encodeTwin,
  nextWakeAt,
  problem,
  readLoggedReadings,
  releaseTwin,
  twinView,
  validateCommand,
  type Alert,
  type IntegrationOutput,
  type Report,
  type Subscription,
  type TwinOptions,
  type TwinOutput,
  type TwinState,
} from "./domain/mod.ts";

/** Entity type name of the device twin in the runtime (part of snapshot keys). */
export const TWIN_TYPE = "twin";

/** Input kinds the twin accepts from the log. */
export const TwinInputKinds = { readings: "readings", command: "command" } as const;

/**
 * Live queries: the whole view (default), or one subscription as the twin holds it now, secret
 * included (`{ subscription: Subscription | null }`) — for the integrations service, which asks it about
 * a delivery the device's published list lacks. The gateway's API never sends the latter, so secrets
 * never reach users.
 */
export type TwinQuery = { view?: "state" } | { view: "subscription"; subscriptionId: string } | null | undefined;

/** The answer to a `{ view: "subscription" }` query. */
export interface SubscriptionAnswer {
  subscription: Subscription | null;
}

/** Subject of each output kind under the cluster prefix (docs/design.md §5). */
export function outputSubject(prefix: string, o: TwinOutput): string {
  switch (o.type) {
    case "alert":
      return `${prefix}.out.alert.${o.alert.deviceId}.${o.alert.channel}.${o.alert.kind}`;
    case "calibration":
      return `${prefix}.out.calibration.${o.calibration.deviceId}`;
    case "aggregate":
      return `${prefix}.out.aggregate.${o.aggregate.deviceId}`;
    case "occupancy":
      return `${prefix}.out.occupancy.${o.occupancy.deviceId}`;
    case "report":
      return `${prefix}.out.report.${o.report.deviceId}`;
    case "integration":
      return `${prefix}.out.integration.${o.provider}.${o.deviceId}`;
  }
}

/**
 * Where closed aggregates travel: `<prefix>.out.aggregates.<shard>`, `{ items: [aggregate, …] }` per shard
 * and commit (docs/design.md §5.1); before, each alone on `<prefix>.out.aggregate.<deviceId>`.
 */
export const aggregatesBatch = (prefix: string): string => `${prefix}.out.aggregates`;

const NO_OUTPUTS: readonly EntityOutput[] = Object.freeze([]);

function toEntityOutput(prefix: string, o: TwinOutput): EntityOutput {
  switch (o.type) {
    case "alert":
      return { id: o.alert.id, subject: outputSubject(prefix, o), payload: o.alert };
    case "calibration":
      return { id: o.calibration.id, subject: outputSubject(prefix, o), payload: o.calibration };
    case "aggregate":
      // nobody waits for a closed hour: batched per shard and commit on `<prefix>.out.aggregates.<shard>` (docs/design.md §5.1)
      return { id: o.aggregate.id, subject: outputSubject(prefix, o), payload: o.aggregate, batch: aggregatesBatch(prefix) };
    case "occupancy":
      return { id: o.occupancy.id, subject: outputSubject(prefix, o), payload: o.occupancy };
    case "report":
      return { id: o.report.id, subject: outputSubject(prefix, o), payload: o.report };
    case "integration":
      return { id: o.id, subject: outputSubject(prefix, o), payload: integrationPayload(o) };
  }
}

/** The message on `<prefix>.out.integration.<provider>.<deviceId>`: `{ subscriptionId, target, alert }` or `{ …, report }`. */
export type IntegrationMessage = { subscriptionId: string; target: string } & ({ alert: Alert; report?: undefined } | { report: Report; alert?: undefined });

function integrationPayload(o: IntegrationOutput): IntegrationMessage {
  return o.alert !== undefined
    ? { subscriptionId: o.subscriptionId, target: o.target, alert: o.alert }
    : { subscriptionId: o.subscriptionId, target: o.target, report: o.report };
}

/**
 * The message on `<prefix>.out.subscriptions.<deviceId>` whenever a device's subscription list changes
 * (subscribe, unsubscribe) and, empty, when its twin is erased (the device deleted): the whole list as
 * the twin holds it — targets and secrets included, for the integrations service, which keeps every
 * device's list from these messages instead of asking the twin before each delivery.
 */
export interface SubscriptionsMessage {
  deviceId: string;
  /** The input that changed the list: [stream sequence of its message, index in it]; increasing per device. */
  revision: [number, number];
  subscriptions: Subscription[];
}

/** Subject of a device's subscription-list messages. */
export const subscriptionsSubject = (prefix: string, deviceId: string): string => `${prefix}.out.subscriptions.${deviceId}`;

function subscriptionsOutput(ctx: ApplyContext, deviceId: string, subscriptions: readonly Subscription[]): EntityOutput {
  const revision: [number, number] = [ctx.seq ?? 0, ctx.index ?? 0];
  const payload: SubscriptionsMessage = { deviceId, revision, subscriptions: subscriptions.map((s) => ({ ...s, match: { ...s.match } })) };
  return { id: `${deviceId}:subscriptions:${revision[0]}.${revision[1]}`, subject: subscriptionsSubject(ctx.prefix, deviceId), payload };
}

function answerQuery(state: TwinState, query: unknown, options: Partial<TwinOptions>): unknown {
  const q = query as TwinQuery;
  if (q !== null && typeof q === "object" && q.view === "subscription") {
    const sub = state.subscriptions.find((s) => s.id === q.subscriptionId);
    return { subscription: sub === undefined ? null : { ...sub, match: { ...sub.match } } } satisfies SubscriptionAnswer;
  }
  return twinView(state, { now: Date.now(), ...(options.offlineAfterMs === undefined ? {} : { offlineAfterMs: options.offlineAfterMs }) });
}

/** The device twin as a runtime entity type. */
export function deviceTwinBehavior(options: Partial<TwinOptions> = {}): EntityBehavior<TwinState> {
  // one object shape for every input (the runtime reads these fields per item), and most readings have no outputs
  const step = (prefix: string, r: ReturnType<typeof applyInput>, units: number | undefined): Applied<TwinState> => ({
    state: r.state,
    outputs: r.outputs.length === 0 ? NO_OUTPUTS : r.outputs.map((o) => toEntityOutput(prefix, o)),
    reply: r.result,
    units,
  });
  return {
    type: TWIN_TYPE,
    create: (deviceId) => createTwin(deviceId),
    apply(state, kind, payload, ctx) {
      if (kind === TwinInputKinds.readings) {
        // The gateway validated what it logged; anything else in the log is refused (a dead letter), not applied.
        const readings = readLoggedReadings(payload);
        if (typeof readings === "string") throw new TypeError(`invalid readings in the input log: ${readings}`);
        return step(ctx.prefix, applyInput(state, { type: "readings", readings, receivedAt: ctx.acceptedAt }, options), readings.length);
      }
      if (kind === TwinInputKinds.command) {
        const command = validateCommand(payload);
        if (!command.ok) return { state, outputs: [], reply: command };
        const before = state.subscriptions; // an immutable value: a change replaces it
        const applied = step(ctx.prefix, applyInput(state, { type: "command", command: command.value, at: ctx.acceptedAt }, options), undefined);
        if (applied.state.subscriptions !== before) applied.outputs = [...applied.outputs, subscriptionsOutput(ctx, applied.state.deviceId, applied.state.subscriptions)];
        return applied;
      }
      return { state, outputs: [], reply: { ok: false, error: problem("COMMAND_INVALID", `unknown input kind "${kind}"`) } };
    },
    erased: (deviceId, ctx) => [subscriptionsOutput(ctx, deviceId, [])],
    query: (state, query) => answerQuery(state, query, options),
    nextWakeAt: (state) => nextWakeAt(state, options),
    tick: (state, now, ctx) => step(ctx.prefix, applyInput(state, { type: "tick", now }, options), undefined),
    encode: (state) => encodeTwin(state),
    decode: (bytes) => decodeTwin(bytes),
    release: (state) => releaseTwin(state),
  };
}
