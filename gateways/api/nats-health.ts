// Connection state of the gateway's NATS connection: whether it is up (requests fail fast with 503 while
// it is not), whether JetStream answers (cached briefly, for /readyz), and reconnect metrics.
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { GatewayMetrics } from "../metrics.ts";

export interface NatsHealthOptions {
  /** How long a JetStream probe result is reused (ms). Default 1000. */
  probeCacheMs?: number;
  /** Deadline of one JetStream probe (ms). Default 1000. */
  probeTimeoutMs?: number;
  /** Called on disconnect/reconnect. */
  onChange?: (connected: boolean) => void;
}

export class NatsHealth {
  private up = true;
  private probe: { at: number; ok: Promise<boolean> } | undefined;
  private jsm: Promise<JetStreamManager> | undefined;
  private readonly probeCacheMs: number;
  private readonly probeTimeoutMs: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly metrics: GatewayMetrics,
    private readonly options: NatsHealthOptions = {},
  ) {
    this.probeCacheMs = options.probeCacheMs ?? 1000;
    this.probeTimeoutMs = options.probeTimeoutMs ?? 1000;
    metrics.natsConnected.set(1);
    void this.watch();
  }

  connected(): boolean {
    return this.up && !this.nc.isClosed();
  }

  async jetstream(): Promise<boolean> {
    const now = Date.now();
    if (this.probe === undefined || now - this.probe.at > this.probeCacheMs) {
      this.probe = { at: now, ok: this.ask() };
    }
    return this.probe.ok;
  }

  private async ask(): Promise<boolean> {
    try {
      this.jsm ??= jetstreamManager(this.nc, { timeout: this.probeTimeoutMs, checkAPI: false });
      await (await this.jsm).getAccountInfo();
      return true;
    } catch {
      this.jsm = undefined;
      return false;
    }
  }

  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") this.set(false);
      else if (s.type === "reconnect") {
        this.metrics.natsReconnects.inc();
        this.set(true);
      }
    }
  }

  private set(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    this.probe = undefined;
    this.metrics.natsConnected.set(up ? 1 : 0);
    this.options.onChange?.(up);
  }
}
