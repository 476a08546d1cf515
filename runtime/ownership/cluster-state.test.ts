import type { KvEntry } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { ClusterState } from "./cluster-state.ts";
import { encodeRecord, leaseKey, type LeaseRecord } from "./records.ts";

const lease = (owner: string | null, epoch: number): LeaseRecord => ({ shard: 0, owner, epoch, expiresAt: 1000, acquiredAt: 0 });
const read = (revision: number, rec: LeaseRecord) => ({ key: leaseKey(0), operation: "PUT", revision, value: encodeRecord(rec) }) as unknown as KvEntry;

describe("ClusterState", () => {
  it("keeps the newest revision of a key: a late watch entry or read never overwrites newer knowledge", () => {
    const state = new ClusterState();
    state.apply({ key: leaseKey(0), operation: "PUT", revision: 10, value: encodeRecord(lease("a", 3)) }, true);
    expect(state.apply({ key: leaseKey(0), operation: "PUT", revision: 9, value: encodeRecord(lease("b", 2)) }, true)).toBe(false);
    state.applyGet(leaseKey(0), read(10, lease("a", 3)));
    expect(state.leases.get(0)).toMatchObject({ revision: 10, value: { owner: "a", epoch: 3 } });
  });

  it("a leader read below what the mirror knows wins, and is reported as a divergence", () => {
    const state = new ClusterState();
    const seen: Array<[string, number, number]> = [];
    state.onDivergence((key, known, got) => seen.push([key, known, got]));
    // entries 12 and 13 came from a server whose log the new leader does not share
    state.apply({ key: leaseKey(0), operation: "PUT", revision: 13, value: encodeRecord(lease("a", 5)) }, true);
    state.applyGet(leaseKey(0), read(11, lease(null, 4)));
    expect(state.leases.get(0)).toMatchObject({ revision: 11, value: { owner: null, epoch: 4 } });
    expect(seen).toEqual([[leaseKey(0), 13, 11]]);
    // from there on, revisions grow again as usual
    expect(state.apply({ key: leaseKey(0), operation: "PUT", revision: 12, value: encodeRecord(lease("b", 5)) }, true)).toBe(true);
    // forgetting every revision lets a reload from the start re-apply each key's current entry
    state.forgetRevisions();
    expect(state.watchRevision).toBe(0);
    expect(state.apply({ key: leaseKey(0), operation: "PUT", revision: 12, value: encodeRecord(lease("b", 5)) }, true)).toBe(true);
  });
});
