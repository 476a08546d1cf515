// Error catalogue of deploy/: running NATS locally (the `airtwin dev` child and the test harness).
// Codes follow AIRTWIN_ERR_<AREA>_<WHAT>; docs/errors.md lists them (checked by a test).

export const DeployErrors = {
  NATS_SERVER_MISSING: {
    code: "AIRTWIN_ERR_DEPLOY_NATS_SERVER_MISSING",
    message: "nats-server binary not found",
  },
  NATS_SERVER_START: {
    code: "AIRTWIN_ERR_DEPLOY_NATS_SERVER_START",
    message: "nats-server did not start",
  },
  DEV_ALREADY_RUNNING: {
    code: "AIRTWIN_ERR_DEPLOY_DEV_ALREADY_RUNNING",
    message: "another airtwin dev already uses this data directory",
  },
  DEV_PORT_IN_USE: {
    code: "AIRTWIN_ERR_DEPLOY_DEV_PORT_IN_USE",
    message: "a port airtwin dev was told to use is in use",
  },
} as const;

export type DeployErrorName = keyof typeof DeployErrors;

/** What to install when nats-server is missing; shared by every message that mentions it. */
export const NATS_SERVER_INSTALL_HINT =
  "Install nats-server: `sudo apt-get install nats-server` (Debian/Ubuntu), or download a release from " +
  "https://github.com/nats-io/nats-server/releases and put `nats-server` on PATH, or set " +
  "AIRTWIN_NATS_SERVER=/path/to/nats-server.";

/** Base class of deploy/ errors: a catalogue code plus structured details. */
export class DeployError extends Error {
  override name = "DeployError";
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  constructor(which: DeployErrorName, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? DeployErrors[which].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = DeployErrors[which].code;
    this.details = options?.details;
  }
}

/** The nats-server binary is not installed, not executable, or AIRTWIN_NATS_SERVER points nowhere. */
export class NatsServerMissingError extends DeployError {
  override name = "NatsServerMissingError";
  /** The paths that were tried, in order. */
  readonly tried: readonly string[];
  constructor(tried: readonly string[], options?: { cause?: unknown; reason?: string }) {
    const reason = options?.reason ?? `nats-server not found (tried ${tried.join(", ") || "nothing"})`;
    super("NATS_SERVER_MISSING", `${reason}. ${NATS_SERVER_INSTALL_HINT}`, { cause: options?.cause, details: { tried } });
    this.tried = tried;
  }
}

/** nats-server was found but exited or did not become ready in time; `logTail` says why. */
export class NatsServerStartError extends DeployError {
  override name = "NatsServerStartError";
  /** The last lines of the server's log and stderr. */
  readonly logTail: string;
  constructor(message: string, logTail: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super("NATS_SERVER_START", logTail ? `${message}\n--- nats-server log (tail) ---\n${logTail}` : message, {
      cause: options?.cause,
      details: { ...options?.details, logTail },
    });
    this.logTail = logTail;
  }
}
