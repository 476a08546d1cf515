// The built-in `email` integration: alerts and reports by SMTP (nodemailer) to the subscription's
// address (`target`), as text and HTML (render.ts). The server is AIRTWIN_SMTP_URL (smtp:// or
// smtps://, credentials in the URL). A 5xx answer to the message (mailbox unknown, refused) is
// permanent and dead-letters at once; a 4xx or a connection failure is retried with backoff. Each
// message carries its delivery id as Message-ID, so a repeat after a crash can be recognised.
import { createTransport, type Transporter } from "nodemailer";
import { defineIntegration, PermanentFailure, type BackoffOptions, type IntegrationDefinition } from "../define.ts";
import { IntegrationError } from "../errors.ts";
import { renderAlertEmail, renderReportEmail } from "./render.ts";

/** Options of {@link emailIntegration}. */
export interface EmailOptions {
  /** smtp://user:pass@host:port or smtps://… */
  smtpUrl: string;
  /** The From header. Default "airtwin <airtwin@localhost>". */
  from?: string;
  concurrency?: number;
  maxAttempts?: number;
  backoff?: BackoffOptions;
  timeoutMs?: number;
}

/** Checks an SMTP URL (coded error naming the variable). */
export function checkSmtpUrl(url: string, variable = "AIRTWIN_SMTP_URL"): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new IntegrationError("INTEGRATION_CONFIG_INVALID", `${variable} is not a URL`, { details: { variable } });
  }
  if (u.protocol !== "smtp:" && u.protocol !== "smtps:") throw new IntegrationError("INTEGRATION_CONFIG_INVALID", `${variable} must be smtp:// or smtps://`, { details: { variable } });
  return url;
}

export function emailIntegration(o: EmailOptions): IntegrationDefinition {
  const timeoutMs = o.timeoutMs ?? 20_000;
  let transport: Transporter | undefined;
  return defineIntegration({
    provider: "email",
    concurrency: o.concurrency ?? 4,
    maxAttempts: o.maxAttempts ?? 8,
    timeoutMs,
    ...(o.backoff === undefined ? {} : { backoff: o.backoff }),
    async start() {
      const url = new URL(checkSmtpUrl(o.smtpUrl));
      transport = createTransport({
        host: url.hostname,
        port: url.port === "" ? (url.protocol === "smtps:" ? 465 : 587) : Number(url.port),
        secure: url.protocol === "smtps:",
        ...(url.username === "" ? {} : { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }),
        pool: true,
        maxConnections: o.concurrency ?? 4,
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
      });
    },
    async deliver(d) {
      const mail = d.alert !== undefined ? renderAlertEmail(d.alert) : renderReportEmail(d.report!);
      try {
        await (transport as Transporter).sendMail({
          from: o.from ?? "airtwin <airtwin@localhost>",
          to: d.subscription.target,
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
          messageId: `<${d.id.replace(/[^A-Za-z0-9._:-]/g, "_")}@airtwin>`,
          headers: { "X-Airtwin-Delivery": d.id, "X-Airtwin-Device": d.deviceId },
        });
      } catch (err) {
        const code = (err as { responseCode?: number }).responseCode;
        if (code !== undefined && code >= 500) throw new PermanentFailure(`SMTP refused the message: ${(err as Error).message}`, { cause: err });
        throw err;
      }
    },
    async close() {
      transport?.close();
    },
  });
}
