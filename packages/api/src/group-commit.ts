/** At most this many batches run at once; requests that arrive meanwhile wait for the next one. */
const MAX_BATCHES_IN_FLIGHT = 2;
const MAX_BATCH = 1_000;

export interface Waiting<Request, Result> {
  request: Request;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

export interface GroupCommitOptions<Request> {
  /**
   * The lane a request waits in (its owner): a batch takes one request from each lane in turn, and the lanes
   * it served go to the back, so a lane with a thousand requests waiting shares each batch with the others
   * instead of filling it. Default: one lane (first come, first served).
   */
  laneOf?: (request: Request) => string;
  /** A request's cost (its samples); a batch holds at most `maxWeight` of it, or one request if heavier. */
  weightOf?: (request: Request) => number;
  /** Default 10,000. */
  maxWeight?: number;
}

/** Default weight budget of one batch: two of the db's 5,000-row statements. */
export const DEFAULT_MAX_BATCH_WEIGHT = 10_000;

/**
 * Group commit: the requests that arrive while earlier batches are at the database run together as one batch
 * (`run` answers or rejects each of them, typically after one shared read and one shared write). Idle, a
 * request starts its own batch on the next turn of the event loop (no timer); under load, batches grow and
 * round trips per request fall. A batch that throws rejects every request it has not answered.
 * Batches are fair between lanes (`laneOf`, round-robin), a lane takes no second batch in flight while another
 * lane waits, and a batch is bounded by weight (`weightOf`), so one owner's backlog (or its heavy proxy)
 * delays its own requests, and everyone else's by at most one batch of its own.
 */
export function groupCommit<Request, Result>(
  run: (batch: ReadonlyArray<Waiting<Request, Result>>) => Promise<void>,
  options: GroupCommitOptions<Request> = {},
): (request: Request) => Promise<Result> {
  const laneOf = options.laneOf ?? (() => "");
  const weightOf = options.weightOf ?? (() => 1);
  const maxWeight = options.maxWeight ?? DEFAULT_MAX_BATCH_WEIGHT;
  /** Waiting requests by lane; the Map's order is the lanes' turn. */
  const lanes = new Map<string, Array<Waiting<Request, Result>>>();
  let inFlight = 0;
  let scheduled = false;

  /** Lanes with a request in a batch in flight, and how many such batches. */
  const busy = new Map<string, number>();

  /**
   * One request per lane in turn. A lane already in a batch in flight is passed over while a lane that is not
   * waits, so one lane's backlog never holds both batches in flight while someone else waits.
   */
  const takeBatch = (): Array<Waiting<Request, Result>> => {
    const others = [...lanes.keys()].some((lane) => !busy.has(lane));
    const batch: Array<Waiting<Request, Result>> = [];
    let weight = 0;
    let took = true;
    while (took && batch.length < MAX_BATCH && lanes.size > 0) {
      took = false;
      for (const [lane, waiting] of [...lanes]) {
        if (batch.length >= MAX_BATCH) break;
        if (others && busy.has(lane)) continue;
        const next = waiting[0]!;
        const cost = weightOf(next.request);
        if (batch.length > 0 && weight + cost > maxWeight) continue;
        waiting.shift();
        batch.push(next);
        weight += cost;
        took = true;
        // Served: to the back of the turn (or gone when empty).
        lanes.delete(lane);
        if (waiting.length > 0) lanes.set(lane, waiting);
      }
    }
    return batch;
  };

  const schedule = () => {
    if (scheduled || inFlight >= MAX_BATCHES_IN_FLIGHT || lanes.size === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      const batch = takeBatch();
      if (batch.length === 0) return;
      inFlight += 1;
      const batchLanes = new Set(batch.map((waiting) => laneOf(waiting.request)));
      for (const lane of batchLanes) busy.set(lane, (busy.get(lane) ?? 0) + 1);
      run(batch)
        .catch((error: unknown) => {
          // Rejecting an answered promise is a no-op, so only the unanswered ones hear the error.
          for (const waiting of batch) waiting.reject(error);
        })
        .finally(() => {
          inFlight -= 1;
          for (const lane of batchLanes) {
            const count = (busy.get(lane) ?? 1) - 1;
            if (count > 0) busy.set(lane, count);
            else busy.delete(lane);
          }
          schedule();
        });
      schedule();
    });
  };

  return (request) =>
    new Promise((resolve, reject) => {
      const lane = laneOf(request);
      const waiting = lanes.get(lane);
      const entry = { request, resolve, reject };
      if (waiting) waiting.push(entry);
      else lanes.set(lane, [entry]);
      schedule();
    });
}
