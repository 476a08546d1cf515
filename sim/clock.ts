// Event time against wall time: event time runs `speed` times faster than the wall clock from
// `startEventMs`; with `catchUp`, once it reaches the wall clock it follows the wall clock (speed 1),
// so a demo fleet that started days in the past never posts readings from the future.

export interface SimClockOptions {
  startEventMs: number;
  speed: number;
  /** Follow the wall clock once event time reaches it. */
  catchUp?: boolean;
  /** The wall clock (ms); default Date.now. */
  now?: () => number;
}

export class SimClock {
  readonly speed: number;
  private readonly startEventMs: number;
  private readonly startWallMs: number;
  private readonly catchUp: boolean;
  private readonly wall: () => number;
  private caughtUp = false;

  constructor(o: SimClockOptions) {
    this.wall = o.now ?? Date.now;
    this.speed = o.speed;
    this.startEventMs = o.startEventMs;
    this.startWallMs = this.wall();
    this.catchUp = o.catchUp ?? false;
  }

  /** Event time now. */
  eventNow(): number {
    const wall = this.wall();
    const event = this.startEventMs + (wall - this.startWallMs) * this.speed;
    if (this.catchUp && event >= wall) {
      this.caughtUp = true;
      return wall;
    }
    return event;
  }

  /** Whether event time has reached the wall clock and follows it now (catch-up mode only). */
  get live(): boolean {
    return this.caughtUp;
  }

  /** Wall time at which event time `t` is reached (ms). */
  wallAt(eventMs: number): number {
    if (this.caughtUp) return eventMs;
    const wall = this.startWallMs + (eventMs - this.startEventMs) / this.speed;
    // event time runs ahead of the wall clock's gain until it meets it, then with it: a time the linear
    // clock reaches before the wall clock does comes when the wall clock gets there
    return this.catchUp ? Math.max(wall, eventMs) : wall;
  }

  /** Wall ms since the clock started. */
  elapsedMs(): number {
    return this.wall() - this.startWallMs;
  }
}
