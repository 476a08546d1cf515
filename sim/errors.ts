// Error catalogue of sim/: the simulator's options, its CSV replay and its fleet setup.
// Codes follow AIRTWIN_ERR_<AREA>_<WHAT>; docs/errors.md lists them (checked by a test).

export const SimErrors = {
  OPTIONS_INVALID: {
    code: "AIRTWIN_ERR_SIM_OPTIONS_INVALID",
    message: "invalid simulate options",
  },
  CSV_INVALID: {
    code: "AIRTWIN_ERR_SIM_CSV_INVALID",
    message: "the CSV file cannot be replayed",
  },
  TARGET_UNREACHABLE: {
    code: "AIRTWIN_ERR_SIM_TARGET_UNREACHABLE",
    message: "no airtwin to send to",
  },
  SETUP_FAILED: {
    code: "AIRTWIN_ERR_SIM_SETUP_FAILED",
    message: "registering the simulated user or devices failed",
  },
  DEVICE_TOKEN_UNKNOWN: {
    code: "AIRTWIN_ERR_SIM_DEVICE_TOKEN_UNKNOWN",
    message: "a simulated device is registered but its token is not in the fleet file",
  },
} as const;

export type SimErrorName = keyof typeof SimErrors;

/** An error of the simulator: a catalogue code plus structured details. */
export class SimError extends Error {
  override name = "SimError";
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  constructor(which: SimErrorName, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? SimErrors[which].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = SimErrors[which].code;
    this.details = options?.details;
  }
}
