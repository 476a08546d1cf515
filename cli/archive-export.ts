// `airtwin archive export --from T --to T [--device ID] [--format csv|jsonl]`: archived readings to
// stdout (gateways/archive/export.ts), in constant memory; T is epoch ms or ISO 8601 with a zone.
import { loadArchiveConfig } from "../gateways/archive/config.ts";
import { exportReadings, type ExportFormat } from "../gateways/archive/export.ts";
import { GatewayError } from "../gateways/errors.ts";
import { parseTime } from "../gateways/http/routes/history.ts";
import { openArchiveDatabase } from "./archive.ts";

export interface ExportArgs {
  fromMs: number;
  toMs: number;
  deviceId?: string;
  format: ExportFormat;
}

export function parseExportArgs(args: readonly string[]): ExportArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    if (!["--from", "--to", "--device", "--format"].includes(flag!)) throw new GatewayError("ARCHIVE_RESTORE_INVALID", `unexpected argument ${a}`);
    const v = inline ?? args[++i];
    if (v === undefined) throw new GatewayError("ARCHIVE_RESTORE_INVALID", `${flag} needs a value`);
    values.set(flag!, v);
  }
  const time = (flag: string): number => {
    try {
      const t = parseTime(flag, values.get(flag));
      if (t === undefined) throw new GatewayError("ARCHIVE_RESTORE_INVALID", `${flag} is required`);
      return t;
    } catch (err) {
      if (err instanceof GatewayError && err.code === "AIRTWIN_ERR_ARCHIVE_RESTORE_INVALID") throw err;
      throw new GatewayError("ARCHIVE_RESTORE_INVALID", `${flag} must be epoch milliseconds or an ISO 8601 date-time with a zone`);
    }
  };
  const fromMs = time("--from");
  const toMs = time("--to");
  if (toMs <= fromMs) throw new GatewayError("ARCHIVE_RESTORE_INVALID", "--to must be after --from");
  const format = values.get("--format") ?? "csv";
  if (format !== "csv" && format !== "jsonl") throw new GatewayError("ARCHIVE_RESTORE_INVALID", "--format must be csv or jsonl");
  const deviceId = values.get("--device");
  if (deviceId !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(deviceId)) throw new GatewayError("ARCHIVE_RESTORE_INVALID", "--device must be 1-64 characters of [A-Za-z0-9_-]");
  return { fromMs, toMs, format, ...(deviceId === undefined ? {} : { deviceId }) };
}

export async function runExport(args: string[]): Promise<void> {
  const parsed = parseExportArgs(args);
  const config = loadArchiveConfig();
  const db = await openArchiveDatabase(config);
  try {
    const n = await exportReadings(db, {
      ...parsed,
      write: (chunk) => new Promise<void>((resolve, reject) => (process.stdout.write(chunk, (err) => (err ? reject(err) : resolve())))),
    });
    process.stderr.write(`airtwin archive export: ${n} readings\n`);
  } finally {
    await db.close();
  }
}
