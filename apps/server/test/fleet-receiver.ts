/**
 * The webhook receiver tests and the soak share (no vitest here: the soak imports it outside the test runner).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { verifyWebhookSignature } from "../src/actuators/webhook.ts";

export interface ScaleCall {
  proxyId: string;
  eventId: string;
  fromReplicas: number;
  toReplicas: number;
  at: number;
}

export interface ReceiverBehaviour {
  /** Answer after this long (a slow fleet). */
  delayMs?: number;
  /** 200 (completed, default), 202 (accepted, completes later) or an error status. */
  status?: number;
  /** Set the new count before waiting (the fleet moved; only the answer is slow). */
  applyBeforeDelay?: boolean;
}

/**
 * A webhook receiver, the stand-in for a fleet: verifies the signature, counts every scale call per event,
 * keeps each proxy's replica count (served at /status/<proxyId> for `statusUrl`), and answers as told.
 */
export class FleetReceiver {
  readonly calls: ScaleCall[] = [];
  readonly badSignatures: string[] = [];
  readonly replicas = new Map<string, number>();
  behaviour: ReceiverBehaviour = {};
  /** Overrides `behaviour` for one proxy. */
  readonly behaviourOf = new Map<string, ReceiverBehaviour>();
  private server: Server | undefined;
  url = "";

  constructor(readonly secret = "fleet-receiver-secret-0123456789") {}

  async start(): Promise<this> {
    this.server = createHttpServer((req, res) => {
      const closed = new AbortController();
      res.on("close", () => closed.abort());
      void this.handle(req, closed.signal).then(
        ({ status, body }) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        },
        () => {
          res.writeHead(500).end();
        },
      );
    });
    this.server.keepAliveTimeout = 1_000;
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** The actuator config of a proxy scaled by this receiver. */
  actuator(options: { statusOf?: string; maxAttempts?: number; timeoutMs?: number } = {}) {
    return {
      kind: "webhook" as const,
      url: `${this.url}/scale`,
      secret: this.secret,
      maxAttempts: options.maxAttempts ?? 1,
      timeoutMs: options.timeoutMs ?? 10_000,
      ...(options.statusOf ? { statusUrl: `${this.url}/status/${options.statusOf}` } : {}),
    };
  }

  callsFor(proxyId: string): ScaleCall[] {
    return this.calls.filter((call) => call.proxyId === proxyId);
  }

  private async handle(
    req: IncomingMessage,
    closed: AbortSignal,
  ): Promise<{ status: number; body: unknown }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const timestamp = req.headers["x-proxyscale-timestamp"];
    const signature = req.headers["x-proxyscale-signature"];
    if (
      !verifyWebhookSignature(
        this.secret,
        typeof timestamp === "string" ? timestamp : undefined,
        raw,
        typeof signature === "string" ? signature : undefined,
      )
    ) {
      this.badSignatures.push(req.url ?? "");
      return { status: 401, body: { error: "bad signature" } };
    }
    if (req.method === "GET" && req.url?.startsWith("/status/")) {
      const proxyId = req.url.slice("/status/".length);
      const replicas = this.replicas.get(proxyId);
      if (replicas === undefined) return { status: 404, body: { error: `no fleet ${proxyId}` } };
      return { status: 200, body: { replicas } };
    }
    const call = JSON.parse(raw.toString("utf8")) as Omit<ScaleCall, "at">;
    this.calls.push({ ...call, at: Date.now() });
    const {
      delayMs = 0,
      status = 200,
      applyBeforeDelay = false,
    } = this.behaviourOf.get(call.proxyId) ?? this.behaviour;
    if (applyBeforeDelay) this.replicas.set(call.proxyId, call.toReplicas);
    if (delayMs > 0) {
      // The caller may die meanwhile (a killed server): then nobody waits for the answer.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        closed.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (closed.aborted) return { status: 499, body: null };
    }
    if (status === 200) {
      this.replicas.set(call.proxyId, call.toReplicas);
      return { status, body: { observedReplicas: call.toReplicas } };
    }
    if (status === 202) return { status, body: { accepted: true } };
    return { status, body: { error: `receiver refuses with ${status}` } };
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
