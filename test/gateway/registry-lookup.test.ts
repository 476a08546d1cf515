// A gateway asked about a device its registry view does not know yet — registered through another
// gateway while its watch is behind — reads the entry once from the bucket (docs/gateway.md, Registry):
// the device is known at once, a deleted one stays unknown, and a flood of unknown ids never has more
// lookups on NATS than the cap. "Behind" is made real: the second view's watch is stopped (as after a
// reconnect) and only reopens seconds later.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { registryBucket, type Registry } from "../../gateways/registry/registry.ts";
import { waitFor } from "../harness/wait-for.ts";
import { registryHarness } from "./registry-harness.ts";

const harness = registryHarness();
const { open } = harness;
let n = 0;

/** A view whose watch, once stopped, stays stopped for 5 s (the longest reopen pause). */
const LAGGING = { retryMs: 5000 };

function behind(registry: Registry): void {
  registry.rewatch("test: this view's watch is behind");
}

/** Counts the registry reads that reach NATS: message gets on the bucket's stream. */
async function readsOf(prefix: string): Promise<{ count: number; settled(): Promise<number> }> {
  const nc = await harness.connect();
  const counter = {
    count: 0,
    async settled() {
      await nc.flush();
      return counter.count;
    },
  };
  nc.subscribe(`$JS.API.STREAM.MSG.GET.KV_${registryBucket(prefix)}`, { callback: () => void counter.count++ });
  await nc.flush();
  return counter;
}

describe("registry lookup of a device the view does not know", () => {
  it("knows a device registered through another gateway at once, its watch behind", async () => {
    const prefix = `look${++n}`;
    const a = await open(prefix);
    const b = await open(prefix, undefined, LAGGING);
    await a.createUser("u1");
    await waitFor(() => b.user("u1") !== undefined, { message: "b has the user" });
    behind(b);
    const { token } = await a.createDevice("d1", "u1");
    expect(b.verifyDevice("d1", token)).toBe(false); // the view alone does not know it
    expect(await b.lookUpDevice("d1")).toBe("found");
    expect(b.verifyDevice("d1", token)).toBe(true);
    expect(b.verifyDevice("d1", `${token}x`)).toBe(false);
    expect(b.device("d1")).toEqual({ deviceId: "d1", ownerId: "u1", createdAt: expect.any(Number), disabled: false });
    // the watch, reopened, brings the same entry and later ones
    await a.setDeviceDisabled("d1", true);
    await waitFor(() => b.device("d1")?.disabled === true, { timeoutMs: 10_000, message: "the reopened watch brings the disable" });
    expect(b.verifyDevice("d1", token)).toBe(false);
  });

  it("keeps a deleted device rejected: the lookup reads its tombstone, and asks again only after the short negative cache", async () => {
    const prefix = `look${++n}`;
    const a = await open(prefix);
    const b = await open(prefix, undefined, { ...LAGGING, lookup: { absentTtlMs: 300 } });
    await a.createUser("u1");
    behind(b);
    const { token } = await a.createDevice("gone", "u1");
    await a.deleteDevice("gone");
    const reads = await readsOf(prefix);
    expect(await b.lookUpDevice("gone")).toBe("absent");
    expect(b.verifyDevice("gone", token)).toBe(false);
    expect(await b.lookUpDevice("gone")).toBe("absent");
    expect(await b.lookUpDevice("never-registered")).toBe("absent");
    expect(await reads.settled()).toBe(2); // "gone" once, "never-registered" once
    await new Promise((r) => setTimeout(r, 350)); // the 300 ms of the negative cache pass
    expect(await b.lookUpDevice("gone")).toBe("absent");
    expect(await reads.settled()).toBe(3);
    expect(b.device("gone")).toBeUndefined();
    // registered again: the absent answer is forgotten when the entry is found
    const again = await a.createDevice("gone", "u1");
    expect(await b.lookUpDevice("gone")).toBe("absent"); // still cached: the watch is behind, 300 ms not over
    await new Promise((r) => setTimeout(r, 350)); // the 300 ms of the negative cache pass
    expect(await b.lookUpDevice("gone")).toBe("found");
    expect(b.verifyDevice("gone", again.token)).toBe(true);
    expect(b.verifyDevice("gone", token)).toBe(false);
  });

  it("never leaves a deleted device in the view when a lookup races its delete", async () => {
    const prefix = `look${++n}`;
    const a = await open(prefix);
    const b = await open(prefix);
    await a.createUser("u1");
    for (let i = 0; i < 20; i++) {
      const id = `race-${i}`;
      const { token } = await a.createDevice(id, "u1");
      // b's watch may or may not have brought the entry; the lookup's answer may come before or after the delete's
      await Promise.all([b.lookUpDevice(id), a.deleteDevice(id)]);
      // a lookup's PUT applied after the watch's DEL (older revision) would keep it here for good
      await waitFor(() => b.device(id) === undefined, { timeoutMs: 1000, message: `b drops ${id}` });
      expect(b.verifyDevice(id, token)).toBe(false);
      expect(await b.lookUpDevice(id)).toBe("absent");
      expect(b.device(id)).toBeUndefined();
    }
  });

  it("has at most maxInFlight lookups on NATS in a flood of unknown ids; the others answer busy without asking", async () => {
    const prefix = `look${++n}`;
    await open(prefix);
    const b = await open(prefix, undefined, { lookup: { maxInFlight: 4 } });
    const reads = await readsOf(prefix);
    const ids = Array.from({ length: 200 }, () => `x${randomBytes(8).toString("hex")}`);
    const lookups = ids.map((id) => b.lookUpDevice(id));
    expect(b.lookupsInFlight).toBe(4);
    const outcomes = await Promise.all(lookups);
    expect(outcomes.filter((o) => o === "absent")).toHaveLength(4);
    expect(outcomes.filter((o) => o === "busy")).toHaveLength(196);
    expect(await reads.settled()).toBe(4);
    expect(b.lookupsInFlight).toBe(0);
    // the same flood again: the four found absent answer from the negative cache, four new ones are asked
    const again = await Promise.all(ids.map((id) => b.lookUpDevice(id)));
    expect(again.filter((o) => o === "absent")).toHaveLength(8);
    expect(await reads.settled()).toBe(8);
    // one id asked by many requests at once is one lookup
    const same = await Promise.all(Array.from({ length: 50 }, () => b.lookUpDevice("one-id")));
    expect(new Set(same)).toEqual(new Set(["absent"]));
    expect(await reads.settled()).toBe(9);
  });
});
