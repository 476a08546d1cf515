// What a twin publishes on `<prefix>.out.integration.<provider>.<deviceId>`, checked before anything is
// delivered: anything else on that subject (MessagePack of another shape, an alert of the wrong types)
// was not written by a twin, and must reach no partner — it is dead-lettered at once instead of being
// POSTed, signed, to a user's webhook or turning a thermostat on.
import { outputProblem } from "../api/output-shape.ts";

/** Why `message` is not an integration message for `deviceId`; undefined when it is one. */
export function integrationMessageProblem(message: unknown, deviceId: string): string | undefined {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return "not a map";
  const m = message as { subscriptionId?: unknown; alert?: unknown; report?: unknown };
  if (typeof m.subscriptionId !== "string") return "no subscriptionId";
  if ((m.alert === undefined) === (m.report === undefined)) return "not exactly one of alert and report";
  const problem = m.alert !== undefined ? outputProblem(m.alert, deviceId, ["at"]) : outputProblem(m.report, deviceId, ["start", "end"]);
  return problem === undefined ? undefined : `${m.alert !== undefined ? "alert" : "report"}: ${problem}`;
}
