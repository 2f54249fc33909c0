import type postgres from "postgres";
import { DatabaseTimeoutError } from "./errors.ts";

/** The part of a postgres.js query (a lazy Promise subclass) the deadline uses. */
interface PendingQuery extends Promise<unknown> {
  /** Sends the query; postgres.js calls it on every `then` and runs it once. */
  handle(): Promise<void>;
  reject(error: unknown): void;
}

function isPendingQuery(value: unknown): value is PendingQuery {
  return (
    value instanceof Promise &&
    typeof (value as { reject?: unknown }).reject === "function" &&
    typeof (value as { handle?: unknown }).handle === "function"
  );
}

/**
 * The statements of a pool that have not settled, so that closing waits for them and nothing else: after a socket
 * error postgres.js keeps the lost statement on its connection until that connection reconnects, and `end()`
 * waited for it until its timeout.
 */
export class InFlight {
  private readonly pending = new Set<Promise<unknown>>();

  track(promise: Promise<unknown>): void {
    const settled = Promise.prototype.then.call(promise, noop, noop) as Promise<void>;
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  /** Resolves when every tracked statement has settled, or after `timeoutMs`, whichever comes first. */
  async settled(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    while (this.pending.size > 0) {
      const all = Promise.all(this.pending).then(() => "settled" as const);
      if ((await Promise.race([all, timeout.then(() => "timeout" as const)])) === "timeout") break;
    }
    clearTimeout(timer);
  }
}

const noop = () => {};

/**
 * `sql` (a postgres.js client, a transaction's or a reserved connection's) whose every statement rejects with
 * DatabaseTimeoutError when it has no answer `timeoutMs` after it was awaited: waiting for a connection of the pool
 * included, which PostgreSQL's statement_timeout does not see, and whether the server answers at all or not.
 *
 * postgres.js has no per-query timeout, so each query it returns is settled from outside: the clock starts when
 * the query is sent on its way (postgres.js runs a query when it is first awaited) and the query's own `reject`
 * ends it. The statement itself is not withdrawn: on a live server statement_timeout ends it, and a connection that
 * never answers is destroyed by the socket's stall guard (pg-socket.ts). So a timed-out write may still have been
 * applied.
 *
 * Transactions (`begin`, `savepoint`) are bounded phase by phase: reaching the body (a connection, then BEGIN)
 * within the deadline, each statement of the body by its own, and COMMIT or ROLLBACK within one more. A body
 * reached after its caller timed out throws at once, so it rolls back without running.
 */
export function withQueryDeadline<T extends postgres.Sql>(sql: T, timeoutMs: number, inFlight: InFlight): T {
  return new Proxy(sql, {
    apply(target, thisArg, args) {
      return bound(Reflect.apply(target, thisArg, args), timeoutMs, inFlight);
    },
    get(target, property) {
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      if (property === "unsafe" || property === "file") {
        return (...args: unknown[]) => bound(value.apply(target, args), timeoutMs, inFlight);
      }
      if (property === "begin" || property === "savepoint") {
        return (...args: unknown[]) => boundedTransaction(value.bind(target), args, timeoutMs, inFlight);
      }
      return value;
    },
  });
}

function bound<T>(query: T, timeoutMs: number, inFlight: InFlight): T {
  if (!isPendingQuery(query)) return query;
  const handle = query.handle;
  let sent = false;
  query.handle = function (this: PendingQuery) {
    if (!sent) {
      sent = true;
      inFlight.track(query);
      if (timeoutMs > 0) {
        const timer = setTimeout(() => query.reject(new DatabaseTimeoutError(timeoutMs)), timeoutMs);
        timer.unref();
        const clear = () => clearTimeout(timer);
        Promise.prototype.then.call(query, clear, clear);
      }
    }
    return handle.call(this);
  };
  return query;
}

type Body = (sql: postgres.Sql) => unknown;

function boundedTransaction(
  begin: (...args: unknown[]) => Promise<unknown>,
  args: unknown[],
  timeoutMs: number,
  inFlight: InFlight,
): Promise<unknown> {
  const body = args.pop() as Body;
  const transaction = new Promise((resolve, reject) => {
    let phase: "reaching" | "running" | "ending" | "settled" = "reaching";
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (!(timeoutMs > 0)) return;
      timer = setTimeout(() => {
        phase = "settled";
        reject(new DatabaseTimeoutError(timeoutMs));
      }, timeoutMs);
      timer.unref();
    };
    arm();
    begin(...args, async (sql: postgres.Sql) => {
      if (phase === "settled") throw new DatabaseTimeoutError(timeoutMs);
      clearTimeout(timer);
      phase = "running";
      try {
        const result = body(withQueryDeadline(sql, timeoutMs, inFlight));
        // postgres.js runs a body's array of queries together; awaiting the array itself would not run them.
        return Array.isArray(result) ? await Promise.all(result) : await result;
      } finally {
        if (phase === "running") {
          phase = "ending";
          arm();
        }
      }
    }).then(
      (value) => {
        clearTimeout(timer);
        if (phase === "settled") return;
        phase = "settled";
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (phase === "settled") return;
        phase = "settled";
        reject(error);
      },
    );
  });
  inFlight.track(transaction);
  return transaction;
}

/**
 * `promise` (a connection being reserved) or a DatabaseTimeoutError after `timeoutMs`; a value that arrives after
 * the deadline goes to `abandon` (to release it).
 */
export function withinDeadline<T>(
  promise: Promise<T>,
  timeoutMs: number,
  abandon: (late: T) => void,
): Promise<T> {
  if (!(timeoutMs > 0)) return promise;
  return new Promise((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(new DatabaseTimeoutError(timeoutMs));
    }, timeoutMs);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (expired) abandon(value);
        else resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (!expired) reject(error);
      },
    );
  });
}
