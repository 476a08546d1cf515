// The email integration against a real local SMTP server (smtp-server), mails parsed with mailparser:
// a day of readings through a real twin gives an alert e-mail and, when the day closes, the daily
// report e-mail — read as a user reads it (text and HTML), and its HTML rendered in Chromium (the
// screenshot goes to docs/img/report-email.png with AIRTWIN_UPDATE_SCREENSHOTS=1). A 5xx refusal is
// dead-lettered at once; a 4xx is retried.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Reading } from "../../actors/device-twin/domain/mod.ts";
import { emailIntegration } from "../../gateways/integrations/email/email.ts";
import { startIntegrationTestbed, type IntegrationTestbed } from "../../gateways/integrations/testing.ts";
import { launchChromium } from "../harness/chromium.ts";
import { waitFor } from "../harness/mod.ts";

const SHOTS = process.env.AIRTWIN_UPDATE_SCREENSHOTS === "1" ? new URL("../../docs/img/", import.meta.url).pathname : mkdtempSync(join(tmpdir(), "airtwin-email-"));
const MIN = 60_000;
const MONDAY = Date.UTC(2026, 1, 2);

/**
 * A day of 10-minute readings from `start`: on the Monday PM2.5 8 except 50 from 18:00 to 19:20 (cooking)
 * and CO₂ rising in the evening; the Sunday before a calmer 12 and 520 throughout.
 */
function day(start: number): Reading[] {
  const out: Reading[] = [];
  for (let t = start; t < start + 86_400_000; t += 10 * MIN) {
    const h = (t - start) / 3_600_000;
    if (start !== MONDAY) out.push({ t, pm: 12, co2: 520, tmp: 20.5, hum: 44 });
    else out.push({ t, pm: h >= 18 && h < 19.5 ? 50 : 8, co2: Math.round(h >= 17 && h < 23 ? 900 + (h - 17) * 60 : 480), tmp: 21.5, hum: 41 });
  }
  return out;
}

