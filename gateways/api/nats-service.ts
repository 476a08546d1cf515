// The twin API for services over plain NATS request/reply (docs/design.md §5): `<prefix>.api.cmd.<deviceId>`
// (body: a command, as POST …/commands) and `<prefix>.api.get.<deviceId>` (body: empty, or
// `{ consistency: "live"|"snapshot" }`), served by every gateway in one queue group. Bodies are
// MessagePack; the reply body is the HTTP response body — the result, or the error object
// `{ statusCode, code, error, message, details? }` — and header `Airtwin-Status` holds the HTTP status.
// A command may carry header `Idempotency-Key` (as over HTTP); a reply from an earlier application under
// that key carries `Idempotent-Replayed: true`.
// NATS itself authenticates services (accounts and permissions), so no token is asked here.
import { Match, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { validateDeviceId } from "../../actors/device-twin/domain/mod.ts";
import { decode, encode, MSGPACK_CONTENT_TYPE, type LogFn, type Names } from "../../runtime/mod.ts";
import { GatewayError, mapError } from "../errors.ts";
import type { GatewayMetrics } from "../metrics.ts";
import type { DeviceInfo } from "../registry/registry.ts";
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, idempotencyKeyOf } from "./idempotency-key.ts";
import { problemError, type Consistency, type TwinApi } from "./twin-api.ts";

/** Header of a service reply holding the HTTP status of the answer. */
export const STATUS_HEADER = "Airtwin-Status";

export interface TwinServiceOptions {
  nc: NatsConnection;
  names: Names;
  twins: TwinApi;
  registry: { device(deviceId: string): DeviceInfo | undefined };
  metrics: GatewayMetrics;
  /** Queue group shared by all gateways. Default `<prefix>-gateway`. */
  queue?: string;
  log?: LogFn;
}

type Verb = "cmd" | "get";

export class TwinService {
  private readonly subs: Subscription[];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: TwinServiceOptions) {
    const queue = o.queue ?? `${o.names.prefix}-gateway`;
    this.subs = (["cmd", "get"] as const).map((verb) =>
      o.nc.subscribe(`${o.names.prefix}.api.${verb}.*`, {
        queue,
        callback: (err, msg) => {
          if (err !== null) return;
          const p = this.handle(verb, msg).finally(() => this.inFlight.delete(p));
          this.inFlight.add(p);
        },
      }),
    );
  }

  /** Stops taking requests and waits for those being answered. */
  async drain(): Promise<void> {
    await Promise.allSettled(this.subs.map((s) => (s.isClosed() ? undefined : s.drain())));
    await Promise.allSettled([...this.inFlight]);
  }

  private async handle(verb: Verb, msg: Msg): Promise<void> {
    const deviceId = msg.subject.slice(`${this.o.names.prefix}.api.${verb}.`.length);
    let status = 200;
    let body: unknown;
    let replayed = false;
    try {
      ({ body, replayed } = await this.answer(verb, deviceId, msg));
    } catch (err) {
      const mapped = mapError(err);
      if (mapped.unexpected) this.o.log?.("error", "service request failed", { verb, deviceId, error: (err as Error)?.message });
      status = mapped.body.statusCode;
      body = mapped.body;
    }
    this.o.metrics.serviceRequests.inc({ verb, status: String(status) });
    if (!msg.reply) return;
    const h = natsHeaders();
    h.set("Content-Type", MSGPACK_CONTENT_TYPE);
    h.set(STATUS_HEADER, String(status));
    if (replayed) h.set(IDEMPOTENT_REPLAYED_HEADER, "true");
    try {
      msg.respond(encode(body), { headers: h });
    } catch {
      // the connection closed meanwhile: the requester times out
    }
  }

  private async answer(verb: Verb, deviceId: string, msg: Msg): Promise<{ body: unknown; replayed: boolean }> {
    const problem = validateDeviceId(deviceId);
    if (problem !== undefined) throw problemError(problem);
    if (this.o.registry.device(deviceId) === undefined) throw new GatewayError("REGISTRY_DEVICE_NOT_FOUND", `no device "${deviceId}"`);
    const payload = msg.data.length === 0 ? {} : decode(msg.data);
    if (verb === "cmd") {
      const idempotencyKey = idempotencyKeyOf(msg.headers?.values(IDEMPOTENCY_KEY_HEADER, Match.IgnoreCase) ?? []);
      const { result, replayed } = await this.o.twins.command(deviceId, payload, idempotencyKey === undefined ? {} : { idempotencyKey });
      return { body: result, replayed };
    }
    const consistency = (payload as { consistency?: unknown } | null)?.consistency ?? "live";
    if (consistency !== "live" && consistency !== "snapshot") {
      throw new GatewayError("HTTP_QUERY_INVALID", 'consistency must be "live" or "snapshot"', { details: [{ field: "consistency", message: 'must be "live" or "snapshot"' }] });
    }
    return { body: (await this.o.twins.view(deviceId, consistency as Consistency)).view, replayed: false };
  }
}
