// Records of the registry bucket (`<prefix>-registry`), MessagePack like every airtwin NATS payload:
// `devices.<deviceId>` → DeviceRecord, `users.<userId>` → UserRecord. Digests are lowercase hex.
// DeviceInfo and UserInfo are what the API shows of them (no secrets).
import { decode, encode } from "../../runtime/mod.ts";

/** A registered device. */
export interface DeviceRecord {
  /** The user who owns it (user API keys see only their own devices). */
  ownerId: string;
  /** SHA-256 of the device token, hex. The token itself is shown once and never stored. */
  tokenSha256: string;
  /** Wall clock of registration (ms). */
  createdAt: number;
  /** A disabled device's token is refused, as if it were unknown. */
  disabled: boolean;
}

/** A registered user. */
export interface UserRecord {
  /** SHA-256 of the API key, hex. */
  apiKeySha256: string;
  /** Wall clock of registration (ms). */
  createdAt: number;
}

/** A device as the API shows it (no secrets). */
export interface DeviceInfo {
  deviceId: string;
  ownerId: string;
  createdAt: number;
  disabled: boolean;
}

/** A user as the API shows it (no secrets). */
export interface UserInfo {
  userId: string;
  createdAt: number;
}

/** What the API shows of a device record. */
export function deviceInfo(deviceId: string, r: DeviceRecord): DeviceInfo {
  return { deviceId, ownerId: r.ownerId, createdAt: r.createdAt, disabled: r.disabled };
}

export const DEVICE_PREFIX = "devices.";
export const USER_PREFIX = "users.";
export const deviceKey = (deviceId: string): string => `${DEVICE_PREFIX}${deviceId}`;
export const userKey = (userId: string): string => `${USER_PREFIX}${userId}`;

const HEX_DIGEST = /^[0-9a-f]{64}$/;
const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** True for a valid user id: 1–64 of [A-Za-z0-9_-] (it becomes a KV key token). */
export function isValidUserId(id: unknown): id is string {
  return typeof id === "string" && ID.test(id);
}

export function encodeDevice(r: DeviceRecord): Uint8Array {
  return encode({ ownerId: r.ownerId, tokenSha256: r.tokenSha256, createdAt: r.createdAt, disabled: r.disabled });
}

export function encodeUser(r: UserRecord): Uint8Array {
  return encode({ apiKeySha256: r.apiKeySha256, createdAt: r.createdAt });
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Decodes a device record; undefined when malformed (the entry is then treated as absent). */
export function decodeDevice(bytes: Uint8Array): DeviceRecord | undefined {
  let r: unknown;
  try {
    r = decode(bytes);
  } catch {
    return undefined;
  }
  if (!isRecord(r) || !isValidUserId(r.ownerId) || typeof r.tokenSha256 !== "string" || !HEX_DIGEST.test(r.tokenSha256)) return undefined;
  if (typeof r.createdAt !== "number") return undefined;
  return { ownerId: r.ownerId, tokenSha256: r.tokenSha256, createdAt: r.createdAt, disabled: r.disabled === true };
}

/** Decodes a user record; undefined when malformed. */
export function decodeUser(bytes: Uint8Array): UserRecord | undefined {
  let r: unknown;
  try {
    r = decode(bytes);
  } catch {
    return undefined;
  }
  if (!isRecord(r) || typeof r.apiKeySha256 !== "string" || !HEX_DIGEST.test(r.apiKeySha256) || typeof r.createdAt !== "number") return undefined;
  return { apiKeySha256: r.apiKeySha256, createdAt: r.createdAt };
}
