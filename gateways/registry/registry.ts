// The registry of devices and users in NATS KV (`<prefix>-registry`), with an in-memory view fed by one
// KV watch: authenticating a known device never waits on storage, and a write made by any gateway (or
// `airtwin ops`) reaches every gateway's view within milliseconds — a revoked token stops working at once.
// A device the view does not know yet is read once from the bucket (lookUpDevice, bounded). The writes
// (registry-writes.ts) go to the bucket and then into this view at once; Registry's write methods delegate to them.
//
// The view keeps the highest revision seen per key, so a late watch echo of our own write, or a lookup
// answered before a delete the watch already brought, never undoes newer knowledge. When the watch ends, fails, or NATS reconnects (a restarted server forgets
// ephemeral consumers), it is reopened from the revision after the last one applied.
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type Bucket, type KV, type KvEntry } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator } from "@nats-io/nats-core";
import { askAgain, backoffMs, isStreamNotFound, pause, retry, RuntimeError, START_PATIENCE_MS, type LogFn } from "../../runtime/mod.ts";
import { DEVICE_PREFIX, USER_PREFIX, decodeDevice, decodeUser, deviceKey, type DeviceInfo, type UserInfo, type UserRecord } from "./records.ts";
import { DeviceTable } from "./device-table.ts";
import type { DeviceImportEntry, DeviceImportResult } from "./device-import.ts";
import { RegistryWrites } from "./registry-writes.ts";
import { apiKeyUser, secretMatches } from "./secrets.ts";
import { UnknownDeviceLookup, type LookupOutcome, type UnknownDeviceLookupOptions } from "./unknown-device-lookup.ts";

export type { DeviceInfo, UserInfo } from "./records.ts";

/** The registry logs like the runtime does. */
export type RegistryLog = LogFn;

/** Options of {@link Registry.open}. */
export interface RegistryOptions {
  /** Cluster subject prefix; the bucket is `<prefix>-registry`. Default "airtwin". */
  prefix?: string;
  /** JetStream replicas of the bucket when it is created (1, 3 or 5). Default 1. */
  replicas?: number;
  /** Longest wait for the initial load of the view (ms). Default 10 000. */
  loadTimeoutMs?: number;
  /**
   * How long to keep asking for the bucket at start while JetStream times out or has no leader
   * (ms): a gateway started with a cluster that is still electing one waits instead of exiting. Default 60 000.
   */
  startWithinMs?: number;
  /** Pause before reopening a watch that ended or failed (ms). Default 250. */
  retryMs?: number;
  log?: RegistryLog;
  /**
   * Bounds of the look in the bucket for a device the view does not know yet ({@link Registry.lookUpDevice}),
   * and `timeoutMs`, the longest wait for its answer (default 1000).
   */
  lookup?: UnknownDeviceLookupOptions & { timeoutMs?: number };
  /**
   * Erases a device's twin (the runtime's `erase`: its state replaced by a fresh one, in log order).
   * Called before a device is registered and before it is unregistered, so a deleted device's history,
   * rules, subscriptions and offline timer are gone, and an id registered again — possibly for another
   * owner — starts from nothing. Resolves once the erasure is stored in the input log. Without it the
   * registry touches no twin (tests of the registry alone).
   */
  eraseTwin?: (deviceId: string) => Promise<unknown>;
}

/** A registered user in the view. */
interface UserEntry {
  record: UserRecord;
  digest: Buffer;
}

/** Name of the registry bucket of a cluster. */
export const registryBucket = (prefix: string): string => `${prefix}-registry`;

