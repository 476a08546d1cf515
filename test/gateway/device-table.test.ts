// The registry view's packed devices: records, revisions (deletes remembered), verified tokens (kept,
// wiped with their device, never carried into a reused slot), owners, and more devices than one chunk.
import { describe, expect, it } from "vitest";
import { DeviceTable } from "../../gateways/registry/device-table.ts";
import type { DeviceRecord } from "../../gateways/registry/records.ts";
import { newDeviceToken, sha256Hex } from "../../gateways/registry/secrets.ts";

const record = (token: string, over: Partial<DeviceRecord> = {}): DeviceRecord => ({ ownerId: "u1", tokenSha256: sha256Hex(token), createdAt: 1_764_800_000_123, disabled: false, ...over });

describe("DeviceTable", () => {
  it("holds what the API shows and the revision of each device, deletes included", () => {
    const t = new DeviceTable();
    t.put("d1", 7, record("x", { createdAt: 1.5 }));
    t.put("d2", 8, record("y", { ownerId: "u2", disabled: true }));
    expect(t.size).toBe(2);
    expect(t.info("d1")).toEqual({ deviceId: "d1", ownerId: "u1", createdAt: 1.5, disabled: false });
    expect(t.info("d2")).toEqual({ deviceId: "d2", ownerId: "u2", createdAt: 1_764_800_000_123, disabled: true });
    expect(t.info("d3")).toBeUndefined();
    expect([t.revision("d1"), t.revision("d2"), t.revision("d3")]).toEqual([7, 8, 0]);
    t.remove("d1", 2 ** 40);
    expect(t.has("d1")).toBe(false);
    expect(t.info("d1")).toBeUndefined();
    expect(t.revision("d1")).toBe(2 ** 40);
    t.remove("never", 11);
    expect(t.revision("never")).toBe(11);
    expect(t.size).toBe(1);
    t.put("d1", 2 ** 40 + 1, record("z"));
    expect(t.revision("d1")).toBe(2 ** 40 + 1);
  });

  it("lists devices, of one owner if asked", () => {
    const t = new DeviceTable();
    t.put("a", 1, record("a"));
    t.put("b", 2, record("b", { ownerId: "u2" }));
    t.put("c", 3, record("c"));
    expect(t.list().map((d) => d.deviceId).sort()).toEqual(["a", "b", "c"]);
    expect(t.list("u1").map((d) => d.deviceId).sort()).toEqual(["a", "c"]);
    expect(t.list("u2")).toEqual([{ deviceId: "b", ownerId: "u2", createdAt: 1_764_800_000_123, disabled: false }]);
    expect(t.list("nobody")).toEqual([]);
  });

  it("verifies tokens: right, wrong, disabled, unknown; a replaced record forgets the verified token", () => {
    const t = new DeviceTable();
    const token = newDeviceToken();
    t.put("d1", 1, record(token));
    expect(t.verify("d1", token)).toBe(true);
    expect(t.verify("d1", token)).toBe(true); // kept: a compare instead of a hash
    expect(t.verify("d1", `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`)).toBe(false);
    expect(t.verify("d1", token.slice(0, -1))).toBe(false);
    expect(t.verify("d2", token)).toBe(false);
    t.put("d1", 2, record(token, { disabled: true }));
    expect(t.verify("d1", token)).toBe(false);
    expect(t.verify("d1", token)).toBe(false);
    const other = newDeviceToken();
    t.put("d1", 3, record(other));
    expect(t.verify("d1", token)).toBe(false); // the old token, verified before, is not kept across a new record
    expect(t.verify("d1", other)).toBe(true);
  });

  it("refuses a removed device; its reused slot and a re-registration start without the verified token", () => {
    const t = new DeviceTable();
    const token = newDeviceToken();
    t.put("d1", 1, record(token));
    expect(t.verify("d1", token)).toBe(true);
    t.remove("d1", 2);
    expect(t.verify("d1", token)).toBe(false);
    const other = newDeviceToken();
    t.put("d9", 3, record(other)); // takes d1's slot
    expect(t.verify("d9", token)).toBe(false);
    expect(t.verify("d9", other)).toBe(true);
    t.put("d1", 4, record(newDeviceToken()));
    expect(t.verify("d1", token)).toBe(false);
  });

  it("verifies tokens it does not keep (longer than a device token, or past latin-1) on every call", () => {
    const t = new DeviceTable();
    for (const token of ["x".repeat(100), `ţ${"a".repeat(20)}`, "a"]) {
      t.put("d", 1, record(token));
      expect(t.verify("d", token)).toBe(true);
      expect(t.verify("d", token)).toBe(true);
      expect(t.verify("d", `${token}!`)).toBe(false);
      t.remove("d", 2);
    }
  });

  it("holds more devices than one chunk, ids of any length", () => {
    const t = new DeviceTable();
    const n = 10_000;
    const tokens = Array.from({ length: n }, (_, i) => `token-${i}`);
    const id = (i: number) => `device-with-a-long-id-${i}`;
    for (let i = 0; i < n; i++) t.put(id(i), i + 1, record(tokens[i]!, { createdAt: i }));
    for (let i = 0; i < n; i += 7) t.remove(id(i), n + i);
    for (let i = 0; i < n; i++) {
      expect(t.verify(id(i), tokens[i]!)).toBe(i % 7 !== 0);
      expect(t.info(id(i))?.createdAt).toBe(i % 7 === 0 ? undefined : i);
    }
    expect(t.size).toBe(n - Math.ceil(n / 7));
  });
});
