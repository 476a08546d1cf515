// GET /v1/devices/:id/live: server-sent events of a device — `readings` for each accepted request (any
// gateway), `alert` as the twin publishes them — from core NATS subjects (see api/live.ts). Streams end
// when the client goes, when it reads too slowly, and first thing on shutdown.
import type { ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import type { LiveFeed } from "../../api/live.ts";
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

export function registerLiveRoute(
  app: FastifyInstance,
  feed: LiveFeed,
  auth: AuthHooks,
  streams: LiveStreams,
  o: { heartbeatMs: number; maxBufferedBytes: number },
): void {
  app.get<{ Params: { id: string } }>(
    "/v1/devices/:id/live",
    { schema: schemas.live, onRequest: [auth.validDeviceId, auth.deviceOwner({ allowQueryToken: true })] },
    async (req, reply) => {
      const deviceId = req.params.id;
      reply.hijack();
      const res: ServerResponse = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      let ended = false;
      const send = (chunk: string): void => {
        if (ended) return;
        res.write(chunk);
        if (res.writableLength > o.maxBufferedBytes) end(); // a client this slow would hold memory forever
      };
      const unsubscribe = feed.subscribe(deviceId, {
        alert: (a) => send(`event: alert\nid: ${a.id}\ndata: ${JSON.stringify(a)}\n\n`),
        readings: (r) => send(`event: readings\ndata: ${JSON.stringify(r)}\n\n`),
      });
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
      // `open` once NATS has the subscriptions and the stream's announcement: from then on the readings
      // accepted by any gateway reach this stream
      await feed.ready().catch(() => undefined);
      // tell the client the stream is open (and how long to wait before reconnecting)
      send(`retry: 2000\nevent: open\ndata: ${JSON.stringify({ deviceId })}\n\n`);
    },
  );
}
