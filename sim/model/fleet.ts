// A fleet of simulated devices as one source of uploads in event-time order (ties by device number).
import { DeviceSim, type DeviceFaultOptions, type Upload } from "./device.ts";
import { MinHeap } from "./heap.ts";
import { roomProfile, type RoomKind } from "./rooms.ts";

/** Anything that yields uploads in event-time order: a synthetic fleet, a CSV replay. */
export interface UploadSource {
  /** Event time of the next upload; undefined when the source is exhausted. */
  peekSendAt(): number | undefined;
  next(): Upload | undefined;
  /** The device ids this source sends for. */
  readonly deviceIds: readonly string[];
}

export interface FleetOptions {
  seed: number;
  devices: number;
  /** Device `i` (0-based) is `<idPrefix>-<i+1, zero-padded>`, or `<idPrefix>-<nn>-<room kind>` with `kindInId`. */
  idPrefix: string;
  kindInId?: boolean;
  startMs: number;
  intervalMs: number;
  faults?: DeviceFaultOptions | false;
  /** Only rooms of these kinds (drawn in turn); default any. */
  kinds?: readonly RoomKind[];
  warmUpMs?: number;
}

/** The id of device `index` of a fleet. */
export function fleetDeviceId(o: Pick<FleetOptions, "seed" | "devices" | "idPrefix" | "kindInId" | "kinds">, index: number): string {
  const n = String(index + 1).padStart(Math.max(o.kindInId ? 3 : 2, String(o.devices).length), "0");
  return o.kindInId ? `${o.idPrefix}-${n}-${fleetKind(o, index)}` : `${o.idPrefix}-${n}`;
}

function fleetKind(o: Pick<FleetOptions, "seed" | "kinds">, index: number): RoomKind {
  return o.kinds && o.kinds.length > 0 ? o.kinds[index % o.kinds.length]! : roomProfile(o.seed, index).kind;
}

export class Fleet implements UploadSource {
  readonly devices: DeviceSim[];
  readonly deviceIds: string[];
  private heap = new MinHeap<number>();

  constructor(o: FleetOptions) {
    this.devices = Array.from({ length: o.devices }, (_, i) => {
      const device = new DeviceSim({
        seed: o.seed,
        index: i,
        deviceId: fleetDeviceId(o, i),
        kind: fleetKind(o, i),
        startMs: o.startMs,
        intervalMs: o.intervalMs,
        ...(o.faults === undefined ? {} : { faults: o.faults }),
        ...(o.warmUpMs === undefined ? {} : { warmUpMs: o.warmUpMs }),
      });
      return device;
    });
    this.deviceIds = this.devices.map((d) => d.deviceId);
    this.rebuild();
  }

  peekSendAt(): number | undefined {
    return this.heap.peekKey();
  }

  next(): Upload | undefined {
    const i = this.heap.pop();
    if (i === undefined) return undefined;
    const device = this.devices[i]!;
    const upload = device.next();
    this.heap.push(device.peekSendAt() + i / (this.devices.length + 1), i);
    return upload;
  }

  /** Changes every device's sampling interval from its next sample on. */
  setIntervalMs(intervalMs: number): void {
    for (const d of this.devices) d.setIntervalMs(intervalMs);
    this.rebuild();
  }

  private rebuild(): void {
    this.heap = new MinHeap<number>();
    // the fraction orders devices due at the same millisecond by number, so runs are reproducible
    this.devices.forEach((d, i) => this.heap.push(d.peekSendAt() + i / (this.devices.length + 1), i));
  }
}
