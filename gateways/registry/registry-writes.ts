// The writes of the registry (`<prefix>-registry`): users and devices created, imported, disabled and
// deleted. Each goes to the bucket first — a compare-and-set where two writers could race — and is then
// applied to this gateway's view at once (read-your-write); other gateways see it through their watch.
// A device's twin is erased before it is registered and before it is unregistered. The view (registry.ts)
// is reached only through {@link RegistryViewAccess}.
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { isCasConflict, JS_ERR_WRONG_LAST_SEQUENCE, PipelinedPublisher, PublishError, RuntimeError, RuntimeErrors } from "../../runtime/mod.ts";
import { validateDeviceId } from "../../actors/device-twin/domain/mod.ts";
import { GatewayError, GatewayErrors, ProblemError } from "../errors.ts";
import { deviceInfo, decodeDevice, deviceKey, encodeDevice, encodeUser, isValidUserId, userKey, type DeviceInfo, type DeviceRecord, type UserRecord } from "./records.ts";
import { importProblems, type DeviceImportEntry, type DeviceImportResult } from "./device-import.ts";
import { newApiKey, newDeviceToken, sha256Hex } from "./secrets.ts";

/** What the writes need of the registry's in-memory view. */
export interface RegistryViewAccess {
  /** True when the view holds the device. */
  hasDevice(deviceId: string): boolean;
  /** True when the view holds the user. */
  hasUser(userId: string): boolean;
  /** Applies an entry this gateway wrote, as the watch would (under its revision). */
  applyEntry(key: string, operation: "PUT" | "DEL", revision: number, value: Uint8Array): void;
}

/** What {@link RegistryWrites} writes to and with. */
export interface RegistryWritesConfig {
  /** The connection imports publish on (a pipelined publisher, made on the first import). */
  nc: NatsConnection;
  /** The registry bucket. */
  kv: KV;
  /** Its name (`<prefix>-registry`): imports publish to `$KV.<bucket>.<key>`. */
  bucket: string;
  view: RegistryViewAccess;
  /** See RegistryOptions.eraseTwin; without it no twin is touched. */
  eraseTwin?: (deviceId: string) => Promise<unknown>;
}

/** The registry's writes; Registry (registry.ts) owns one and delegates its write methods to it. */
export class RegistryWrites {
  private readonly kv: KV;
  private readonly view: RegistryViewAccess;
  /** Imports write entries pipelined (made on the first import). */
  private publisher: PipelinedPublisher | undefined;

  constructor(private readonly config: RegistryWritesConfig) {
    this.kv = config.kv;
    this.view = config.view;
  }

  /** Registers a user; the API key is returned once and only its digest is stored. */
  async createUser(userId: string, now = Date.now()): Promise<{ userId: string; apiKey: string }> {
    if (!isValidUserId(userId)) throw new GatewayError("REGISTRY_USER_ID_INVALID", undefined, { details: [{ field: "userId", message: "must be 1-64 characters of [A-Za-z0-9_-]" }] });
    const apiKey = newApiKey(userId);
    const record: UserRecord = { apiKeySha256: sha256Hex(apiKey), createdAt: now };
    const key = userKey(userId);
    const revision = await this.write(() => this.kv.create(key, encodeUser(record)), () => new GatewayError("REGISTRY_USER_EXISTS", `user "${userId}" already exists`));
    this.view.applyEntry(key, "PUT", revision, encodeUser(record));
    return { userId, apiKey };
  }

  /** Removes a user; their API key stops working. Their devices stay (an admin still reaches them). */
  async deleteUser(userId: string): Promise<void> {
    if (!this.view.hasUser(userId)) throw new GatewayError("REGISTRY_USER_NOT_FOUND", `no user "${userId}"`);
    const key = userKey(userId);
    const revision = await this.write(() => this.kv.delete(key).then(() => this.lastRevision(key)));
    this.view.applyEntry(key, "DEL", revision, new Uint8Array());
  }

  /**
   * Registers a device owned by an existing user; returns its token (shown once; only its digest is
   * stored).
   */
  async createDevice(deviceId: string, ownerId: string, now = Date.now()): Promise<{ deviceId: string; token: string }> {
    const problem = validateDeviceId(deviceId);
    if (problem !== undefined) throw new ProblemError(problem.code, problem.message, problem.details);
    if (!this.view.hasUser(ownerId)) {
      throw new GatewayError("REGISTRY_OWNER_UNKNOWN", `owner "${ownerId}" is not a registered user (create it with POST /v1/users)`, {
        details: [{ field: "ownerId", message: "must be a registered user" }],
      });
    }
    const key = deviceKey(deviceId);
    if (this.view.hasDevice(deviceId)) throw new GatewayError("REGISTRY_DEVICE_EXISTS", `device "${deviceId}" is already registered`);
    // first, so a failure changes nothing: leftovers of an earlier device with this id never reach the new owner
    await this.eraseTwin(deviceId);
    const token = newDeviceToken();
    const record: DeviceRecord = { ownerId, tokenSha256: sha256Hex(token), createdAt: now, disabled: false };
    const revision = await this.write(() => this.kv.create(key, encodeDevice(record)), () => new GatewayError("REGISTRY_DEVICE_EXISTS", `device "${deviceId}" is already registered`));
    this.view.applyEntry(key, "PUT", revision, encodeDevice(record));
    return { deviceId, token };
  }

