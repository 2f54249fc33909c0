import { type Tier, type TierLimits, tierCapMessage } from "@proxyscale/core";

/** The row asked for does not exist (or belongs to another owner). The API maps it to 404. */
export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`);
  }
}

/** The change conflicts with the current state: a finished event, a duplicate name, a scale in flight. 409. */
export class ConflictError extends Error {
  override readonly name = "ConflictError";
}

/**
 * A write would take an owner past a tier cap (e.g. one proxy more than `maxProxiesPerOwner`). The API maps it
 * to 403; the message names the cap, the tier and the figures.
 */
export class CapExceededError extends Error {
  override readonly name = "CapExceededError";
  constructor(
    readonly cap: keyof TierLimits,
    readonly tier: Tier,
    readonly allowed: number,
    readonly requested: number,
  ) {
    super(tierCapMessage({ cap, tier, allowed, requested }));
  }
}

/** The database cannot be reached, or its data directory is held by another process. 503. */
export class DatabaseUnavailableError extends Error {
  override readonly name: string = "DatabaseUnavailableError";
}

/**
 * A statement got no answer within its deadline (`queryTimeoutMs`): PostgreSQL is frozen, overloaded, or cut off
 * by the network. Its outcome is unknown (a write may still be applied). Unavailable, so 503.
 */
export class DatabaseTimeoutError extends DatabaseUnavailableError {
  override readonly name = "DatabaseTimeoutError";
  readonly code = "QUERY_TIMEOUT";
  constructor(readonly timeoutMs: number) {
    super(`the database did not answer within ${timeoutMs} ms`);
  }
}

/** The PGlite data directory is open in another process (or already open in this one). */
export class DataDirectoryInUseError extends DatabaseUnavailableError {
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
  ) {
    super(
      `the data directory ${dataDir} is in use by process ${ownerPid}: stop that process, ` +
        "or point PROXYSCALE_DATA_DIR at another directory (PGlite allows one process per directory)",
    );
  }
}

/** A migration failed or a committed migration file changed after it was applied. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "QUERY_TIMEOUT", // DatabaseTimeoutError, through drizzle's wrapper
  "57014", // query_canceled: statement_timeout
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "3D000", // invalid_catalog_name: the database was dropped
]);

/** The driver's error under drizzle's wrapper (DrizzleQueryError keeps it as `cause`). */
export function driverError(error: unknown): {
  code?: string;
  constraint_name?: string;
  constraint?: string;
} {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (typeof (current as { code?: unknown }).code === "string")
      return current as unknown as { code: string };
    current = (current as { cause?: unknown }).cause;
  }
  return {};
}

/** True when the error means the database is unreachable (connection refused, closed, shut down, timed out). */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  if (error instanceof Error && error.cause instanceof DatabaseUnavailableError) return true;
  const code = driverError(error).code;
  return code !== undefined && (CONNECTION_ERROR_CODES.has(code) || code.startsWith("08"));
}

/** The violated constraint's name when the error is a unique, check or foreign key violation. */
export function violatedConstraint(error: unknown): { code: string; constraint: string } | null {
  const driver = driverError(error);
  const constraint = driver.constraint_name ?? driver.constraint;
  if (!driver.code || !constraint || !driver.code.startsWith("23")) return null;
  return { code: driver.code, constraint };
}

/**
 * Maps a database error to the exported classes where one applies (unreachable → DatabaseUnavailableError),
 * and returns anything else unchanged. For callers that map errors to status codes.
 */
export function toDatabaseError(error: unknown): unknown {
  if (error instanceof NotFoundError || error instanceof ConflictError || error instanceof CapExceededError)
    return error;
  if (error instanceof DatabaseUnavailableError) return error;
  if (isDatabaseUnavailable(error)) {
    return new DatabaseUnavailableError("the database is unavailable", { cause: error });
  }
  return error;
}

/** An argument the database cannot use (a malformed cursor, an oversized batch). 400. */
export class InvalidInputError extends Error {
  override readonly name = "InvalidInputError";
}
