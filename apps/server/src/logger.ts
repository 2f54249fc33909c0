import { type DestinationStream, type Logger, pino } from "pino";
import type { ServerConfig } from "./config.ts";

/**
 * Paths pino censors wherever they appear in a log object. Request logs never include headers, and the
 * redaction is the second line of defence should a header, token or secret be passed to a log call.
 */
export const REDACTED_PATHS = [
  "authorization",
  "headers.authorization",
  "req.headers.authorization",
  "request.headers.authorization",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "jwtSecret",
  "*.jwtSecret",
  "password",
  "*.password",
  "databaseUrl",
  "*.databaseUrl",
];

export function createLogger(level: ServerConfig["logLevel"], destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "proxyscale" },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
