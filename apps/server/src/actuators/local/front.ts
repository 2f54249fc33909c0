import { type Agent, createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "@proxyscale/db";
import { type ForwardTarget, forwardRequest, forwardUpgrade } from "./forward.ts";

export type BalanceMode = "leastConnections" | "roundRobin";

interface Backend {
  id: number;
  target: ForwardTarget;
  inFlight: number;
  /** Upgraded connections (WebSocket) open through this replica; they end when it stops. */
  upgraded: number;
  inRotation: boolean;
  idleWaiters: Array<() => void>;
}

/** Scale to zero: while no replica is in the rotation, requests wait in a bounded queue (docs/metrics-sources.md). */
export interface ColdStartQueue {
  maxRequests: number;
  timeoutMs: number;
  /** Called when a request starts waiting: the fleet is asked for a replica. */
  onHold: () => void;
}

/** How a held request's wait ended. */
type HoldOutcome = "ready" | "full" | "timeout" | "closing" | "gone";

interface HeldRequest {
  settle: (outcome: HoldOutcome) => void;
}

export interface FrontStats {
  requests: number;
  /** Requests answered 502/503/504 by the front itself or failed on the way. */
  failures: number;
  /** Requests sent again to another replica after a connection failure. */
  retries: number;
  inFlight: number;
  /** Requests waiting for a first replica now, and those answered 503 for a full queue or a timeout. */
  held: number;
  coldStartRejected: { full: number; timeout: number };
  backends: Array<{ id: number; inFlight: number; upgraded: number; inRotation: boolean }>;
}

/**
 * The one address clients use: an HTTP listener that forwards each request, and each protocol upgrade
 * (WebSocket), to a ready replica. Replicas leave the rotation before they stop, so no new request reaches a
 * draining replica; its upgraded connections end when it stops.
 */
export class FrontListener {
  private readonly server: Server;
  private readonly backends = new Map<number, Backend>();
  private rotation: Backend[] = [];
  private cursor = 0;
  private readonly counters = { requests: 0, failures: 0, retries: 0, inFlight: 0 };
  private readonly held = new Set<HeldRequest>();
  private readonly coldStartRejected = { full: 0, timeout: 0 };

  constructor(
    private readonly balance: BalanceMode,
    private readonly logger: Logger,
    /** Without it, a request finding no replica is answered 503 at once. */
    private readonly coldStart?: ColdStartQueue,
  ) {
    this.server = createServer((req, res) => {
      this.counters.requests += 1;
      this.counters.inFlight += 1;
      res.once("close", () => {
        this.counters.inFlight -= 1;
      });
      this.route(req, res).catch((error: unknown) => {
        this.counters.failures += 1;
        this.logger.error({ error: String(error) }, "front listener failed a request");
        res.destroy();
      });
    });
    this.server.on("upgrade", (req, socket, head) => {
      this.counters.requests += 1;
      const backend = this.pick(new Set());
      if (!backend) {
        this.counters.failures += 1;
        // Not held (a socket is no request to replay), but it wakes a fleet at 0 for the client's retry.
        this.coldStart?.onHold();
        socket.end("HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\n\r\n");
        return;
      }
      backend.upgraded += 1;
      void forwardUpgrade(req, socket, head, backend.target).then(() => {
        backend.upgraded -= 1;
      });
    });
    this.server.keepAliveTimeout = 60_000;
    this.server.headersTimeout = 65_000;
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number; url: string }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return { host: address.address, port: address.port, url: `http://${urlHost}:${address.port}` };
  }

  add(id: number, port: number, agent: Agent): void {
    const backend: Backend = {
      id,
      target: { protocol: "http:", hostname: "127.0.0.1", port, basePath: "", agent },
      inFlight: 0,
      upgraded: 0,
      inRotation: true,
      idleWaiters: [],
    };
    this.backends.set(id, backend);
    this.rotation = [...this.rotation, backend];
    this.releaseHeld("ready");
  }

  /** Requests waiting for a first replica. */
  heldRequests(): number {
    return this.held.size;
  }

  /** Takes a replica out of the rotation; requests already sent to it go on. */
  removeFromRotation(id: number): void {
    const backend = this.backends.get(id);
    if (!backend) return;
    backend.inRotation = false;
    this.rotation = this.rotation.filter((candidate) => candidate.id !== id);
  }

  /** Resolves once the replica has no request in flight through the front, or after `timeoutMs`. */
  async waitIdle(id: number, timeoutMs: number): Promise<boolean> {
    const backend = this.backends.get(id);
    if (!backend || backend.inFlight === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      backend.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  forget(id: number): void {
    this.removeFromRotation(id);
    this.backends.delete(id);
  }

  stats(): FrontStats {
    return {
      ...this.counters,
      held: this.held.size,
      coldStartRejected: { ...this.coldStartRejected },
      backends: [...this.backends.values()].map(({ id, inFlight, upgraded, inRotation }) => ({
        id,
        inFlight,
        upgraded,
        inRotation,
      })),
    };
  }

  private closing: Promise<void> | undefined;

  /**
   * Stops taking connections (idle keep-alive ones are closed too): a client is refused, as by a front that is
   * down, rather than answered 503 while the replicas drain. Requests under way go on. Resolves once every
   * connection has ended.
   */
  stopAccepting(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.releaseHeld("closing");
    return this.closing;
  }

  async close(): Promise<void> {
    const closed = this.stopAccepting();
    this.server.closeAllConnections();
    await closed;
  }

  /**
   * Waits for a first replica: `full` at once when the queue is, `timeout` after `timeoutMs`, `gone` when the
   * client leaves, `closing` when the front stops.
   */
  private hold(res: Parameters<typeof forwardRequest>[1], queue: ColdStartQueue): Promise<HoldOutcome> {
    if (this.held.size >= queue.maxRequests) return Promise.resolve("full");
    return new Promise<HoldOutcome>((resolve) => {
      const entry: HeldRequest = {
        settle: (outcome) => {
          if (!this.held.delete(entry)) return;
          clearTimeout(timer);
          res.off("close", onGone);
          resolve(outcome);
        },
      };
      const timer = setTimeout(() => entry.settle("timeout"), queue.timeoutMs);
      const onGone = () => entry.settle("gone");
      res.once("close", onGone);
      this.held.add(entry);
      queue.onHold();
    });
  }

  private releaseHeld(outcome: HoldOutcome): void {
    for (const entry of [...this.held]) entry.settle(outcome);
  }

  private pick(exclude: ReadonlySet<number>): Backend | undefined {
    const candidates = this.rotation.filter((backend) => !exclude.has(backend.id));
    if (candidates.length === 0) return undefined;
    const start = this.cursor++ % candidates.length;
    if (this.balance === "roundRobin") return candidates[start];
    // Least connections; ties go round-robin so equal replicas share the load.
    let best = candidates[start]!;
    for (let offset = 1; offset < candidates.length; offset++) {
      const candidate = candidates[(start + offset) % candidates.length]!;
      if (candidate.inFlight < best.inFlight) best = candidate;
    }
    return best;
  }

  private async route(req: Parameters<typeof forwardRequest>[0], res: Parameters<typeof forwardRequest>[1]) {
    const tried = new Set<number>();
    for (;;) {
      const backend = this.pick(tried);
      if (!backend && this.closing && tried.size === 0) {
        // Taken just before the front stopped accepting, its replicas already out of rotation: the front is
        // going down, and the client sees it as down (a reset), not as up with nothing to serve.
        res.destroy();
        return;
      }
      if (!backend && tried.size === 0 && this.coldStart && !this.closing) {
        const outcome = await this.hold(res, this.coldStart);
        if (outcome === "ready") continue;
        if (outcome === "gone") return;
        this.counters.failures += 1;
        if (outcome === "closing") {
          res.destroy();
          return;
        }
        this.coldStartRejected[outcome] += 1;
        res.writeHead(503, { "content-type": "text/plain", "retry-after": "1" });
        res.end(
          outcome === "full"
            ? `cold-start queue full: ${this.coldStart.maxRequests} requests already wait for a replica\n`
            : `no replica was ready within ${this.coldStart.timeoutMs} ms (cold start)\n`,
        );
        return;
      }
      if (!backend) {
        this.counters.failures += 1;
        if (!res.headersSent) {
          res.writeHead(503, { "content-type": "text/plain", "retry-after": "1" });
          res.end(tried.size === 0 ? "no ready replicas\n" : "no replica could take the request\n");
        }
        return;
      }
      tried.add(backend.id);
      backend.inFlight += 1;
      const outcome = await forwardRequest(req, res, backend.target, { allowRetry: true });
      backend.inFlight -= 1;
      if (backend.inFlight === 0) for (const wake of backend.idleWaiters.splice(0)) wake();
      if (outcome.kind === "responded") {
        if (outcome.status >= 502 && outcome.status <= 504) this.counters.failures += 1;
        return;
      }
      if (!outcome.retryable) {
        this.counters.failures += 1;
        this.logger.warn({ replica: backend.id, error: outcome.error.message }, "replica failed a request");
        return;
      }
      this.counters.retries += 1;
    }
  }
}
