// What the e-mails say for the cases the end-to-end test does not reach: the weekly summary with its
// comparison, each alert kind, and the verdict's thresholds.
import { describe, expect, it } from "vitest";
import type { Report } from "../../actors/device-twin/domain/mod.ts";
import { renderAlertEmail, renderReportEmail, verdict } from "../../gateways/integrations/email/render.ts";

const WEEK = Date.UTC(2026, 1, 2);

describe("e-mail rendering", () => {
  it("a weekly summary: the week's figures against the week before, the worst day and hour, events per rule, presence", () => {
    const report: Report = {
      id: `den:report.week:${WEEK}`, deviceId: "den", kind: "report.week", start: WEEK, end: WEEK + 7 * 86_400_000,
      channels: { pm: { count: 2016, mean: 18.4, min: 3, max: 88 }, co2: { count: 2016, mean: 1120, min: 420, max: 2300 } },
      rules: { "default-pm": { channel: "pm", events: 3, minutes: 125 }, "default-co2": { channel: "co2", events: 1, minutes: 40 } },
      events: [], eventsOmitted: 0, occupiedHours: 61.25, days: 7,
      worstHour: { start: WEEK + 3 * 86_400_000 + 19 * 3_600_000, channel: "pm", mean: 71.3 },
      worstDay: { start: WEEK + 3 * 86_400_000, channel: "pm", mean: 30.2 },
      previous: { start: WEEK - 7 * 86_400_000, means: { pm: 23, co2: 1120 } },
    };
    const mail = renderReportEmail(report);
    expect(mail.subject).toBe("Your air on the week of Mon 2 Feb 2026 was fair — den");
    expect(mail.text).toContain("The air was fair: fine particles averaged 18.4 µg/m³ (above the WHO daily guideline of 15), and CO₂ averaged 1120 ppm (the room could use more fresh air).");
    expect(mail.text).toMatch(/PM2\.5\s+18\.4 µg\/m³\s+3\.0 µg\/m³\s+88\.0 µg\/m³\s+▼ 20 %\n/);
    expect(mail.text).toMatch(/CO₂\s+1120 ppm\s+420 ppm\s+2300 ppm\s+same\n/);
    expect(mail.text).toContain("Worst hour: Thu 5 Feb 2026, 19:00–20:00 UTC, PM2.5 averaged 71.3 µg/m³.");
    expect(mail.text).toContain("Worst day: Thu 5 Feb 2026, PM2.5 averaged 30.2 µg/m³.");
    expect(mail.text).toContain("PM2.5 (default-pm): 3 events, 2 h 5 min in all.");
    expect(mail.text).toContain("CO₂ (default-co2): 1 event, 40 min in all.");
    expect(mail.text).toContain("The room was occupied for about 61.3 hours over 7 days with readings.");
    expect(mail.html).toContain("vs the week before");
  });

  it("each alert kind in a sentence", () => {
    const base = { deviceId: "den", at: Date.UTC(2026, 1, 3, 14, 5) };
    expect(renderAlertEmail({ ...base, id: "a", kind: "event.end", channel: "co2", ruleId: "default-co2", startedAt: base.at - 3_000_000, endedAt: base.at - 600_000, durationMs: 2_400_000, peak: 1730, mean: 1510 }).text)
      .toContain("The CO₂ event of rule default-co2 ended at 13:55 UTC after 40 min.\n");
    const forecast = renderAlertEmail({ ...base, id: "b", kind: "forecast", channel: "co2", ruleId: "default-co2", value: 1400, expectedAt: base.at + 1_200_000 });
    expect(forecast.subject).toBe("CO₂ is expected to rise in den");
    expect(forecast.text).toContain("CO₂ is forecast to pass 1400 ppm around 14:25 UTC (rule default-co2).");
    expect(renderAlertEmail({ ...base, id: "c", kind: "anomaly", channel: "pm", value: 400, expected: 9.5, reason: "spike" }).text).toContain("PM2.5 read 400.0 µg/m³ where about 9.5 µg/m³ was expected (spike).");
    expect(renderAlertEmail({ ...base, id: "d", kind: "offline", channel: "device" }).subject).toBe("den is offline");
    expect(renderAlertEmail({ ...base, id: "e", kind: "online", channel: "device" }).subject).toBe("den is back online");
  });

  it("calls the air good, fair or poor by PM2.5 and CO₂", () => {
    expect(verdict({ pm: { count: 1, mean: 10, min: 10, max: 10 } }).word).toBe("good");
    expect(verdict({ pm: { count: 1, mean: 20, min: 20, max: 20 } }).word).toBe("fair");
    expect(verdict({ pm: { count: 1, mean: 10, min: 10, max: 10 }, co2: { count: 1, mean: 1500, min: 1, max: 1 } }).word).toBe("poor");
    expect(verdict({ tmp: { count: 1, mean: 20, min: 20, max: 20 } }).sentence).toBe("The air was good.");
  });
});
