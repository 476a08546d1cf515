import { errors as natsErrors } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { askAgain, worthAskingAgain } from "./js-retry.ts";

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
