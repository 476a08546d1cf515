// Every device's subscriptions as the integrations service knows them, so a delivery does not ask the
// twin's owner: each twin publishes its whole list on `<prefix>.out.subscriptions.<deviceId>` when a
// subscribe or unsubscribe commits, and an empty one when it is erased (the device deleted); an ordered
// consumer reads them all at start and then follows them, a few ms behind the commit.
//
// A delivery whose subscription is in the list is made with it (its current target and secret). One
// whose subscription is not — unsubscribed, the device deleted, or subscribed so recently that its
// list has not arrived yet — asks the twin (SubscriptionLookup), whose answer decides: so an
// unsubscribe still stops queued deliveries and a subscribe still starts them at once, and the owner
// is asked only for those. Devices with no list on the stream (subscribed before twins published
// lists, or not changed for longer than the output stream keeps messages) are asked once per
// subscription and the answer kept until their next list arrives.
//
// Lists carry the log position of their change as a revision; one older than a list already seen (a
// refused publish sent again after a later one) makes the device's entry unreliable: it is emptied, and
// the twin asked, until a newer list arrives. While the follower is down (reconnecting, restarted)
// nothing is trusted and every delivery asks the twin.
import { DeliverPolicy, jetstream, type ConsumerMessages } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { subscriptionsSubject, type SubscriptionsMessage } from "../../actors/device-twin/behavior.ts";
import type { Subscription } from "../../actors/device-twin/domain/mod.ts";
import { decode, names } from "../../runtime/mod.ts";
import { SubscriptionLookup, type TwinAccess } from "./subscription-lookup.ts";

type Revision = readonly [number, number];

interface DeviceSubscriptions {
  /** Of the newest list seen; undefined when none has been (only the twin's answers are kept). */
  revision: Revision | undefined;
  /** False when the subscriptions are the twin's answers (no list, or an out-of-order one seen). */
  fromList: boolean;
  byId: Map<string, Subscription>;
}

/** Options of {@link SubscriptionMap.start}. */
export interface SubscriptionMapOptions {
  nc: NatsConnection;
  prefix: string;
  twins: TwinAccess;
  log?: (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  /** How long `start` waits for the lists stored so far before it resolves anyway (ms). Default 10 000. */
  catchUpMs?: number;
}

const compare = (a: Revision, b: Revision): number => a[0] - b[0] || a[1] - b[1];
/** The entry of every device whose list is empty (never written: only answers fill entries, and not those from a list). */
const NONE: Map<string, Subscription> = new Map();
const RESTART_MS = 1000;

export class SubscriptionMap implements AsyncDisposable {
  private readonly devices = new Map<string, DeviceSubscriptions>();
  private readonly lookup: SubscriptionLookup;
  /** True while the follower is caught up and running: only then is the map used. */
  private live = false;
  private closed = false;
  private messages: ConsumerMessages | undefined;
  private following: Promise<void> | undefined;
  private caughtUp!: () => void;
  private readonly firstCatchUp = new Promise<void>((r) => (this.caughtUp = r));

  private constructor(private readonly o: SubscriptionMapOptions) {
    this.lookup = new SubscriptionLookup(o.twins);
  }

  /** Starts following the lists; resolves once those stored so far are read (or after `catchUpMs`). */
  static async start(o: SubscriptionMapOptions): Promise<SubscriptionMap> {
    const map = new SubscriptionMap(o);
    map.following = map.follow();
    const timeout = new Promise<void>((r) => setTimeout(r, o.catchUpMs ?? 10_000).unref());
    await Promise.race([map.firstCatchUp, timeout]);
    if (!map.live) o.log?.("warn", "subscription lists not read yet; deliveries ask the twins meanwhile");
    return map;
  }

  /** The subscription as the newest list has it; undefined when that list lacks it or is not known: ask the twin ({@link ask}). */
  known(deviceId: string, subscriptionId: string): Subscription | undefined {
    return this.live ? this.devices.get(deviceId)?.byId.get(subscriptionId) : undefined;
  }

  /** The twin's answer (null: it does not have the subscription); kept for devices without a list. */
  async ask(deviceId: string, subscriptionId: string): Promise<Subscription | null> {
    const sub = await this.lookup.current(deviceId, subscriptionId);
    if (sub !== null && this.live) {
      let d = this.devices.get(deviceId);
      if (d === undefined) this.devices.set(deviceId, (d = { revision: undefined, fromList: false, byId: new Map() }));
      // a list (newer than the answer or not) is the twin's own word: answers only fill the gaps of devices without one
      if (!d.fromList) d.byId.set(subscriptionId, sub);
    }
    return sub;
  }

  /** Devices with a list or kept answers (for tests and metrics). */
  get size(): number {
    return this.devices.size;
  }

  /** Applies one list message as the follower does. */
  apply(m: SubscriptionsMessage): void {
    const d = this.devices.get(m.deviceId);
    if (d !== undefined && d.revision !== undefined) {
      const order = compare(m.revision, d.revision);
      if (order === 0) return; // the same list again (a replay)
      if (order < 0) {
        // older than one seen: a publish sent again out of order, or a log started over — trust the twin until a newer list
        this.devices.set(m.deviceId, { revision: d.revision, fromList: false, byId: new Map() });
        this.o.log?.("warn", "subscription list older than one seen; asking the twin until a newer one", { deviceId: m.deviceId, revision: m.revision, seen: d.revision });
        return;
      }
    }
    // an empty list (unsubscribed, deleted) is kept, not forgotten: a twin's late answer must not fill it
    const byId = m.subscriptions.length === 0 ? NONE : new Map(m.subscriptions.map((s) => [s.id, s]));
    this.devices.set(m.deviceId, { revision: m.revision, fromList: true, byId });
  }

  /** Reads every list on the stream, then follows; restarts from scratch when the consumer ends. */
  private async follow(): Promise<void> {
    const js = jetstream(this.o.nc);
    const stream = names(this.o.prefix).outputStream;
    while (!this.closed) {
      try {
        const consumer = await js.consumers.get(stream, { filter_subjects: subscriptionsSubject(this.o.prefix, "*"), deliver_policy: DeliverPolicy.All });
        this.devices.clear();
        const messages = await consumer.consume({ max_messages: 1000 });
        this.messages = messages;
        if (this.closed) break;
        if ((await consumer.info(true)).num_pending === 0) this.nowLive();
        for await (const m of messages) {
          const list = listOf(m.data);
          if (list !== undefined) this.apply(list);
          if (m.info.pending === 0 && !this.live) this.nowLive();
        }
      } catch (err) {
        if (!this.closed) this.o.log?.("warn", "following the subscription lists failed; restarting", { error: String(err) });
      }
      this.live = false;
      if (!this.closed) await new Promise((r) => setTimeout(r, RESTART_MS));
    }
  }

  private nowLive(): void {
    this.live = true;
    this.caughtUp();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.live = false;
    this.caughtUp();
    await this.messages?.close().catch(() => undefined);
    await this.following;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A list message, or undefined for anything no twin wrote (skipped). */
function listOf(data: Uint8Array): SubscriptionsMessage | undefined {
  try {
    const m = decode<Partial<SubscriptionsMessage> | null>(data);
    const r = m?.revision;
    if (typeof m?.deviceId !== "string" || !Array.isArray(r) || typeof r[0] !== "number" || typeof r[1] !== "number" || !Array.isArray(m.subscriptions)) return undefined;
    return m as SubscriptionsMessage;
  } catch {
    return undefined;
  }
}
