// The end checks of a chaos run, for every device, against what the fleet got 202 for:
// - twins: readings applied = readings accepted (none lost, none twice), statistics equal the reference;
// - alerts: every event alert the accepted readings imply (the pure domain replayed on them) is on the
//   output stream, with that payload; a repeat only under the same id, never a different payload;
// - archive: each accepted reading once, with its values;
// - webhook: every matching alert delivered at least once, never two payloads under one webhook-id.
// Each returns problems (strings) instead of throwing, so the run prints all of them with its summary.
import { isDeepStrictEqual } from "node:util";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { applyInput, createTwin, type Alert, type Command, type Reading } from "../../actors/device-twin/domain/mod.ts";
import { decode, encode, names, type RuntimeClient } from "../../runtime/mod.ts";
import type { PartnerRequest } from "../integrations/partner.ts";
import { eachLimited, expectMatchesReference, waitApplied } from "../integration/runtime/fleet.ts";
import type { ChaosFleet } from "./fleet.ts";
import { PREFIX } from "./system.ts";

/** The user rule of the webhook devices: an instant co2 threshold, so it fires often. */
export const WEBHOOK_RULE_ID = "chaos-co2";
export const WEBHOOK_RULE: Command = {
  type: "putRule",
  rule: { id: WEBHOOK_RULE_ID, channel: "co2", direction: "above", enter: 1000, exit: 850, minDurationMs: 0, clearDurationMs: 0 },
};
export const WEBHOOK_KINDS = ["event.start", "event.end"];

const MAX_PROBLEMS = 20;
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
const cap = (problems: string[]): string[] => (problems.length > MAX_PROBLEMS ? [...problems.slice(0, MAX_PROBLEMS), `… and ${problems.length - MAX_PROBLEMS} more`] : problems);

/** Readings applied to the twins, and what differs from the reference. */
export async function checkTwins(client: RuntimeClient, fleet: ChaosFleet): Promise<{ applied: number; problems: string[] }> {
  const ids = fleet.ids.filter((id) => fleet.ref.devices.has(id));
  const problems: string[] = [];
  let views;
  try {
    views = await waitApplied(client, ids, fleet.ref, { timeoutMs: 300_000, resentReadings: fleet.resentReadings });
  } catch (err) {
    return { applied: 0, problems: [`twins: ${(err as Error).message}`] };
  }
  let applied = 0;
  for (const id of ids) {
    const view = views.get(id)!;
    applied += view.readings;
    try {
      expectMatchesReference(id, view, fleet.ref.get(id), fleet.resentReadings.get(id) ?? 0);
    } catch (err) {
      problems.push(`twin ${id}: ${(err as Error).message.split("\n").slice(0, 6).join(" ")}`);
    }
  }
  return { applied, problems: cap(problems) };
}

/** What the pure domain emits as event alerts for each device's accepted messages, in order. */
export function expectedEventAlerts(fleet: ChaosFleet, webhookDevices: ReadonlySet<string>): Map<string, Alert[]> {
  const out = new Map<string, Alert[]>();
  for (const id of fleet.ids) {
    const twin = createTwin(id);
    const alerts: Alert[] = [];
    const collect = (outputs: ReturnType<typeof applyInput>["outputs"]) => {
      for (const o of outputs) if (o.type === "alert" && o.alert.kind.startsWith("event.")) alerts.push(o.alert);
    };
    if (webhookDevices.has(id)) collect(applyInput(twin, { type: "command", command: WEBHOOK_RULE, at: 0 }).outputs);
    // receivedAt moves only presence (offline/online), which event alerts do not depend on
    for (const m of fleet.accepted.get(id) ?? []) collect(applyInput(twin, { type: "readings", readings: m.readings, receivedAt: 0 }).outputs);
    out.set(id, alerts);
  }
  return out;
}

