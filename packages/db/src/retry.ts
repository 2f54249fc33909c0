import { PgTransaction } from "drizzle-orm/pg-core";
import pRetry from "p-retry";
import { type Db, withTransaction } from "./db.ts";
import { driverError } from "./errors.ts";

/**
 * What PostgreSQL aborts a transaction with when it lost a race it can only settle by rolling one side back: the
 * whole transaction is undone, so running it again from the start is safe.
 */
const RETRYABLE_CODES = new Set([
  "40P01", // deadlock_detected
  "40001", // serialization_failure
]);

export function isRetryableAbort(error: unknown): boolean {
  const code = driverError(error).code;
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/** Whether `db` is a transaction's handle (a plain boolean: narrowing to drizzle's class would lose `Db`'s schema). */
function isTransaction(db: Db): boolean {
  return db instanceof PgTransaction;
}

/** Attempts in all (the first and its retries) of a transaction PostgreSQL keeps aborting. */
export const TRANSACTION_ATTEMPTS = 4;

/**
 * `withTransaction`, run again when PostgreSQL aborts it for a deadlock or a serialization failure: up to
 * TRANSACTION_ATTEMPTS attempts, after a small jittered backoff (5–10 ms, then 10–20, 20–40), so the transactions
 * that collided do not collide again in step. Any other error is thrown at once. Called inside a transaction it
 * runs once, as a savepoint: the abort undid the outer transaction, so only the outer one can be run again.
 */
export function withRetriedTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  if (isTransaction(db)) return withTransaction(db, fn);
  return pRetry(() => withTransaction(db, fn), {
    retries: TRANSACTION_ATTEMPTS - 1,
    minTimeout: 5,
    factor: 2,
    randomize: true,
    shouldRetry: ({ error }) => isRetryableAbort(error),
  });
}
