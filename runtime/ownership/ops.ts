// The ops API over NATS request/reply: cluster view, move a shard, drain a node, rebalance (or dry run).
// Only the elected coordinator subscribes, so a request reaches whoever decides; while the coordinator
// changes, nobody may answer for a moment and the client retries until its deadline.
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { decode, encode, msgpackHeaders } from "../codec.ts";
import { RuntimeError, RuntimeErrors, isRuntimeError, type RuntimeErrorName } from "../errors.ts";
import type { Names } from "../subjects.ts";
import type { Coordinator, DrainResult, MoveResult, RoundResult } from "./coordinator.ts";
import type { LogFn } from "../log.ts";
import type { ClusterView } from "./view.ts";

/** The ops verbs; each is the last token of its subject `<prefix>.ops.<verb>`. */
export const OPS_VERBS = ["cluster", "move", "drain", "rebalance"] as const;
export type OpsVerb = (typeof OPS_VERBS)[number];

/** Options of a rebalance request. */
export interface RebalanceRequest {
  /** Plan only; write nothing. Default false. */
  readonly dryRun?: boolean;
  /** Let rebalancing move operator-pinned shards too. Default false. */
  readonly unpin?: boolean;
}

type Reply<T> = { ok: true; result: T } | { ok: false; error: { code: string; message: string; details?: Record<string, unknown> } };

/** Dependencies of {@link OpsServer}. */
export interface OpsServerOptions {
  readonly nc: NatsConnection;
  readonly names: Names;
  readonly coordinator: Coordinator;
  /** The cluster view to answer `cluster` with (lag included when the node has a provider). */
  readonly view: () => Promise<ClusterView>;
  readonly log: LogFn;
}

/** Answers ops requests while this node is the coordinator. */
export class OpsServer {
  #subs: Subscription[] = [];
  readonly #unsubscribe: () => void;

  constructor(private readonly o: OpsServerOptions) {
    this.#unsubscribe = o.coordinator.onLeadership((leader) => (leader ? this.#listen() : this.#stopListening()));
    if (o.coordinator.isLeader()) this.#listen();
  }

  close(): void {
    this.#unsubscribe();
    this.#stopListening();
  }

  #listen(): void {
    if (this.#subs.length > 0) return;
    this.#subs = OPS_VERBS.map((verb) =>
      this.o.nc.subscribe(this.o.names.ops(verb), {
        callback: (err, msg) => {
          if (err === null) void this.#handle(verb, msg);
        },
      }),
    );
  }

  #stopListening(): void {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs = [];
  }

  async #handle(verb: OpsVerb, msg: Msg): Promise<void> {
    let reply: Reply<unknown>;
    try {
      reply = { ok: true, result: await this.#dispatch(verb, msg.data.length === 0 ? {} : decode(msg.data)) };
    } catch (err) {
      const e = isRuntimeError(err)
        ? err
        : new RuntimeError("NATS_UNAVAILABLE", `ops ${verb} failed: ${(err as Error).message}`, { cause: err });
      if (!isRuntimeError(err)) this.o.log("warn", "ops request failed", { verb, error: (err as Error).message });
      reply = { ok: false, error: { code: e.code, message: e.message, ...(e.details ? { details: { ...e.details } } : {}) } };
    }
    if (msg.reply) msg.respond(encode(reply), { headers: msgpackHeaders() });
  }

  #dispatch(verb: OpsVerb, body: unknown): Promise<unknown> {
    const c = this.o.coordinator;
    if (!c.isLeader()) throw new RuntimeError("OPS_NOT_COORDINATOR");
    const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
    switch (verb) {
      case "cluster":
        return this.o.view();
      case "move":
        if (typeof b.shard !== "number" || typeof b.node !== "string") {
          throw new RuntimeError("OPS_INVALID_REQUEST", "move needs { shard: number, node: string }", { details: { field: typeof b.shard !== "number" ? "shard" : "node" } });
        }
        return c.move(b.shard, b.node);
      case "drain":
        if (typeof b.node !== "string") throw new RuntimeError("OPS_INVALID_REQUEST", "drain needs { node: string }", { details: { field: "node" } });
        return c.drain(b.node);
      case "rebalance":
        return c.round({ dryRun: b.dryRun === true, unpin: b.unpin === true });
    }
  }
}

