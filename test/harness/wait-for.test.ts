// waitFor polls until a condition holds and fails with a clear message at its deadline; free ports are free.

import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { getFreePort, getFreePorts, isPortFree } from "./free-port.ts";
import { waitFor, WaitForTimeoutError } from "./wait-for.ts";

describe("waitFor", () => {
  it("returns the first truthy value, treating throws as not yet", async () => {
    let calls = 0;
    const v = await waitFor(() => {
      calls++;
      if (calls < 3) throw new Error("not yet");
      return calls === 3 ? 0 : { calls };
    }, { intervalMs: 1 });
    expect(v).toEqual({ calls: 4 });
  });

  it("throws WaitForTimeoutError naming what was awaited and the last error", async () => {
    const started = Date.now();
    const err = await waitFor(() => {
      throw new Error("still down");
    }, { timeoutMs: 100, intervalMs: 10, message: "server up" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitForTimeoutError);
    expect((err as Error).message).toMatch(/^server up not met within 100 ms \(last error: still down\)/);
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });
});

describe("free ports", () => {
  it("gives distinct bindable ports and sees a taken one", async () => {
    const ports = await getFreePorts(5);
    expect(new Set(ports).size).toBe(5);
    const port = await getFreePort();
    expect(await isPortFree(port)).toBe(true);
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(port, "127.0.0.1", r));
    expect(await isPortFree(port)).toBe(false);
    await new Promise((r) => srv.close(r));
    expect(await isPortFree(port)).toBe(true);
  });
});
