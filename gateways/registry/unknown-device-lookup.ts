// What a gateway does with a device id its registry view does not know: ask the bucket once, bounded.
// A device registered through another gateway may post here before our watch has delivered its entry
// (milliseconds, more under load); without a look it would get 401 once. Anyone can send unknown ids,
// so the look is bounded three ways: concurrent requests for one id share one look; at most
// `maxInFlight` looks wait on the registry at once (beyond: "busy", nothing asked); an id found absent
// is answered "absent" for `absentTtlMs` without asking again (and forgotten at once when the watch
// brings its entry). The absent ids are an LRU cache read without touching its order (`peek`), so the one
// remembered first goes first, in O(1): a Map evicting its first key walks the slots of every key
// deleted before it (device-rate-limit.ts).
import { LRUCache } from "lru-cache";

/** "found": the view now holds the device (check its token); "absent": no such device (or deleted); "busy": not asked (too many looks in flight) or the registry did not answer. */
export type LookupOutcome = "found" | "absent" | "busy";

/** Bounds of {@link UnknownDeviceLookup}. */
export interface UnknownDeviceLookupOptions {
  /** Looks waiting on the registry at once; beyond, a look answers "busy" without asking. Default 32. */
  maxInFlight?: number;
  /** How long an id found absent is answered "absent" without asking again (ms). Default 2000. */
  absentTtlMs?: number;
  /** Ids remembered as absent; beyond, the one remembered first is forgotten. Default 10 000. */
  absentMax?: number;
}

export class UnknownDeviceLookup {
  private readonly pending = new Map<string, Promise<LookupOutcome>>();
  /** Id → when its "absent" expires (ms), in the order remembered. */
  private readonly absent: LRUCache<string, number>;
  private readonly maxInFlight: number;
  private readonly absentTtlMs: number;

  /** `ask` reads the device's entry, applies it to the view and says whether the view now holds the device. */
  constructor(
    private readonly ask: (deviceId: string) => Promise<boolean>,
    options: UnknownDeviceLookupOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 32;
    this.absentTtlMs = options.absentTtlMs ?? 2000;
    this.absent = new LRUCache({ max: options.absentMax ?? 10_000 });
  }

  /** Looks waiting on the registry now. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Looks the device up (see the file header). Never rejects. */
  lookUp(deviceId: string, nowMs: number = Date.now()): Promise<LookupOutcome> {
    const shared = this.pending.get(deviceId);
    if (shared !== undefined) return shared;
    const expires = this.absent.peek(deviceId);
    if (expires !== undefined) {
      if (expires > nowMs) return Promise.resolve("absent");
      this.absent.delete(deviceId);
    }
    if (this.pending.size >= this.maxInFlight) return Promise.resolve("busy");
    const look = this.ask(deviceId).then(
      (found): LookupOutcome => {
        if (found) return "found";
        this.rememberAbsent(deviceId, Date.now());
        return "absent";
      },
      (): LookupOutcome => "busy",
    );
    const settled = look.finally(() => this.pending.delete(deviceId));
    this.pending.set(deviceId, settled);
    return settled;
  }

  /** The watch brought an entry of the device: it is no longer absent. */
  forget(deviceId: string): void {
    this.absent.delete(deviceId);
  }

  private rememberAbsent(deviceId: string, nowMs: number): void {
    this.absent.set(deviceId, nowMs + this.absentTtlMs); // to the end of the order, and the first one out when full
  }
}
