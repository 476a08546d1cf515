// Every runtime format goes through codec.ts now (one Packr). These bytes were recorded from the
// formats' own Packr instances before that change (commit acb99c8): the encoders must still write them
// byte for byte, and bytes already stored or in flight (snapshot records, checkpoints, fences, input
// batches in the log) must still decode to the same values.
import { describe, expect, it } from "vitest";
import { decode, encode } from "./codec.ts";
import { decodeBatch, encodeBatch, type InputBatch } from "./envelope.ts";
import { decodeAnnouncement, encodeAnnouncement } from "./handoff.ts";
import { decodeQuery, decodeReply, encodeQuery, encodeReply, type EntityReply } from "./protocol.ts";
import { decodeFenceEpoch, decodeRecord, encodeCheckpoint, encodeFence, encodeRecord, type SnapshotRecord } from "./snapshot-store.ts";

const RECORDED = {
  "batch": "9301cb4278bcfe5687b0009494a6646576696365a3642d31a872656164696e677391de0003a174cb4278bcfe56800000a3636f32cb4083240000000000a4706d32350395a6646576696365a3642d32a7636f6d6d616e64de0002a26f70a672656e616d65a46e616d65a64bc3bc636865ac5f494e424f582e6162632e3796a6646576696365a3642d33a7636f6d6d616e64c0c0a56b65792d3196a6646576696365a3642d34a7636f6d6d616e64de0001a16effac5f494e424f582e6162632e38a56b65792d32",
  "record": "93cd1092cb4278bcfeae640000c404010203fa",
  "recordNoWake": "9307c0c404010203fa",
  "recordKeys": "9409c0c404010203fa9293a36f6c6405c40cde0001a772656e616d6564c394a36e657709c401c0c40409080706",
  "checkpoint": "de0002a3736571ce0001e240a565706f636803",
  "fence": "de0002a565706f636803a26174cb4278bcfe569c8000",
  "announce": "de0002a565706f636803a8696e7374616e6365a770312e6b322e30",
  "announceAck": "de0001a565706f636802",
  "query": "de0003a474797065a6646576696365a26964a3642d31a171de0001a476696577a773756d6d617279",
  "replyOk": "de0003a26f6bc3a576616c7565de0001a3636f32cb4083240000000000a3736571cd1092",
  "replyReplayed": "de0004a26f6bc3a576616c7565de0001a772656e616d6564c3a373657105a87265706c61796564c3",
  "replyError": "de0002a26f6bc2a56572726f72de0002a4636f6465ba4149525457494e5f4552525f454e544954595f554e4b4e4f574ea76d657373616765ae6e6f207375636820656e74697479",
  "output": "de0005a26964ab642d313a616c6572743a31a86465766963654964a3642d31a26174cb4278bcfe56800000a576616c7565cb4042400000000000a5756e646566d40000"
} as const;

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, "hex"));
const state = Uint8Array.from([1, 2, 3, 250]);
/** Buffers (what msgpackr decodes bin to) as plain Uint8Arrays, so toEqual compares contents only. */
const plain = (v: unknown): unknown =>
  v instanceof Uint8Array ? Uint8Array.from(v) : Array.isArray(v) ? v.map(plain) : typeof v === "object" && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;

