import { errors as natsErrors } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { askAgain, backoffMs, retry, worthAskingAgain } from "./backoff.ts";

/** What nats.js throws for a JetStream request nobody answered at once (its class is not exported). */
function noJetStreamLeader(): Error {
  const err = new Error("jetstream is not enabled");
  err.name = "JetStreamNotEnabled";
  return err;
}

/** A request that fails with each of `failures` in turn, then answers `value`. */
function flaky<T>(failures: Error[], value: T): { request: () => Promise<T>; calls: () => number } {
  let n = 0;
  return {
    request: async () => {
      const err = failures[n++];
      if (err !== undefined) throw err;
      return value;
    },
    calls: () => n,
  };
}

describe("asking JetStream again", () => {
  it("asks again after timeouts and while no JetStream leader answers", async () => {
    const r = flaky([new natsErrors.TimeoutError(), noJetStreamLeader(), new natsErrors.TimeoutError()], "created");
    await expect(askAgain(r.request, { withinMs: 5000, pauseMs: 1 })).resolves.toBe("created");
    expect(r.calls()).toBe(4);
  });

  it("gives any other failure back at once", async () => {
    const refused = new Error("consumer name already in use");
    const r = flaky([refused], "never");
    await expect(askAgain(r.request, { withinMs: 5000 })).rejects.toBe(refused);
    expect(r.calls()).toBe(1);
    expect(worthAskingAgain(refused)).toBe(false);
  });

  it("asks again after the failures a caller adds (alsoWhen), and only those", async () => {
    const notFound = new Error("stream not found");
    const r = flaky([notFound, new natsErrors.TimeoutError(), notFound], "status");
    const alsoWhen = (err: unknown) => err === notFound;
    await expect(askAgain(r.request, { withinMs: 5000, pauseMs: 1, alsoWhen })).resolves.toBe("status");
    expect(r.calls()).toBe(4);
    const refused = new Error("bucket configuration differs");
    await expect(askAgain(flaky([refused], "never").request, { withinMs: 5000, alsoWhen })).rejects.toBe(refused);
  });

  it("stops asking at the deadline, or once the start was stopped, with the last failure", async () => {
    const always = () => Promise.reject(noJetStreamLeader());
    const t0 = performance.now();
    await expect(askAgain(always, { withinMs: 60, pauseMs: 10 })).rejects.toThrow("jetstream is not enabled");
    expect(performance.now() - t0).toBeLessThan(1000);
    const r = flaky([new natsErrors.TimeoutError(), new natsErrors.TimeoutError()], "late");
    await expect(askAgain(r.request, { withinMs: 5000, stopped: () => r.calls() >= 1 })).rejects.toBeInstanceOf(natsErrors.TimeoutError);
    expect(r.calls()).toBe(1);
  });
});

describe("backoff", () => {
  it("doubles from the first pause up to the longest", () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffMs({ firstMs: 250, maxMs: 5000 }, n))).toEqual([250, 500, 1000, 2000, 4000, 5000]);
    expect([0, 3].map((n) => backoffMs({ firstMs: 250, maxMs: 250 }, n))).toEqual([250, 250]);
  });

  it("retry pauses by the backoff between attempts, numbering them, and returns the first success", async () => {
    const began: number[] = [];
    const t0 = performance.now();
    const value = await retry(
      async (n) => {
        began.push(performance.now() - t0);
        if (n < 3) throw new Error(`attempt ${n}`);
        return n;
      },
      { withinMs: 10_000, backoff: { firstMs: 20, maxMs: 40 } },
    );
    expect(value).toBe(3);
    // pauses 20, 40, 40 (timers may fire late on a busy machine, never early)
    const gaps = began.slice(1).map((t, i) => t - began[i]!);
    expect(gaps.map((g) => g >= 19)).toEqual([true, true, true]);
    expect(gaps[1]! >= 39 && gaps[2]! >= 39).toBe(true);
  });

  it("retry gives up with the last failure when not retryable, stopped or out of time", async () => {
    let n = 0;
    const failing = async () => {
      throw new Error(`failure ${n++}`);
    };
    await expect(retry(failing, { withinMs: 10_000, backoff: { firstMs: 1, maxMs: 1 }, retryable: () => false })).rejects.toThrow("failure 0");
    n = 0;
    await expect(retry(failing, { withinMs: 10_000, backoff: { firstMs: 1, maxMs: 1 }, stopped: () => n >= 3 })).rejects.toThrow("failure 2");
    n = 0;
    await expect(retry(failing, { withinMs: 50, backoff: { firstMs: 5, maxMs: 5 } })).rejects.toThrow(/failure [1-9]/);
  });
});