describe("email integration", () => {
  let bed: IntegrationTestbed;
  let smtp: SMTPServer;
  const mails: ParsedMail[] = [];
  let tempFailures = 0;

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onRcptTo(address, _session, cb) {
        if (address.address.startsWith("nobody@")) return cb(Object.assign(new Error("mailbox unavailable"), { responseCode: 550 }));
        if (address.address.startsWith("busy@") && tempFailures++ === 0) return cb(Object.assign(new Error("try again later"), { responseCode: 451 }));
        cb();
      },
      onData(stream, _session, cb) {
        simpleParser(stream).then((m) => {
          mails.push(m);
          cb();
        }, cb);
      },
    });
    await new Promise<void>((ok) => smtp.listen(0, "127.0.0.1", ok));
    const port = (smtp.server.address() as { port: number }).port;
    bed = await startIntegrationTestbed();
    await bed.run(emailIntegration({ smtpUrl: `smtp://127.0.0.1:${port}`, from: "airtwin <air@example.org>", backoff: { initialMs: 200 } }));
  }, 60_000);
  afterAll(async () => {
    await bed?.close();
    await new Promise<void>((ok) => smtp?.close(() => ok()));
  });

  const to = (address: string) => mails.filter((m) => (Array.isArray(m.to) ? m.to : [m.to]).some((a) => a?.text.includes(address)));

  it("an alert and, when the day closes, the daily report: text and HTML a person reads", async () => {
    await bed.subscribe("kitchen", { id: "mail", provider: "email", match: { kinds: ["event.start", "report.day"] }, target: "ana@example.org" });
    await bed.sendReadings("kitchen", day(MONDAY - 86_400_000));
    await bed.sendReadings("kitchen", day(MONDAY));
    await bed.sendReadings("kitchen", [{ t: MONDAY + 86_400_000 + 5 * MIN, pm: 7, co2: 470, tmp: 21, hum: 40 }]);
    await waitFor(() => to("ana@example.org").length === 3, { timeoutMs: 20_000, message: "3 e-mails" });
    const bySubject = (prefix: string) => to("ana@example.org").find((m) => m.subject?.startsWith(prefix)) as ParsedMail;
    const alert = bySubject("PM2.5 is high");
    const report = bySubject("Your air on Mon");
    expect(bySubject("Your air on Sun 1 Feb 2026 was good")).toBeDefined();

    expect(alert.subject).toBe("PM2.5 is high in kitchen");
    expect(alert.text).toContain("PM2.5 reached 50.0 µg/m³, at or over the 35.5 µg/m³ of rule default-pm, since 18:00 UTC");
    expect(alert.from?.value[0]).toMatchObject({ name: "airtwin", address: "air@example.org" });

    expect(report.subject).toBe("Your air on Mon 2 Feb 2026 was good — kitchen");
    const text = report.text ?? "";
    expect(text).toContain("Daily report for kitchen, Mon 2 Feb 2026 (UTC).");
    expect(text).toMatch(/The air was good: fine particles averaged 10\.6 µg\/m³, and CO₂ averaged \d+ ppm\./);
    expect(text).toContain("Worst hour: 18:00–19:00 UTC, PM2.5 averaged 50.0 µg/m³.");
    expect(text).toContain("PM2.5 (default-pm): 18:00–19:30 UTC, 1 h 30 min, peak 50.0 µg/m³.");
    expect(text).toContain("In all, 1 h 30 min in a pollution event.");
    // the figures, each compared with the Sunday (PM2.5 12 → 10.6: 11 % less; temperature 20.5 → 21.5 °C)
    expect(text).toMatch(/PM2\.5\s+10\.6 µg\/m³\s+8\.0 µg\/m³\s+50\.0 µg\/m³\s+▼ 11 %\n/);
    expect(text).toMatch(/Temperature\s+21\.5 °C\s+21\.5 °C\s+21\.5 °C\s+▲ 1\.0 °C\n/);
    expect(report.html).toContain("<table");
    expect(report.headers.get("x-airtwin-delivery")).toBe(`kitchen:report.day:${MONDAY}:mail`);

    await using browser = await launchChromium({ viewport: { width: 760, height: 900 } });
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    await page.setContent(report.html as string);
    expect(await page.textContent("h1")).toBe(report.subject);
    expect(await page.locator("table tr").count()).toBe(5); // header + pm, co2, tmp, hum
    await page.screenshot({ path: join(SHOTS, "report-email.png"), fullPage: true });
  }, 60_000);

  it("a refused address is dead-lettered at once; a temporary refusal is retried", async () => {
    await bed.subscribe("hall", { id: "m1", provider: "email", match: {}, target: "nobody@example.org" });
    await bed.subscribe("hall", { id: "m2", provider: "email", match: {}, target: "busy@example.org" });
    const alert = { id: "hall:offline:1", deviceId: "hall", channel: "device" as const, kind: "offline" as const, at: Date.UTC(2026, 1, 3, 9) };
    await bed.publish("email", "hall", `${alert.id}:m1`, { subscriptionId: "m1", target: "", alert });
    await bed.publish("email", "hall", `${alert.id}:m2`, { subscriptionId: "m2", target: "", alert });
    await waitFor(() => to("busy@example.org").length === 1, { timeoutMs: 15_000, message: "retried mail" });
    expect(to("busy@example.org")[0]!.subject).toBe("hall is offline");
    expect(tempFailures).toBeGreaterThanOrEqual(2);
    const letters = await waitFor(async () => {
      const l = (await bed.deadLetters("email")).filter((d) => d.deviceId === "hall");
      return l.length > 0 ? l : undefined;
    }, { message: "dead letter" });
    expect(letters[0]).toMatchObject({ attempts: 1, lastError: { name: "PermanentFailure", message: expect.stringContaining("550") } });
    expect(to("nobody@example.org")).toHaveLength(0);
  }, 30_000);
});
