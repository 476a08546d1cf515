// The registry against a real nats-server: what one gateway (or `airtwin ops`) writes reaches another
// gateway's view within a second — revocation included — and keeps doing so after NATS restarts.
import { describe, expect, it } from "vitest";
import { waitFor } from "../harness/wait-for.ts";
import { registryHarness } from "./registry-harness.ts";

const harness = registryHarness();
const { open } = harness;
let n = 0;

describe("registry", () => {
  it("stores only digests, verifies in constant time, and answers the same for unknown and wrong", async () => {
    const prefix = `reg${++n}`;
    const a = await open(prefix);
    const { apiKey } = await a.createUser("u1");
    const { token } = await a.createDevice("d1", "u1");
    expect(a.verifyDevice("d1", token)).toBe(true);
    expect(a.verifyDevice("d1", token)).toBe(true); // the verified token, kept: a compare instead of a digest
    expect(a.verifyDevice("d1", `${token}x`)).toBe(false);
    const last = token.at(-1) === "A" ? "B" : "A";
    expect(a.verifyDevice("d1", `${token.slice(0, -1)}${last}`)).toBe(false); // same length, last character differs
    expect(a.verifyDevice("d1", token)).toBe(true);
    expect(a.verifyDevice("d2", token)).toBe(false);
    expect(a.verifyApiKey(apiKey)).toBe("u1");
    expect(a.verifyApiKey(`${apiKey}x`)).toBeUndefined();
    expect(a.verifyApiKey("u2.whatever")).toBeUndefined();
    expect(a.verifyApiKey("no-dot")).toBeUndefined();
    // a second gateway loads what exists
    const b = await open(prefix);
    expect(b.device("d1")).toEqual({ deviceId: "d1", ownerId: "u1", createdAt: expect.any(Number), disabled: false });
    expect(b.verifyDevice("d1", token)).toBe(true);
  });

  it("erases the twin before registering and before unregistering a device; when that fails, nothing changes", async () => {
    const prefix = `reg${++n}`;
    const erased: string[] = [];
    let failing = false;
    const a = await open(prefix, async (id) => {
      if (failing) throw new Error("no PubAck");
      erased.push(id);
    });
    await a.createUser("u1");
    await a.createDevice("d1", "u1");
    expect(erased).toEqual(["d1"]);
    // an existing id is refused before anything is erased
    await expect(a.createDevice("d1", "u1")).rejects.toMatchObject({ code: "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS" });
    expect(erased).toEqual(["d1"]);
    failing = true;
    await expect(a.createDevice("d2", "u1")).rejects.toMatchObject({ code: "AIRTWIN_ERR_NATS_UNAVAILABLE" });
    expect(a.device("d2")).toBeUndefined();
    await expect(a.deleteDevice("d1")).rejects.toMatchObject({ code: "AIRTWIN_ERR_NATS_UNAVAILABLE" });
    expect(a.device("d1")).toBeDefined();
    failing = false;
    await a.deleteDevice("d1");
    expect(erased).toEqual(["d1", "d1"]);
    expect(a.device("d1")).toBeUndefined();
    const b = await open(prefix);
    await waitFor(() => b.device("d1") === undefined && b.device("d2") === undefined, { message: "the refused writes left nothing behind" });
  });

  it("revokes a token on every gateway within a second (delete and disable)", async () => {
    const prefix = `reg${++n}`;
    const a = await open(prefix);
    const b = await open(prefix);
    await a.createUser("u1");
    const { token } = await a.createDevice("d1", "u1");
    await waitFor(() => b.verifyDevice("d1", token), { timeoutMs: 1000, message: "b sees the new device" });

    await a.setDeviceDisabled("d1", true);
    expect(a.verifyDevice("d1", token)).toBe(false); // its token verified before, now disabled
    await waitFor(() => !b.verifyDevice("d1", token), { timeoutMs: 1000, message: "b refuses the disabled device" });
    await a.setDeviceDisabled("d1", false);
    await waitFor(() => b.verifyDevice("d1", token), { timeoutMs: 1000 });

    const started = Date.now();
    await a.deleteDevice("d1");
    expect(a.verifyDevice("d1", token)).toBe(false); // the writer at once
    await waitFor(() => !b.verifyDevice("d1", token), { timeoutMs: 1000, message: "b refuses the deleted device" });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("keeps its view fed after the NATS server restarts", async () => {
    const prefix = `reg${++n}`;
    const a = await open(prefix);
    const b = await open(prefix);
    await a.createUser("u1");
    await harness.server.restart();
    const { token } = await waitFor(() => a.createDevice("d-after", "u1").catch(() => undefined), { timeoutMs: 15_000, message: "write after restart" });
    await waitFor(() => b.verifyDevice("d-after", token), { timeoutMs: 10_000, message: "b sees a write made after the restart" });
    await a.deleteDevice("d-after");
    await waitFor(() => !b.verifyDevice("d-after", token), { timeoutMs: 1000, message: "revocation after the restart" });
  });
});
