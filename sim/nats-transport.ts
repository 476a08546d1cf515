// Readings over NATS, as a service in the cluster would send them: validated like the gateway does, then
// appended to the device's input through the runtime client; resolved once JetStream stored them. The
// gateway's live stream (SSE) does not see these readings; the twins, the archive and the alerts do.
import type { NatsConnection } from "@nats-io/nats-core";
import { TWIN_TYPE, TwinInputKinds } from "../actors/device-twin/behavior.ts";
import { validateReadings, type Reading } from "../actors/device-twin/domain/mod.ts";
import { closeNats, ensureClusterForClients, names, RuntimeClient, type AirtwinConfig } from "../runtime/mod.ts";
import type { SendOutcome, Transport } from "./transport.ts";

export class NatsTransport implements Transport {
  readonly name = "nats";

  private constructor(
    private readonly nc: NatsConnection,
    private readonly client: RuntimeClient,
    private readonly ownsConnection: boolean,
  ) {}

  /** A transport on `nc` for the cluster `config` describes (checked against the cluster's meta). */
  static async open(nc: NatsConnection, config: AirtwinConfig, ownsConnection = true): Promise<NatsTransport> {
    const n = names(config.prefix);
    await ensureClusterForClients(nc, n, { shards: config.shards, streams: config.streams, replicas: config.replicas });
    return new NatsTransport(nc, new RuntimeClient(nc, { prefix: config.prefix, shards: config.shards, streams: config.streams }), ownsConnection);
  }

  async send(deviceId: string, readings: readonly Reading[]): Promise<SendOutcome> {
    const checked = validateReadings(readings);
    if (!checked.ok) return { kind: "rejected", status: 400, code: checked.error.code, message: checked.error.message };
    if (this.nc.isClosed()) return { kind: "retry", status: 503, code: "AIRTWIN_ERR_NATS_UNAVAILABLE", message: "NATS connection closed" };
    try {
      await this.client.send(TWIN_TYPE, deviceId, TwinInputKinds.readings, checked.value);
      return { kind: "accepted", accepted: checked.value.length };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { kind: "retry", status: 503, code: e.code ?? "AIRTWIN_ERR_INPUT_NOT_STORED", message: e.message ?? String(err) };
    }
  }

  async close(): Promise<void> {
    await this.client.close();
    if (this.ownsConnection) await closeNats(this.nc);
  }
}
