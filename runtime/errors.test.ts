// RuntimeError carries its catalogue code, message, details and cause; codes are well-formed and unique.

import { describe, expect, it } from "vitest";
import { isRuntimeError, RuntimeError, RuntimeErrors } from "./errors.ts";

describe("RuntimeErrors", () => {
  it("has well-formed, unique codes", () => {
    const codes = Object.values(RuntimeErrors).map((e) => e.code);
    for (const code of codes) expect(code).toMatch(/^AIRTWIN_ERR_[A-Z0-9]+(_[A-Z0-9]+)+$/);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe("RuntimeError", () => {
  it("takes code and default message from the catalogue", () => {
    const e = new RuntimeError("LEASE_FENCED");
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("RuntimeError");
    expect(e.code).toBe("AIRTWIN_ERR_LEASE_FENCED");
    expect(e.message).toBe(RuntimeErrors.LEASE_FENCED.message);
    expect(e.details).toBeUndefined();
    expect("cause" in e).toBe(false);
  });

  it("keeps a specific message, details and cause", () => {
    const cause = new Error("boom");
    const e = new RuntimeError("SHARDS_MISMATCH", "cluster has 64 shards, config says 32", { cause, details: { expected: 64, configured: 32 } });
    expect(e.message).toBe("cluster has 64 shards, config says 32");
    expect(e.cause).toBe(cause);
    expect(e.details).toEqual({ expected: 64, configured: 32 });
  });

  it("is recognised by isRuntimeError, by entry", () => {
    const e = new RuntimeError("ENTITY_UNKNOWN");
    expect(isRuntimeError(e)).toBe(true);
    expect(isRuntimeError(e, "ENTITY_UNKNOWN")).toBe(true);
    expect(isRuntimeError(e, "REQUEST_TIMEOUT")).toBe(false);
    expect(isRuntimeError(new Error("x"))).toBe(false);
  });
});
