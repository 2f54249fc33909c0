/** At most this many batches run at once; requests that arrive meanwhile wait for the next one. */
const MAX_BATCHES_IN_FLIGHT = 2;
const MAX_BATCH = 1_000;

export interface Waiting<Request, Result> {
  request: Request;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/**
 * Group commit: the requests that arrive while earlier batches are at the database run together as one batch
 * (`run` answers or rejects each of them, typically after one shared read and one shared write). Idle, a
 * request starts its own batch on the next turn of the event loop (no timer); under load, batches grow and
 * round trips per request fall. A batch that throws rejects every request it has not answered.
 */
export function groupCommit<Request, Result>(
  run: (batch: ReadonlyArray<Waiting<Request, Result>>) => Promise<void>,
): (request: Request) => Promise<Result> {
  const queue: Array<Waiting<Request, Result>> = [];
  let inFlight = 0;
  let scheduled = false;

  const schedule = () => {
    if (scheduled || inFlight >= MAX_BATCHES_IN_FLIGHT || queue.length === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      const batch = queue.splice(0, MAX_BATCH);
      inFlight += 1;
      run(batch)
        .catch((error: unknown) => {
          // Rejecting an answered promise is a no-op, so only the unanswered ones hear the error.
          for (const waiting of batch) waiting.reject(error);
        })
        .finally(() => {
          inFlight -= 1;
          schedule();
        });
      schedule();
    });
  };

  return (request) =>
    new Promise((resolve, reject) => {
      queue.push({ request, resolve, reject });
      schedule();
    });
}
