import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const TICK_MS = 10;

export interface TrafficTotals {
  /** Requests started. */
  sent: number;
  /** Answered with a status below 400. */
  ok: number;
  /** Answered ≥ 400, or failed at the connection. */
  failed: number;
  /** Due by the rate but not started: every connection was busy (the client, not the proxy, was the limit). */
  saturated: number;
  latencyMsSum: number;
  /** Failures by status code or error code. */
  failures: Record<string, number>;
  /** Instance ids that answered (the `x-proxyscale-instance` header of local workers). */
  instances: Set<string>;
}

function emptyTotals(): TrafficTotals {
  return { sent: 0, ok: 0, failed: 0, saturated: 0, latencyMsSum: 0, failures: {}, instances: new Set() };
}

/**
 * Real HTTP load at a target rate against one loopback URL: open-loop (requests start on schedule, not when the
 * previous one ends), bounded by `maxInFlight` keep-alive connections. Refuses any host but 127.0.0.1/localhost,
 * so it can only ever load this machine.
 */
export class TrafficGenerator {
  private readonly url: URL;
  private readonly agent: Agent;
  private readonly maxInFlight: number;
  private rate = 0;
  private credit = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private readonly totals = emptyTotals();
  private window = emptyTotals();
  private idleWaiters: Array<() => void> = [];

  constructor(options: { url: string; maxInFlight?: number }) {
    this.url = new URL(options.url);
    if (this.url.protocol !== "http:" || !LOOPBACK.has(this.url.hostname)) {
      throw new Error(`refusing to load ${this.url.host}: only http://127.0.0.1 or localhost`);
    }
    this.maxInFlight = options.maxInFlight ?? 64;
    // Idle sockets are dropped after 30 s, before the front's 60 s keep-alive timeout could race a reuse.
    this.agent = new Agent({ keepAlive: true, maxSockets: this.maxInFlight, timeout: 30_000 });
  }

  /** Requests per second from now on (0 pauses). */
  setRate(rps: number): void {
    this.rate = Math.max(0, rps);
  }

  start(): this {
    if (this.timer) return this;
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    return this;
  }

  private tick(): void {
    const now = performance.now();
    this.credit += (this.rate * (now - this.lastTick)) / 1000;
    this.lastTick = now;
    while (this.credit >= 1) {
      this.credit -= 1;
      if (this.inFlight >= this.maxInFlight) {
        this.record((t) => {
          t.saturated += 1;
        });
        continue;
      }
      this.fire();
    }
  }

  private record(change: (totals: TrafficTotals) => void): void {
    change(this.totals);
    change(this.window);
  }

  private fire(): void {
    const startedAt = performance.now();
    this.inFlight += 1;
    this.record((t) => {
      t.sent += 1;
    });
    let settled = false;
    const done = (failure: string | null, instance?: string) => {
      if (settled) return;
      settled = true;
      this.inFlight -= 1;
      const ms = performance.now() - startedAt;
      this.record((t) => {
        t.latencyMsSum += ms;
        if (instance) t.instances.add(instance);
        if (failure === null) t.ok += 1;
        else {
          t.failed += 1;
          t.failures[failure] = (t.failures[failure] ?? 0) + 1;
        }
      });
      if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    };
    const req = request(
      {
        agent: this.agent,
        host: this.url.hostname.replace(/^\[|\]$/g, ""),
        port: this.url.port,
        path: `${this.url.pathname}${this.url.search}`,
        method: "GET",
      },
      (res) => {
        const instance = res.headers["x-proxyscale-instance"];
        res.resume();
        res.on("end", () =>
          done(
            (res.statusCode ?? 0) < 400 ? null : `HTTP ${res.statusCode}`,
            typeof instance === "string" ? instance : undefined,
          ),
        );
        res.on("error", (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
      },
    );
    req.on("error", (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
    req.end();
  }

  /** Everything since start. */
  snapshot(): TrafficTotals {
    return {
      ...this.totals,
      failures: { ...this.totals.failures },
      instances: new Set(this.totals.instances),
    };
  }

  /** Everything since the previous call (for per-interval rates). */
  takeWindow(): TrafficTotals {
    const window = this.window;
    this.window = emptyTotals();
    return window;
  }

  /** Stops starting requests and waits for the ones in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.agent.destroy();
  }
}