/** Every event alert on the output stream, by id (each copy kept). */
async function eventAlertsOnStream(nc: NatsConnection): Promise<Map<string, Array<Record<string, unknown>>>> {
  const n = names(PREFIX);
  const subject = `${n.outputRoot}.alert.>`;
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(n.outputStream, { subjects_filter: subject });
  const byId = new Map<string, Array<Record<string, unknown>>>();
  const total = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  if (total === 0) return byId;
  const consumer = await jetstream(nc).consumers.get(n.outputStream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: 1000 });
  for await (const m of messages) {
    const a = decode<Record<string, unknown>>(m.data);
    if (String(a.kind).startsWith("event.")) {
      const list = byId.get(String(a.id)) ?? [];
      list.push(a);
      byId.set(String(a.id), list);
    }
    if (m.info.pending === 0) break;
  }
  await messages.close();
  return byId;
}

/** Waits (up to `timeoutMs`) for every expected event alert on the stream, then compares. */
export async function checkAlerts(nc: NatsConnection, expected: ReadonlyMap<string, Alert[]>, timeoutMs = 180_000): Promise<{ expected: number; onStream: number; repeats: number; problems: string[] }> {
  const want = [...expected.values()].flat();
  const deadline = Date.now() + timeoutMs;
  let stream = await eventAlertsOnStream(nc);
  while (want.some((a) => !stream.has(a.id)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 3000)); // outputs are confirmed at the owner's next commit
    stream = await eventAlertsOnStream(nc);
  }
  const problems: string[] = [];
  const wanted = new Map(want.map((a) => [a.id, plain(a)]));
  for (const [id, a] of wanted) {
    const copies = stream.get(id);
    if (copies === undefined) problems.push(`alert ${id} implied by the accepted readings is not on the stream`);
    else if (!copies.every((c) => isDeepStrictEqual(plain(c), a))) problems.push(`alert ${id}: on the stream ${JSON.stringify(copies)}, implied ${JSON.stringify(a)}`);
  }
  let repeats = 0;
  for (const [id, copies] of stream) {
    repeats += copies.length - 1;
    if (!wanted.has(id)) problems.push(`alert ${id} on the stream is not implied by the accepted readings: ${JSON.stringify(copies[0])}`);
  }
  return { expected: want.length, onStream: stream.size, repeats, problems: cap(problems) };
}

interface ArchiveReply<T> {
  ok: boolean;
  value?: T;
  error?: { code: string; message: string };
}

async function archiveQuery<T>(nc: NatsConnection, verb: string, q: Record<string, unknown>): Promise<T> {
  const m = await nc.request(`${PREFIX}.archive.query.${verb}`, encode(q), { timeout: 30_000 });
  const r = decode<ArchiveReply<T>>(m.data);
  if (!r.ok) throw new Error(`archive ${verb}: ${r.error?.code} ${r.error?.message}`);
  return r.value as T;
}

async function archivedReadings(nc: NatsConnection, deviceId: string): Promise<Array<Reading & { acceptedAt: number }>> {
  const out: Array<Reading & { acceptedAt: number }> = [];
  let afterT: number | undefined;
  for (;;) {
    const page = await archiveQuery<{ readings: Array<Reading & { acceptedAt: number }>; more: boolean }>(nc, "readings", {
      deviceId, fromMs: 0, toMs: Number.MAX_SAFE_INTEGER, limit: 10_000, ...(afterT === undefined ? {} : { afterT }),
    });
    out.push(...page.readings);
    if (!page.more || page.readings.length === 0) return out;
    afterT = page.readings[page.readings.length - 1]!.t;
  }
}

const CHANNELS = ["pm", "co2", "voc", "tmp", "hum", "allpollu"] as const;

