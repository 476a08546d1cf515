// The bound on remembered absent ids (UnknownDeviceLookup's negative cache): the one remembered first is
// forgotten first, a lookup answered from the cache does not change that order, and an expired answer
// asks again. (The lookups against a real registry bucket are registry-lookup.test.ts.)
import { describe, expect, it } from "vitest";
import { UnknownDeviceLookup } from "../../gateways/registry/unknown-device-lookup.ts";

function lookup(absentMax: number) {
  const asked: string[] = [];
  const l = new UnknownDeviceLookup(async (id) => (asked.push(id), false), { absentMax, absentTtlMs: 1000 });
  return { l, asked };
}

describe("unknown device lookup, absent ids remembered", () => {
  it("forgets the id remembered first once more than absentMax are remembered", async () => {
    const { l, asked } = lookup(2);
    for (const id of ["a", "b"]) expect(await l.lookUp(id, 0)).toBe("absent");
    expect(await l.lookUp("a", 10)).toBe("absent"); // from the cache: not asked, order unchanged
    expect(await l.lookUp("c", 20)).toBe("absent"); // remembering c forgets a (remembered first)
    expect(asked).toEqual(["a", "b", "c"]);
    expect(await l.lookUp("b", 30)).toBe("absent");
    expect(await l.lookUp("a", 30)).toBe("absent");
    expect(asked).toEqual(["a", "b", "c", "a"]);
  });

  it("asks again once an absent answer has expired", async () => {
    const { l, asked } = lookup(10);
    await l.lookUp("a"); // remembered until ~1 s from now (the clock of the answer)
    await l.lookUp("a", Date.now() + 500);
    await l.lookUp("a", Date.now() + 1500);
    expect(asked).toEqual(["a", "a"]);
  });

  it("stays bounded and quick with many more ids than it keeps", async () => {
    const { l, asked } = lookup(1000);
    for (let i = 0; i < 20_000; i++) await l.lookUp(`x${i}`, i);
    expect(asked).toHaveLength(20_000);
    expect(await l.lookUp("x19999", 20_000)).toBe("absent");
    expect(await l.lookUp("x0", 20_000)).toBe("absent");
    expect(asked).toHaveLength(20_001); // x19999 answered from the cache, x0 long forgotten
  });
});