/** Options of {@link OpsClient}. */
export interface OpsClientOptions {
  /** Overall deadline of one call, retries included (ms); covers a coordinator failover. Default 10 000. */
  timeoutMs?: number;
}

/**
 * Typed client of the ops API (for the HTTP gateway and `airtwin ops`). Errors are RuntimeErrors with the
 * coordinator's code (AIRTWIN_ERR_OPS_*); AIRTWIN_ERR_OPS_NO_COORDINATOR when nobody answered in time.
 */
export class OpsClient {
  private readonly timeoutMs: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    opts: OpsClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  cluster(): Promise<ClusterView> {
    return this.#request("cluster", {});
  }

  /** Assigns `shard` to `node` and pins it there. */
  move(shard: number, node: string): Promise<MoveResult> {
    return this.#request("move", { shard, node });
  }

  /** Moves every shard off `node` over the next rounds (until it restarts). */
  drain(node: string): Promise<DrainResult> {
    return this.#request("drain", { node });
  }

  /** Plans a round now; writes it unless `dryRun`. */
  rebalance(opts: RebalanceRequest = {}): Promise<RoundResult> {
    return this.#request("rebalance", { dryRun: opts.dryRun === true, unpin: opts.unpin === true });
  }

  async #request<T>(verb: OpsVerb, body: Record<string, unknown>): Promise<T> {
    const deadline = Date.now() + this.timeoutMs;
    let pause = 25;
    let last = "no coordinator subscribed";
    let lastReply: RuntimeError | undefined;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        // the coordinator answered but could not reach KV: say that, not "no coordinator"
        if (lastReply?.code === RuntimeErrors.NATS_UNAVAILABLE.code) throw lastReply;
        throw new RuntimeError("OPS_NO_COORDINATOR", `no cluster coordinator answered ops ${verb} within ${this.timeoutMs} ms (${last})`, {
          details: { verb, timeoutMs: this.timeoutMs },
        });
      }
      let reply: Reply<T> | undefined;
      try {
        const msg = await this.nc.request(this.names.ops(verb), encode(body), { timeout: Math.min(left, 4000), headers: msgpackHeaders() });
        reply = decode<Reply<T>>(msg.data);
      } catch (err) {
        if (isRuntimeError(err)) throw err;
        // no responders (between coordinators), or a timeout: try again until the deadline
        last = (err as Error).message;
      }
      if (reply?.ok === true) return reply.result;
      if (reply?.ok === false) {
        const e = toRuntimeError(reply.error);
        // every verb is safe to repeat: a move or drain writes the same thing again, a round replans
        if (!RETRIABLE.has(e.code)) throw e;
        last = e.message;
        lastReply = e;
      }
      await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
      pause = Math.min(pause * 2, 500);
    }
  }
}

/** Replies worth asking again: the coordinator is changing, or its KV request timed out. */
const RETRIABLE = new Set<string>([RuntimeErrors.OPS_NOT_COORDINATOR.code, RuntimeErrors.NATS_UNAVAILABLE.code]);

function toRuntimeError(e: { code: string; message: string; details?: Record<string, unknown> }): RuntimeError {
  const name = (Object.keys(RuntimeErrors) as RuntimeErrorName[]).find((k) => RuntimeErrors[k].code === e.code);
  if (name === undefined) return new RuntimeError("OPS_INVALID_REQUEST", `${e.code}: ${e.message}`, { details: { ...e.details, code: e.code } });
  return new RuntimeError(name, e.message, e.details === undefined ? undefined : { details: e.details });
}