/** Each accepted reading (distinct `t` per device) in the archive once, with its values. */
export async function checkArchive(nc: NatsConnection, fleet: ChaosFleet, timeoutMs = 240_000): Promise<{ archived: number; expected: number; problems: string[] }> {
  const expected = new Map<string, Map<number, Reading>>();
  for (const [id, messages] of fleet.accepted) {
    const byT = new Map<number, Reading>();
    for (const m of messages) for (const r of m.readings) if (!byT.has(r.t)) byT.set(r.t, r);
    expected.set(id, byT);
  }
  const want = [...expected.values()].reduce((n, m) => n + m.size, 0);
  const deadline = Date.now() + timeoutMs;
  const results = new Map<string, Array<Reading & { acceptedAt: number }>>();
  // the last failed history query of a device never answered: "missing" would blame the archive's rows
  const queryFailed = new Map<string, string>();
  let todo = [...expected.keys()];
  for (;;) {
    const left: string[] = [];
    await eachLimited(todo, 16, async (id) => {
      const got = await archivedReadings(nc, id).catch((err: unknown) => {
        queryFailed.set(id, (err as Error).message);
        return undefined;
      });
      if (got !== undefined) results.set(id, got);
      if (got === undefined || got.length < expected.get(id)!.size) left.push(id);
    });
    if (left.length === 0 || Date.now() > deadline) break;
    todo = left;
    await new Promise((r) => setTimeout(r, 3000)); // the archive writes in batches; let it catch up
  }
  const problems: string[] = [];
  let archived = 0;
  for (const [id, byT] of expected) {
    const got = results.get(id);
    if (got === undefined) {
      problems.push(`archive ${id}: its history query never answered within ${timeoutMs} ms (last error: ${queryFailed.get(id) ?? "none"}), so its ${byT.size} accepted readings are unchecked`);
      continue;
    }
    archived += got.length;
    const seen = new Set<number>();
    for (const r of got) {
      if (seen.has(r.t)) problems.push(`archive ${id}: t=${r.t} held twice`);
      seen.add(r.t);
      const want = byT.get(r.t);
      if (want === undefined) {
        problems.push(`archive ${id}: t=${r.t} was never accepted`);
        continue;
      }
      for (const ch of CHANNELS) if (want[ch] !== r[ch]) problems.push(`archive ${id}: t=${r.t} ${ch} ${String(r[ch])}, accepted ${String(want[ch])}`);
    }
    const missing = [...byT.keys()].filter((t) => !seen.has(t));
    if (missing.length > 0) problems.push(`archive ${id}: ${missing.length} of ${byT.size} accepted readings missing, e.g. t=${missing.slice(0, 3).join(",")}`);
  }
  return { archived, expected: want, problems: cap(problems) };
}

/** Every expected alert of the webhook devices delivered at least once; one payload per webhook-id. */
export async function checkWebhook(
  requests: readonly PartnerRequest[],
  expected: ReadonlyMap<string, Alert[]>,
  webhookDevices: ReadonlySet<string>,
  timeoutMs = 240_000,
): Promise<{ expected: number; delivered: number; attempts: number; problems: string[] }> {
  const want: Alert[] = [];
  for (const id of webhookDevices) for (const a of expected.get(id) ?? []) if (a.ruleId === WEBHOOK_RULE_ID && WEBHOOK_KINDS.includes(a.kind)) want.push(a);
  const deadline = Date.now() + timeoutMs;
  const deliveredIds = () => new Set(requests.map((r) => (JSON.parse(r.body) as { data?: { id?: string } }).data?.id));
  while (want.some((a) => !deliveredIds().has(a.id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2000)); // deliveries retry with backoff
  const problems: string[] = [];
  const byWebhookId = new Map<string, string>();
  const byAlert = new Map<string, unknown>();
  for (const r of requests) {
    const id = String(r.headers["webhook-id"]);
    const first = byWebhookId.get(id);
    if (first === undefined) byWebhookId.set(id, r.body);
    else if (first !== r.body) problems.push(`webhook-id ${id} delivered with two payloads: ${first} / ${r.body}`);
    const body = JSON.parse(r.body) as { data?: { id?: string } };
    byAlert.set(String(body.data?.id), body.data);
  }
  for (const a of want) {
    const got = byAlert.get(a.id);
    if (got === undefined) problems.push(`webhook: alert ${a.id} never delivered`);
    else if (!isDeepStrictEqual(plain(got), plain(a))) problems.push(`webhook: alert ${a.id} delivered as ${JSON.stringify(got)}, implied ${JSON.stringify(a)}`);
  }
  return { expected: want.length, delivered: want.filter((a) => byAlert.has(a.id)).length, attempts: requests.length, problems: cap(problems) };
}