  /**
   * Registers many devices at once (an operator's import). Every entry is checked first — valid ids,
   * registered owners, no id twice, at most DEVICE_IMPORT_MAX — and any problem refuses the whole
   * import (AIRTWIN_ERR_REGISTRY_IMPORT_INVALID, nothing changed). A device already registered is left
   * as it is and reported, so an interrupted import can simply be run again. The others are registered
   * as {@link createDevice} does (twin erased first, then the entry created only where none is), but
   * their entries are published pipelined — one JetStream message each without a round trip each,
   * which is what makes a million devices minutes instead of the better part of an hour. A device
   * whose erasure or entry was not stored is reported (AIRTWIN_ERR_NATS_UNAVAILABLE) and not
   * registered; the tokens of the others are in the results, shown this once.
   */
  async importDevices(entries: readonly DeviceImportEntry[], now = Date.now()): Promise<DeviceImportResult[]> {
    const { count, details } = importProblems(entries, (id) => this.view.hasUser(id));
    if (count > 0) throw new GatewayError("REGISTRY_IMPORT_INVALID", `${count} problem(s) in the import; nothing was registered`, { details });
    const publisher = (this.publisher ??= new PipelinedPublisher(this.config.nc, { maxInFlight: 2048 }));
    const exists = (deviceId: string): DeviceImportResult => ({ deviceId, code: GatewayErrors.REGISTRY_DEVICE_EXISTS.code, message: `device "${deviceId}" is already registered` });
    const notStored = (deviceId: string, err: unknown): DeviceImportResult => ({
      deviceId,
      code: RuntimeErrors.NATS_UNAVAILABLE.code,
      message: `not registered (import it again): ${(err as Error).message}`,
    });
    return Promise.all(
      entries.map(async ({ deviceId, ownerId }): Promise<DeviceImportResult> => {
        if (this.view.hasDevice(deviceId)) return exists(deviceId);
        try {
          await this.eraseTwin(deviceId);
        } catch (err) {
          return notStored(deviceId, err);
        }
        const token = newDeviceToken();
        const key = deviceKey(deviceId);
        const value = encodeDevice({ ownerId, tokenSha256: sha256Hex(token), createdAt: now, disabled: false });
        let revision: number;
        try {
          revision = (await publisher.publish(`$KV.${this.config.bucket}.${key}`, value, { expectLastSubjectSeq: 0 })).seq;
        } catch (err) {
          if (!(err instanceof PublishError && err.jsErrCode === JS_ERR_WRONG_LAST_SEQUENCE)) return notStored(deviceId, err);
          // the key has a history: a deleted device's tombstone (KV create writes over it), or a
          // registration that came in meanwhile (then it exists)
          try {
            revision = await this.write(() => this.kv.create(key, value), () => new GatewayError("REGISTRY_DEVICE_EXISTS"));
          } catch (again) {
            return again instanceof GatewayError ? exists(deviceId) : notStored(deviceId, again);
          }
        }
        this.view.applyEntry(key, "PUT", revision, value);
        return { deviceId, token };
      }),
    );
  }

  /** Unregisters a device: its twin is erased (see RegistryOptions.eraseTwin), then its token stops working. */
  async deleteDevice(deviceId: string): Promise<void> {
    if (!this.view.hasDevice(deviceId)) throw new GatewayError("REGISTRY_DEVICE_NOT_FOUND", `no device "${deviceId}"`);
    // first, so a failure leaves the device registered and the delete can be retried
    await this.eraseTwin(deviceId);
    const key = deviceKey(deviceId);
    const revision = await this.write(() => this.kv.delete(key).then(() => this.lastRevision(key)));
    this.view.applyEntry(key, "DEL", revision, new Uint8Array());
  }

  /** Disables (refuses its token) or re-enables a device. Compare-and-set on the entry's revision. */
  async setDeviceDisabled(deviceId: string, disabled: boolean): Promise<DeviceInfo> {
    const key = deviceKey(deviceId);
    const current = await this.write(() => this.kv.get(key));
    const record = current === null || current.operation !== "PUT" ? undefined : decodeDevice(current.value);
    if (current === null || record === undefined) throw new GatewayError("REGISTRY_DEVICE_NOT_FOUND", `no device "${deviceId}"`);
    const next: DeviceRecord = { ...record, disabled };
    const revision = await this.write(
      () => this.kv.update(key, encodeDevice(next), current.revision),
      () => new GatewayError("REGISTRY_CONFLICT", `device "${deviceId}" changed concurrently; retry`),
    );
    this.view.applyEntry(key, "PUT", revision, encodeDevice(next));
    return deviceInfo(deviceId, next);
  }

  /** Stops the import publisher (imports in flight fail). */
  close(): void {
    this.publisher?.close();
  }

  private async eraseTwin(deviceId: string): Promise<void> {
    const erase = this.config.eraseTwin;
    if (erase === undefined) return;
    try {
      await erase(deviceId);
    } catch (err) {
      throw new RuntimeError("NATS_UNAVAILABLE", `the twin of device "${deviceId}" could not be erased (nothing changed; retry): ${(err as Error).message}`, { cause: err });
    }
  }

  private async lastRevision(key: string): Promise<number> {
    const e = await this.kv.get(key);
    return e?.revision ?? 0;
  }

  /**
   * Runs a KV write. A compare-and-set conflict becomes `onConflict()`'s error; any other failure means
   * the registry cannot be reached: AIRTWIN_ERR_NATS_UNAVAILABLE (503, retry).
   */
  private async write<T>(op: () => Promise<T>, onConflict?: () => Error): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (onConflict !== undefined && isCasConflict(err)) throw onConflict();
      if (err instanceof GatewayError) throw err;
      throw new RuntimeError("NATS_UNAVAILABLE", `the registry could not be written: ${(err as Error).message}`, { cause: err });
    }
  }
}
