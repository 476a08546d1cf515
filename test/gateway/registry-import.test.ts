// The registry's bulk import against a real nats-server: every entry checked before anything is
// written, each imported device verifiable by its token on another gateway, a deleted id imported
// again over its tombstone, already registered ids reported and left alone, and a failed erasure
// reported per device with nothing registered for it.
import { describe, expect, it } from "vitest";
import { DEVICE_IMPORT_MAX, parseImportLines } from "../../gateways/registry/device-import.ts";
import { waitFor } from "../harness/wait-for.ts";
import { registryHarness } from "./registry-harness.ts";

const harness = registryHarness();
const { open } = harness;
let n = 0;

describe("registry import", () => {
  it("registers every device with a token of its own, erasing each twin first, seen by another gateway", async () => {
    const prefix = `imp${++n}`;
    const erased: string[] = [];
    const a = await open(prefix, async (id) => void erased.push(id));
    await a.createUser("u1");
    const entries = Array.from({ length: 3000 }, (_, i) => ({ deviceId: `d${i}`, ownerId: "u1" }));
    const results = await a.importDevices(entries);
    expect(results.map((r) => r.deviceId)).toEqual(entries.map((e) => e.deviceId));
    expect(new Set(erased)).toEqual(new Set(entries.map((e) => e.deviceId)));
    const b = await open(prefix);
    await waitFor(() => b.size.devices === 3000);
    for (const r of results) {
      expect("token" in r).toBe(true);
      if ("token" in r) expect(b.verifyDevice(r.deviceId, r.token)).toBe(true);
    }
    expect(b.device("d7")).toEqual({ deviceId: "d7", ownerId: "u1", createdAt: expect.any(Number), disabled: false });
  });

  it("refuses the whole import for any bad entry, naming each, and registers nothing", async () => {
    const prefix = `imp${++n}`;
    const erased: string[] = [];
    const a = await open(prefix, async (id) => void erased.push(id));
    await a.createUser("u1");
    const bad = [
      { deviceId: "ok-1", ownerId: "u1" },
      { deviceId: "bad.id", ownerId: "u1" },
      { deviceId: "ok-2", ownerId: "nobody" },
      { deviceId: "ok-1", ownerId: "u1" },
    ];
    const err = (await a.importDevices(bad).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code: string; details: unknown };
    expect(err).toMatchObject({ code: "AIRTWIN_ERR_REGISTRY_IMPORT_INVALID" });
    expect(err.details).toEqual([
      { index: 1, field: "deviceId", message: expect.any(String) },
      { index: 2, field: "ownerId", message: "must be a registered user" },
      { index: 3, field: "deviceId", message: '"ok-1" is listed twice' },
    ]);
    const tooMany = Array.from({ length: DEVICE_IMPORT_MAX + 1 }, (_, i) => ({ deviceId: `x${i}`, ownerId: "u1" }));
    await expect(a.importDevices(tooMany)).rejects.toMatchObject({ code: "AIRTWIN_ERR_REGISTRY_IMPORT_INVALID" });
    await expect(a.importDevices([])).rejects.toMatchObject({ code: "AIRTWIN_ERR_REGISTRY_IMPORT_INVALID" });
    expect(erased).toEqual([]);
    expect(a.size.devices).toBe(0);
  });

  it("reports registered ids and leaves them alone, imports a deleted id again, and reports a failed erasure per device", async () => {
    const prefix = `imp${++n}`;
    let failFor = "";
    const a = await open(prefix, async (id) => {
      if (id === failFor) throw new Error("no PubAck");
    });
    await a.createUser("u1");
    const { token: kept } = await a.createDevice("kept", "u1");
    await a.createDevice("gone", "u1");
    await a.deleteDevice("gone");
    failFor = "unlucky";
    const results = await a.importDevices(["kept", "gone", "unlucky", "new"].map((deviceId) => ({ deviceId, ownerId: "u1" })));
    expect(results[0]).toMatchObject({ deviceId: "kept", code: "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS" });
    expect(results[1]).toMatchObject({ deviceId: "gone", token: expect.any(String) });
    expect(results[2]).toMatchObject({ deviceId: "unlucky", code: "AIRTWIN_ERR_NATS_UNAVAILABLE" });
    expect(results[3]).toMatchObject({ deviceId: "new", token: expect.any(String) });
    expect(a.verifyDevice("kept", kept)).toBe(true);
    expect(a.device("unlucky")).toBeUndefined();
    const b = await open(prefix);
    expect(b.verifyDevice("gone", (results[1] as { token: string }).token)).toBe(true);
    expect(b.device("unlucky")).toBeUndefined();
    // run again: everything there is reported, the missing one registered
    failFor = "";
    const again = await a.importDevices(["kept", "gone", "unlucky", "new"].map((deviceId) => ({ deviceId, ownerId: "u1" })));
    expect(again.map((r) => ("token" in r ? "token" : r.code))).toEqual([
      "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS",
      "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS",
      "token",
      "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS",
    ]);
  });

  it("parses an import file: ids, CSV with owners and a header, JSON lines", () => {
    const text = 'deviceId,ownerId\nd1\nd2, u2\n\n{"deviceId":"d3","ownerId":"u3"}\n{"deviceId":"d4"}\n{broken\n';
    expect(parseImportLines(text, "u0")).toEqual([
      { deviceId: "d1", ownerId: "u0" },
      { deviceId: "d2", ownerId: "u2" },
      { deviceId: "d3", ownerId: "u3" },
      { deviceId: "d4", ownerId: "u0" },
      { deviceId: undefined, ownerId: "u0" },
    ]);
  });
});