export class Registry implements AsyncDisposable {
  readonly bucket: string;
  /** The devices, packed (and the highest revision known of each device key, deletes included). */
  private readonly devices = new DeviceTable();
  private readonly users = new Map<string, UserEntry>();
  /** Highest revision known per user key (writes and deletes). */
  private readonly userRevisions = new Map<string, number>();
  private iter: QueuedIterator<KvEntry> | undefined;
  private generation = 0;
  private closed = false;
  private markClosed: () => void = () => undefined;
  private readonly closedSignal = new Promise<void>((resolve) => (this.markClosed = resolve));
  private watchRevision = 0;
  private loop: Promise<void> | undefined;
  private readonly log: RegistryLog;
  private readonly lookup: UnknownDeviceLookup;
  private readonly writes: RegistryWrites;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    /** The same bucket for {@link lookUpDevice}: a short request timeout, read from the stream leader. */
    private readonly lookupKv: KV,
    private readonly options: RegistryOptions,
  ) {
    this.bucket = registryBucket(options.prefix ?? "airtwin");
    this.log = options.log ?? (() => undefined);
    this.lookup = new UnknownDeviceLookup((deviceId) => this.readDevice(deviceId), options.lookup);
    this.writes = new RegistryWrites({
      nc,
      kv,
      bucket: this.bucket,
      view: {
        hasDevice: (deviceId) => this.devices.has(deviceId),
        hasUser: (userId) => this.users.has(userId),
        applyEntry: (key, operation, revision, value) => this.applyEntry(key, operation, revision, value),
      },
      eraseTwin: options.eraseTwin,
    });
  }

  /**
   * Opens (creating if missing) the registry bucket and loads the view; resolves once every entry that
   * existed when it started is in the view.
   * @throws RuntimeError AIRTWIN_ERR_NATS_UNAVAILABLE when the bucket cannot be opened or loaded in time.
   */
  static async open(nc: NatsConnection, options: RegistryOptions = {}): Promise<Registry> {
    const bucket = registryBucket(options.prefix ?? "airtwin");
    const kv = await openBucket(new Kvm(nc), bucket, options.replicas ?? 1, options.startWithinMs);
    const lookupKvm = new Kvm(jetstream(nc, { timeout: options.lookup?.timeoutMs ?? 1000 }));
    const lookupKv = await retry(() => lookupKvm.open(bucket), { withinMs: options.startWithinMs ?? START_PATIENCE_MS, backoff: { firstMs: 50, maxMs: 1000 } }).catch((err: unknown) => {
      throw new RuntimeError("NATS_UNAVAILABLE", `cannot open the KV bucket ${bucket}: ${(err as Error).message}`, { cause: err });
    });
    // not a direct get, which any replica answers: a follower a few messages behind would call a device
    // just registered absent — the very case the look is for. The stream leader holds every acknowledged write.
    (lookupKv as Bucket).direct = false;
    const registry = new Registry(nc, kv, lookupKv, options);
    await registry.start();
    return registry;
  }

  // ---- reads (the in-memory view) ----

  /** A registered device, or undefined. */
  device(deviceId: string): DeviceInfo | undefined {
    return this.devices.info(deviceId);
  }

  /** A registered user, or undefined. */
  user(userId: string): UserInfo | undefined {
    const e = this.users.get(userId);
    return e === undefined ? undefined : { userId, createdAt: e.record.createdAt };
  }

  /** Registered devices, of one owner if given, sorted by id. */
  listDevices(ownerId?: string): DeviceInfo[] {
    return this.devices.list(ownerId).sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  }

  /** Number of registered devices and users. */
  get size(): { devices: number; users: number } {
    return { devices: this.devices.size, users: this.users.size };
  }

  /**
   * True when `token` is the token of an enabled device `deviceId`. Unknown, disabled and wrong-token
   * cases cost the same and answer the same. The token last verified is kept (in memory only): the next
   * request with it costs a constant-time compare instead of a SHA-256 (~10 % of the gateway's CPU per
   * request in the fleet's shape). See DeviceTable.verify.
   */
  verifyDevice(deviceId: string, token: string): boolean {
    return this.devices.verify(deviceId, token);
  }

  /**
   * For a device the view does not know (yet): one bounded read of its entry in the bucket, applied to
   * the view as the watch would apply it — under its revision, so a read older than what the view knows
   * (a delete or disable the watch already brought) changes nothing, and a deleted device stays deleted.
   * "found" means the view now holds the device (its token still to be checked with
   * {@link verifyDevice}); "busy" that the registry was not asked (too many looks in flight) or did not
   * answer in time. Bounds: RegistryOptions.lookup, see UnknownDeviceLookup.
   */
  lookUpDevice(deviceId: string): Promise<LookupOutcome> {
    if (this.devices.has(deviceId)) return Promise.resolve("found");
    return this.lookup.lookUp(deviceId);
  }

  /** Looks waiting on the registry now (tests and metrics). */
  get lookupsInFlight(): number {
    return this.lookup.inFlight;
  }

  /** The user an API key belongs to, or undefined (unknown user or wrong key: same cost, same answer). */
  verifyApiKey(apiKey: string): string | undefined {
    const userId = apiKeyUser(apiKey);
    const e = userId === undefined ? undefined : this.users.get(userId);
    return secretMatches(apiKey, e?.digest) && e !== undefined ? userId : undefined;
  }

  // ---- writes (KV, then the view at once; other gateways see them through their watch): RegistryWrites ----

  /** Registers a user; the API key is returned once and only its digest is stored. */
  createUser(userId: string, now = Date.now()): Promise<{ userId: string; apiKey: string }> {
    return this.writes.createUser(userId, now);
  }

  /** Removes a user; their API key stops working. Their devices stay (an admin still reaches them). */
  deleteUser(userId: string): Promise<void> {
    return this.writes.deleteUser(userId);
  }

  /** Registers a device owned by an existing user; returns its token (shown once; only its digest is stored). */
  createDevice(deviceId: string, ownerId: string, now = Date.now()): Promise<{ deviceId: string; token: string }> {
    return this.writes.createDevice(deviceId, ownerId, now);
  }

  /** Registers many devices at once (an operator's import). See RegistryWrites.importDevices. */
  importDevices(entries: readonly DeviceImportEntry[], now = Date.now()): Promise<DeviceImportResult[]> {
    return this.writes.importDevices(entries, now);
  }

  /** Unregisters a device: its twin is erased (see RegistryOptions.eraseTwin), then its token stops working. */
  deleteDevice(deviceId: string): Promise<void> {
    return this.writes.deleteDevice(deviceId);
  }

  /** Disables (refuses its token) or re-enables a device. Compare-and-set on the entry's revision. */
  setDeviceDisabled(deviceId: string, disabled: boolean): Promise<DeviceInfo> {
    return this.writes.setDeviceDisabled(deviceId, disabled);
  }

  /** Resolves once the view reflects `revision` of the bucket (false after `timeoutMs`). */
  async waitForRevision(revision: number, timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.watchRevision < revision) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /** Drops the watch and reopens it from the last applied revision (after a reconnect, or when stale). */
  rewatch(reason: string): void {
    if (this.closed) return;
    this.log("info", "registry watch restarted", { reason, revision: this.watchRevision });
    this.iter?.stop();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.markClosed();
    this.writes.close();
    this.iter?.stop();
    await this.loop;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- internals ----

  private async start(): Promise<void> {
    // Everything up to the bucket's last sequence at this moment must be in the view before we serve:
    // a LastValue watch delivers the last message of every key, and the bucket's last message is one.
    const deadline = performance.now() + (this.options.startWithinMs ?? START_PATIENCE_MS);
    // "stream not found" too: the bucket was opened (or created) a moment ago, and on a replicated
    // cluster nats-server 2.9 can say so to a request that follows the creation at once (two gateways
    // starting together; seen in the chaos test)
    const ask = <T>(what: string, request: () => Promise<T>): Promise<T> =>
      askAgain(request, { withinMs: Math.max(0, deadline - performance.now()), stopped: () => this.closed, alsoWhen: isStreamNotFound }).catch((err: unknown) => {
        throw new RuntimeError("NATS_UNAVAILABLE", `cannot ${what} the registry bucket ${this.bucket}: ${(err as Error).message}`, { cause: err });
      });
    const status = await ask("read", () => this.kv.status());
    const lastSeq = (status as unknown as { si: { state: { last_seq: number } } }).si.state.last_seq;
    await ask("watch", () => this.open());
    void this.watchReconnects();
    if (!(await this.waitForRevision(lastSeq, this.options.loadTimeoutMs ?? 10_000))) {
      await this.close();
      throw new RuntimeError("NATS_UNAVAILABLE", `the registry view did not load revision ${lastSeq} of ${this.bucket} in time`);
    }
  }

  private async open(): Promise<void> {
    const from = this.watchRevision + 1;
    const iter = await this.kv.watch({ key: ">", ...(from > 1 ? { resumeFromRevision: from } : {}) });
    if (this.closed) {
      iter.stop();
      return;
    }
    this.iter = iter;
    const generation = ++this.generation;
    this.loop = this.consume(iter, generation);
  }

  private async consume(iter: QueuedIterator<KvEntry>, generation: number): Promise<void> {
    try {
      for await (const e of iter) {
        if (e.revision > this.watchRevision) this.watchRevision = e.revision;
        this.applyEntry(e.key, e.operation, e.revision, e.value);
      }
    } catch (err) {
      this.log("warn", "registry watch failed", { error: (err as Error).message });
    }
    if (this.closed || generation !== this.generation) return;
    // growing pauses: a watch that cannot be opened (its consumer create timing out on a loaded or
    // recovering cluster) asked again every 250 ms adds to the very load that makes it time out
    for (let attempt = 0; ; attempt++) {
      // a close does not wait out the pause
      await Promise.race([pause(backoffMs({ firstMs: this.options.retryMs ?? 250, maxMs: 5000 }, attempt)), this.closedSignal]);
      if (this.closed) return;
      try {
        await this.open();
        return;
      } catch (err) {
        this.log("warn", "registry watch could not be reopened", { error: (err as Error).message });
      }
    }
  }

  private async watchReconnects(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.closed) return;
      if (s.type === "reconnect") this.rewatch("reconnected to NATS");
    }
  }

  /** Applies a KV entry to the view unless we already know a newer revision of its key. */
  private applyEntry(key: string, operation: string, revision: number, value: Uint8Array): void {
    const live = operation === "PUT";
    if (key.startsWith(DEVICE_PREFIX)) {
      const id = key.slice(DEVICE_PREFIX.length);
      if (this.devices.revision(id) >= revision) return;
      const record = live ? decodeDevice(value) : undefined;
      if (record === undefined) {
        if (live) this.log("warn", "malformed registry entry ignored", { key, revision });
        this.devices.remove(id, revision);
      } else {
        this.devices.put(id, revision, record);
        this.lookup.forget(id);
      }
    } else if (key.startsWith(USER_PREFIX)) {
      if ((this.userRevisions.get(key) ?? 0) >= revision) return;
      this.userRevisions.set(key, revision);
      const id = key.slice(USER_PREFIX.length);
      const record = live ? decodeUser(value) : undefined;
      if (record === undefined) {
        if (live) this.log("warn", "malformed registry entry ignored", { key, revision });
        this.users.delete(id);
      } else {
        this.users.set(id, { record, digest: Buffer.from(record.apiKeySha256, "hex") });
      }
    }
  }

  /** Reads a device's entry from the bucket and applies it; true when the view then holds the device. */
  private async readDevice(deviceId: string): Promise<boolean> {
    if (this.closed) return false;
    const key = deviceKey(deviceId);
    const e = await this.lookupKv.get(key);
    if (e !== null) this.applyEntry(key, e.operation, e.revision, e.value);
    return this.devices.has(deviceId);
  }
}

/**
 * Opens a KV bucket, creating it (history 1, `replicas`) if missing. Processes starting together race
 * to create it, and nats-server 2.9 may answer the loser with an error rather than a no-op; a bucket
 * that exists with another configuration cannot be created either. Either way the retry opens it, and
 * a cluster still electing its leaders is asked again for up to `withinMs`.
 */
export async function openBucket(kvm: Kvm, name: string, replicas: number, withinMs = START_PATIENCE_MS): Promise<KV> {
  const attempt = async (): Promise<KV> => {
    try {
      return await kvm.create(name, { history: 1, replicas });
    } catch {
      // exists (with another configuration, or created by the winner of a race): open it below
    }
    const kv = await kvm.open(name);
    await kv.status(); // fails when the bucket does not exist
    return kv;
  };
  return retry(attempt, { withinMs, backoff: { firstMs: 50, maxMs: 1000 } }).catch((err: unknown) => {
    throw new RuntimeError("NATS_UNAVAILABLE", `cannot open the KV bucket ${name}: ${(err as Error).message}`, { cause: err });
  });
}
