// Token digests: SHA-256 (whichever Node API computes it) and the constant-time match.
import { describe, expect, it } from "vitest";
import { sameSecret, secretMatches, sha256, sha256Hex } from "../../gateways/registry/secrets.ts";

describe("secrets", () => {
  it("digests with SHA-256 of the UTF-8 bytes", () => {
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256("é").toString("hex")).toBe("4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c");
  });

  it("matches a secret against its digest only", () => {
    const digest = sha256("s3cret");
    expect(secretMatches("s3cret", digest)).toBe(true);
    expect(secretMatches("s3cret!", digest)).toBe(false);
    expect(secretMatches("s3cret", undefined)).toBe(false);
  });

  it("compares secrets whole: equal strings only, whatever character differs", () => {
    const t = "a".repeat(42) + "b";
    const known = Buffer.from(t, "latin1");
    expect(sameSecret(t, known)).toBe(true);
    expect(sameSecret(`${t}`.slice(0), known)).toBe(true);
    expect(sameSecret("b" + t.slice(1), known)).toBe(false);
    expect(sameSecret(t.slice(0, -1) + "c", known)).toBe(false);
    expect(sameSecret(t.slice(0, -1), known)).toBe(false);
    expect(sameSecret("", new Uint8Array())).toBe(true);
    // a secret kept inside a larger arena: only its own bytes count
    const arena = Buffer.concat([Buffer.from("xyz"), known, Buffer.from("tail")]);
    expect(sameSecret(t, arena, 3, t.length)).toBe(true);
    expect(sameSecret(t, arena, 2, t.length)).toBe(false);
    expect(sameSecret(`${t}t`, arena, 3, t.length)).toBe(false);
    // a character past U+00FF never equals a byte
    expect(sameSecret(`${t.slice(0, -1)}\u0162`, known)).toBe(false);
  });
});
