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
  "parameters",
  "*.parameters",
  "params",
  "*.params",
];

/**
 * Error properties a log line keeps; every other one is dropped. A database error carries its statement's
 * parameters (drizzle's `params`, postgres.js's `parameters`, PGlite's `params`), which hold whatever the request
 * sent — a webhook secret, a header value, an env value — and a property list cannot be redacted path by path.
 */
const KEPT_ERROR_FIELDS = ["code", "severity", "routine", "constraint", "table", "column", "schema"] as const;

/** How deep a chain of causes is followed. */
const MAX_CAUSE_DEPTH = 8;

/**
 * The message without a statement's parameters: drizzle's DrizzleQueryError reads "Failed query: <sql>\nparams:
 * <values>". The SQL keeps its placeholders ($1, $2), never the values.
 */
export function withoutQueryParameters(message: string): string {
  const at = message.search(/\n\s*params:/);
  return at === -1 ? message : `${message.slice(0, at)}\nparams: [redacted]`;
}

/**
 * What a log line shows of an error (pino's `err`, `error` and `cause` serializer): its type, its message and
 * stack frames without query parameters, the fields in KEPT_ERROR_FIELDS, and its causes (and an
 * AggregateError's errors) the same way. A string is cleaned like a message.
 */
export function serializeError(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return withoutQueryParameters(value);
  if (!(value instanceof Error)) {
    return value === null || typeof value !== "object" ? value : "[non-error object]";
  }
  const message = withoutQueryParameters(value.message);
  const type = value.constructor?.name ?? value.name;
  // The stack starts with the message, so it is rebuilt from the cleaned message and the frames alone.
  const frames = (value.stack ?? "").split("\n").filter((line) => /^\s+at /.test(line));
  const result: Record<string, unknown> = {
    type,
    message,
    stack: [`${value.name}: ${message}`, ...frames].join("\n"),
  };
  const fields = value as unknown as Record<string, unknown>;
  for (const field of KEPT_ERROR_FIELDS) {
    const kept = fields[field];
    if (typeof kept === "string" || typeof kept === "number") result[field] = kept;
  }
  if (depth < MAX_CAUSE_DEPTH) {
    if (value.cause !== undefined) result.cause = serializeError(value.cause, depth + 1);
    if (value instanceof AggregateError)
      result.errors = value.errors.slice(0, 10).map((error) => serializeError(error, depth + 1));
  }
  return result;
}

export function createLogger(level: ServerConfig["logLevel"], destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "proxyscale" },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError, error: serializeError, cause: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
