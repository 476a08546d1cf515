// Server-sent events from core NATS subjects (see api/live.ts): GET /v1/devices/:id/live — `readings`
// for each accepted request (any gateway), `alert` as the twin publishes them — and GET /v1/alerts/live,
// the alerts of the whole fleet (admin) or of the caller's devices (user). Streams end when the client
// goes, when it reads too slowly, and first thing on shutdown.
import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { Alert } from "../../../actors/device-twin/domain/mod.ts";
import type { LiveFeed } from "../../api/live.ts";
import type { RegistryApi } from "../app.ts";
import type { GatewayMetrics } from "../../metrics.ts";
import type { AuthHooks } from "../auth.ts";
import { schemas } from "../schemas.ts";

/** The open SSE streams of one app. */
export class LiveStreams {
  private readonly open = new Set<() => void>();

  constructor(private readonly metrics: GatewayMetrics) {}

  add(close: () => void): () => void {
    this.open.add(close);
    this.metrics.liveStreams.set(this.open.size);
    return () => {
      this.open.delete(close);
      this.metrics.liveStreams.set(this.open.size);
    };
  }

  get size(): number {
    return this.open.size;
  }

  /** Ends every stream (shutdown). */
  closeAll(): void {
    for (const close of [...this.open]) close();
  }
}

/** Settings of the SSE routes. */
export interface SseOptions {
  heartbeatMs: number;
  maxBufferedBytes: number;
}

/** A `send` for one event stream. */
type Send = (chunk: string) => void;

/**
 * Takes the reply over as an SSE stream: `subscribe(send)` connects the feed (and returns its
 * unsubscribe), keep-alive comments flow every heartbeatMs, and the stream ends when the client goes,
 * when it reads too slowly, or on shutdown. `open` is sent once the feed is ready.
 */
async function openSse(
  reply: FastifyReply,
  streams: LiveStreams,
  o: SseOptions,
  ready: () => Promise<void>,
  opened: unknown,
  subscribe: (send: Send) => () => void,
): Promise<void> {
  reply.hijack();
  const res: ServerResponse = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  let ended = false;
  const send: Send = (chunk) => {
    if (ended) return;
    res.write(chunk);
    if (res.writableLength > o.maxBufferedBytes) end(); // a client this slow would hold memory forever
  };
  const unsubscribe = subscribe(send);
  const heartbeat = setInterval(() => send(": keep-alive\n\n"), o.heartbeatMs);
  heartbeat.unref();
  const forget = streams.add(() => end());
  function end(): void {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    forget();
    res.end();
  }
  res.on("close", end);
  // `open` once NATS has the subscriptions (and, for a device, the stream's announcement): from then on
  // what any gateway accepts reaches this stream
  await ready().catch(() => undefined);
  // tell the client the stream is open (and how long to wait before reconnecting)
  send(`retry: 2000\nevent: open\ndata: ${JSON.stringify(opened)}\n\n`);
}

const alertEvent = (a: Alert): string => `event: alert\nid: ${a.id}\ndata: ${JSON.stringify(a)}\n\n`;

export function registerLiveRoute(app: FastifyInstance, feed: LiveFeed, auth: AuthHooks, streams: LiveStreams, o: SseOptions, registry: Pick<RegistryApi, "device">): void {
  app.get<{ Params: { id: string } }>(
    "/v1/devices/:id/live",
    { schema: schemas.live, onRequest: [auth.validDeviceId, auth.deviceOwner({ allowQueryToken: true })] },
    async (req, reply) => {
      const deviceId = req.params.id;
      await openSse(reply, streams, o, () => feed.ready(), { deviceId }, (send) =>
        feed.subscribe(deviceId, {
          alert: (a) => send(alertEvent(a)),
          readings: (r) => send(`event: readings\ndata: ${JSON.stringify(r)}\n\n`),
        }),
      );
    },
  );

  // The fleet's alerts: admin sees every device's, a user those of the devices they own (checked per
  // alert against the registry, so a device registered or given away meanwhile is handled).
  app.get("/v1/alerts/live", { schema: schemas.alertsLive, onRequest: auth.app }, async (req, reply) => {
    const p = req.principal;
    const userId = p?.kind === "user" ? p.userId : undefined;
    await openSse(reply, streams, o, () => feed.ready(), { scope: userId === undefined ? "all" : "own", ...(userId === undefined ? {} : { userId }) }, (send) =>
      feed.subscribeAlerts((a) => {
        if (userId === undefined || registry.device(a.deviceId)?.ownerId === userId) send(alertEvent(a));
      }),
    );
  });
}
