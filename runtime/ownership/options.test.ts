import { describe, expect, it } from "vitest";
import { isRuntimeError } from "../errors.ts";
import { resolveOwnershipConfig } from "./options.ts";

describe("resolveOwnershipConfig", () => {
  it("defaults: heartbeat 1 s, node and lease TTL 5 s, give up 1 s early, 8 moves a round", () => {
    const c = resolveOwnershipConfig();
    expect(c).toMatchObject({
      heartbeatMs: 1000,
      nodeTtlMs: 5000,
      leaseTtlMs: 5000,
      leaseSafetyMs: 1000,
      rebalanceIntervalMs: 1000,
      maxMoves: 8,
      weighted: false,
      closeConcurrency: 8,
      closeTimeoutMs: 15_000,
      watchStaleMs: 3000,
      forgetDeadNodeMs: 60_000,
      requestTimeoutMs: 2000,
      coordinator: true,
    });
  });

  it("derives the TTLs and margins from a faster heartbeat", () => {
    expect(resolveOwnershipConfig({ heartbeatMs: 200, nodeTtlMs: 1000 })).toMatchObject({ leaseTtlMs: 1000, leaseSafetyMs: 200, watchStaleMs: 600 });
  });

  it.each([
    [{ heartbeatMs: 0 }, "heartbeatMs"],
    [{ heartbeatMs: 1.5 }, "heartbeatMs"],
    [{ heartbeatMs: 1000, leaseTtlMs: 1500 }, "leaseTtlMs"],
    [{ heartbeatMs: 1000, nodeTtlMs: 1999 }, "nodeTtlMs"],
    [{ heartbeatMs: 1000, leaseTtlMs: 3000, leaseSafetyMs: 2000 }, "leaseSafetyMs"],
    [{ maxMoves: 0 }, "maxMoves"],
  ])("refuses %o naming %s", (options, field) => {
    let err: unknown;
    try {
      resolveOwnershipConfig(options);
    } catch (e) {
      err = e;
    }
    expect(isRuntimeError(err, "CONFIG_INVALID")).toBe(true);
    expect((err as { details: { field: string } }).details.field).toBe(field);
  });
});