const batch: InputBatch = {
  acceptedAt: 1_700_000_000_123,
  items: [
    { type: "device", entityId: "d-1", kind: "readings", payload: [{ t: 1_700_000_000_000, co2: 612.5, pm25: 3 }] },
    { type: "device", entityId: "d-2", kind: "command", payload: { op: "rename", name: "Küche" }, replyTo: "_INBOX.abc.7" },
    { type: "device", entityId: "d-3", kind: "command", payload: null, idempotencyKey: "key-1" },
    { type: "device", entityId: "d-4", kind: "command", payload: { n: -1 }, replyTo: "_INBOX.abc.8", idempotencyKey: "key-2" },
  ],
};
const records: Record<"record" | "recordNoWake" | "recordKeys", SnapshotRecord> = {
  record: { appliedSeq: 4242, wakeAt: 1_700_000_360_000, state },
  recordNoWake: { appliedSeq: 7, wakeAt: undefined, state },
  recordKeys: {
    appliedSeq: 9,
    wakeAt: undefined,
    state,
    commands: [
      { key: "old", seq: 5, reply: encode({ renamed: true }) },
      { key: "new", seq: 9, reply: encode(null), fingerprint: Uint8Array.from([9, 8, 7, 6]) },
    ],
  },
};
const replies: Record<"replyOk" | "replyReplayed" | "replyError", EntityReply> = {
  replyOk: { ok: true, value: { co2: 612.5 }, seq: 4242 },
  replyReplayed: { ok: true, value: { renamed: true }, seq: 5, replayed: true },
  replyError: { ok: false, error: { code: "AIRTWIN_ERR_ENTITY_UNKNOWN", message: "no such entity" } },
};

describe("runtime formats are byte for byte those recorded before the one codec", () => {
  it("input batch (readings, command with reply inbox, keyed command, both)", () => {
    expect(hex(encodeBatch(batch))).toBe(RECORDED.batch);
    expect(decodeBatch(bytes(RECORDED.batch))).toEqual(batch);
  });

  it.each(Object.keys(records) as Array<keyof typeof records>)("snapshot record: %s", (name) => {
    expect(hex(encodeRecord(records[name]))).toBe(RECORDED[name]);
    expect(plain(decodeRecord(bytes(RECORDED[name])))).toEqual(plain(records[name]));
  });

  it("checkpoint and fence records", () => {
    expect(hex(encodeCheckpoint(123456, 3))).toBe(RECORDED.checkpoint);
    expect(decode(bytes(RECORDED.checkpoint))).toEqual({ seq: 123456, epoch: 3 });
    expect(hex(encodeFence(3, 1_700_000_000_456))).toBe(RECORDED.fence);
    expect(decodeFenceEpoch(bytes(RECORDED.fence))).toBe(3);
  });

  it("hand-off announcement and its acknowledgement", () => {
    expect(hex(encodeAnnouncement({ epoch: 3, instance: "p1.k2.0" }))).toBe(RECORDED.announce);
    expect(decodeAnnouncement(bytes(RECORDED.announce))).toEqual({ epoch: 3, instance: "p1.k2.0" });
    expect(hex(encode({ epoch: 2 }))).toBe(RECORDED.announceAck);
  });

  it("live query", () => {
    expect(hex(encodeQuery("device", "d-1", { view: "summary" }))).toBe(RECORDED.query);
    expect(decodeQuery(bytes(RECORDED.query))).toEqual({ type: "device", id: "d-1", q: { view: "summary" } });
  });

  it.each(Object.keys(replies) as Array<keyof typeof replies>)("reply: %s", (name) => {
    expect(hex(encodeReply(replies[name]))).toBe(RECORDED[name]);
    expect(decodeReply(bytes(RECORDED[name]))).toEqual(replies[name]);
  });

  it("entity output payload (undefined kept through msgpackr's extension)", () => {
    const output = { id: "d-1:alert:1", deviceId: "d-1", at: 1_700_000_000_000, value: 36.5, undef: undefined };
    expect(hex(encode(output))).toBe(RECORDED.output);
    expect(decode(bytes(RECORDED.output))).toEqual(output);
  });
});

describe("protocol decoding of what names no entity", () => {
  it("a query that is not a map, or lacks a string type or id, is no query", () => {
    for (const v of [null, 7, "x", [1], { type: "device" }, { type: "device", id: 5 }]) expect(decodeQuery(encode(v))).toBeUndefined();
  });
  it("an announcement that is not one is ignored", () => {
    for (const v of [null, { epoch: "3", instance: "i" }, { epoch: 3 }]) expect(decodeAnnouncement(encode(v))).toBeUndefined();
    expect(decodeAnnouncement(Uint8Array.from([0xc1]))).toBeUndefined();
  });
});
