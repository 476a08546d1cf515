// The twin as the HTTP API shows it (docs/design.md §5 GET /v1/devices/:id): plain JSON, derived on demand.

import { eventsView } from "./events.ts";
import { channelLearnedView, occupancyView } from "./learned/learned-state.ts";
import type { EventView } from "./events.ts";
import { DEFAULT_OFFLINE_AFTER_MS, isOnline } from "./presence.ts";
import { calibrationView, channelView } from "./stats.ts";
import type { ChannelView } from "./stats.ts";
import type { TwinState } from "./twin.ts";
import { CHANNELS } from "./types.ts";
import { subscriptionView } from "./subscriptions.ts";
import type { Channel, Rule, SubscriptionView } from "./types.ts";

/** Options of {@link twinView}. */
export interface TwinViewOptions {
  /**
   * Wall clock (ms) of the question. When given, `online` is also false once `offlineAfterMs` has passed
   * since `lastSeen` even if no tick has reached the twin yet (e.g. answering from a snapshot).
   */
  now?: number;
  /** As in TwinOptions; default 15 min. */
  offlineAfterMs?: number;
}

/** A channel in the view: its statistics, and what its learned model expects now and forecasts. */
export type ChannelWithModelView = ChannelView & {
  /** The value the device's learned behaviour expects at the channel's last reading. */
  expected?: number;
  /** The forecast 15, 30, 45 and 60 minutes after the channel's last reading. */
  forecast?: Array<{ at: number; value: number }>;
};

/** The JSON body of GET /v1/devices/:id. */
export interface TwinView {
  deviceId: string;
  /** Statistics of each channel that has readings. */
  channels: Partial<Record<Channel, ChannelWithModelView>>;
  /** Whether the room is occupied (inferred from co2, tmp, hum); absent until the first co2 reading. */
  occupancy?: { occupied: boolean; probability: number; since: number };
  calibration: ReturnType<typeof calibrationView>;
  /** Effective rules (defaults included). */
  rules: Rule[];
  /** Event-machine state per rule id. */
  events: Record<string, EventView>;
  /** Secrets are never shown: `secret: true` says a subscription has one. */
  subscriptions: SubscriptionView[];
  /** Wall-clock ms of the last reading's arrival. */
  lastSeen?: number;
  /** Event time of the last applied reading. */
  lastT?: number;
  readings: number;
  duplicates: number;
  late: number;
  online: boolean;
}

/** Builds the API view of a twin (copies; the view shares nothing mutable with the state). */
export function twinView(state: TwinState, options: TwinViewOptions = {}): TwinView {
  const channels: TwinView["channels"] = {};
  for (const ch of CHANNELS) {
    const v: ChannelWithModelView | undefined = channelView(state.stats, ch);
    if (v === undefined) continue;
    const learned = channelLearnedView(state.learned, ch, v.lastAt);
    if (learned !== undefined) {
      v.expected = learned.expected;
      v.forecast = learned.forecast;
    }
    channels[ch] = v;
  }
  const { lastSeen } = state.presence;
  const offlineAfterMs = options.offlineAfterMs ?? DEFAULT_OFFLINE_AFTER_MS;
  const online = isOnline(state.presence) && (options.now === undefined || options.now < (lastSeen as number) + offlineAfterMs);
  const view: TwinView = {
    deviceId: state.deviceId,
    channels,
    calibration: calibrationView(state.stats),
    rules: state.rules.effective.map((r) => ({ ...r })),
    events: eventsView(state.events, state.rules.effective, state.deviceId),
    subscriptions: state.subscriptions.map(subscriptionView),
    readings: state.readings,
    duplicates: state.duplicates,
    late: state.late,
    online,
  };
  if (lastSeen !== undefined) view.lastSeen = lastSeen;
  if (state.lastT !== undefined) view.lastT = state.lastT;
  const occupancy = occupancyView(state.learned);
  if (occupancy !== undefined) view.occupancy = occupancy;
  return view;
}
