import { type ChildProcess, fork } from "node:child_process";
import { Agent, request } from "node:http";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { exponentialBackoffMs, type LocalActuatorConfig } from "@proxyscale/core";
import { type Logger, silentLogger } from "@proxyscale/db";
import type {
  Actuator,
  ActuatorDeps,
  ReplicaCounts,
  SetReplicasContext,
  SetReplicasResult,
} from "../types.ts";
import { ActuatorError, assertReplicaCount, errorMessage, throwIfAborted } from "../types.ts";
import { FrontListener, type FrontStats } from "./front.ts";
import {
  isWorkerReadyMessage,
  WORKER_CONFIG_ENV,
  WORKER_HEALTH_PATH,
  type WorkerConfigInput,
} from "./protocol.ts";

const WORKER_ENTRY = fileURLToPath(new URL("./worker.ts", import.meta.url));
/** The worker runs from source: Node loads it through tsx's ESM loader. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
/** The only variables a worker inherits from the server: never its secrets. */
const INHERITED_ENV = ["PATH", "HOME", "LANG", "TZ", "TMPDIR"];
/** A replica that served this long before crashing starts its slot's restart delay afresh. */
const STABLE_UPTIME_MS = 10_000;
/** After SIGTERM and the drain timeout, how long a replica gets before SIGKILL. */
const EXIT_GRACE_MS = 5_000;
const STDERR_TAIL = 2_000;

interface Replica {
  seq: number;
  instanceId: string;
  child: ChildProcess;
  state: "starting" | "ready" | "stopping" | "exited";
  readyAt?: number;
  port?: number;
  agent?: Agent;
  exited: Promise<void>;
  stderrTail: string;
  /** Liveness probes in a row that failed or timed out. */
  failedProbes: number;
  probing: boolean;
}

/** One wanted replica. It outlives its processes: a crashed replica is replaced in the same slot. */
interface Slot {
  replica?: Replica;
  crashes: number;
  /** From a crash until a replacement is ready. */
  unhealthy: boolean;
  removed: boolean;
  restartTimer?: NodeJS.Timeout;
}

export interface LocalReplicaInfo {
  instanceId: string;
  pid: number | undefined;
  port: number | undefined;
  state: Replica["state"];
}

/**
 * Runs a `local` proxy: real worker processes (the built-in reverse proxy) behind one front listener.
 * Scale-out waits for each new worker to report ready; scale-in takes workers out of the rotation, lets
 * their in-flight requests finish, then stops them. A crashed worker is reported unhealthy and replaced, and so
 * is a hung one, found by the liveness probe.
 */
export class LocalActuator implements Actuator {
  readonly kind = "local";
  private readonly front: FrontListener;
  private readonly logger: Logger;
  private readonly reporting: WorkerConfigInput["reporting"];
  private slots: Slot[] = [];
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<(counts: ReplicaCounts) => void>();
  private lastEmitted = "";
  private closed = false;
  private frontAddress = { host: "", port: 0, url: "" };
  private readonly probeTimer: NodeJS.Timeout;

  /**
   * Starts `deps.initialReplicas` workers, then listens on the front address: a front that listened first
   * answered 503 ("no ready replicas") until its workers were ready — each time a server started it, e.g. when
   * the proxy's shard moved to it after its owner died (the soak counted hundreds of such answers per move).
   */
  static async create(config: LocalActuatorConfig, deps: ActuatorDeps): Promise<LocalActuator> {
    const actuator = new LocalActuator(config, deps);
    const initial = deps.initialReplicas ?? 0;
    try {
      if (initial > 0) {
        await actuator.setReplicas(initial, { proxyId: deps.proxyId, eventId: "initial", fromReplicas: 0 });
      }
      actuator.frontAddress = await actuator.front.listen(config.listenHost, config.listenPort);
    } catch (error) {
      await actuator.close();
      throw error;
    }
    return actuator;
  }

  private constructor(
    private readonly config: LocalActuatorConfig,
    private readonly deps: ActuatorDeps,
  ) {
    this.logger = deps.logger ?? silentLogger;
    this.front = new FrontListener(config.balance, this.logger);
    const { reporting } = config;
    const url = reporting.url ?? deps.metricsReporting?.url;
    const token = reporting.token ?? deps.metricsReporting?.token;
    if (reporting.enabled && (!url || !token)) {
      throw new ActuatorError(
        "invalid_request",
        "local actuator: reporting is enabled but has no ProxyScale URL and token " +
          "(set reporting.url and reporting.token, pass deps.metricsReporting, or set reporting.enabled to false)",
      );
    }
    this.reporting =
      reporting.enabled && url && token
        ? { url, token, proxyId: deps.proxyId, intervalMs: reporting.intervalMs }
        : undefined;
    this.probeTimer = setInterval(() => this.probeAll(), config.livenessProbe.periodMs);
    this.probeTimer.unref();
  }

  /** The front listener's address: the one URL clients use. */
  get url(): string {
    return this.frontAddress.url;
  }

  get port(): number {
    return this.frontAddress.port;
  }

  async getReplicas(): Promise<ReplicaCounts> {
    return this.counts();
  }

  async setReplicas(replicas: number, ctx: SetReplicasContext): Promise<SetReplicasResult> {
    assertReplicaCount(replicas);
    // One scale at a time: a second call waits for the first and then scales from where it left off.
    const run = this.queue.then(async (): Promise<SetReplicasResult> => {
      await this.scaleTo(replicas, ctx.signal);
      return { status: "completed", observedReplicas: this.counts().replicas };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  watch(onChange: (counts: ReplicaCounts) => void): () => void {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  }

  /** Every replica's process, for operators and tests. */
  replicasInfo(): LocalReplicaInfo[] {
    return this.slots.flatMap(({ replica }) =>
      replica
        ? [
            {
              instanceId: replica.instanceId,
              pid: replica.child.pid,
              port: replica.port,
              state: replica.state,
            },
          ]
        : [],
    );
  }

  frontStats(): FrontStats {
    return this.front.stats();
  }

  /** Drains and stops every replica, then closes the front listener. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.probeTimer);
    await this.queue;
    // No new clients while the workers drain: with no replica left in rotation they would get 503s.
    void this.front.stopAccepting();
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((slot) => this.retire(slot)));
    await this.front.close();
    this.listeners.clear();
  }

  private counts(): ReplicaCounts {
    return {
      replicas: this.slots.length,
      readyReplicas: this.slots.filter((slot) => slot.replica?.state === "ready").length,
      unhealthyReplicas: this.slots.filter((slot) => slot.unhealthy).length,
    };
  }

  private emit(): void {
    const counts = this.counts();
    const key = JSON.stringify(counts);
    if (key === this.lastEmitted) return;
    this.lastEmitted = key;
    for (const listener of this.listeners) {
      try {
        listener(counts);
      } catch (error) {
        this.logger.error({ error: errorMessage(error) }, "replica watch listener threw");
      }
    }
  }

  private async scaleTo(target: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.closed) throw new ActuatorError("closed", "local actuator is closed");
    throwIfAborted(signal, "local scale");
    const current = this.slots.length;
    if (target > current) {
      const added: Slot[] = Array.from({ length: target - current }, () => ({
        crashes: 0,
        unhealthy: false,
        removed: false,
      }));
      this.slots = [...this.slots, ...added];
      this.emit();
      const results = await Promise.allSettled(added.map((slot) => this.start(slot, signal)));
      const failed = added.filter((_, index) => results[index]?.status === "rejected");
      if (failed.length > 0) {
        this.slots = this.slots.filter((slot) => !failed.includes(slot));
        await Promise.all(failed.map((slot) => this.retire(slot)));
        this.emit();
        const reason = results.find((result) => result.status === "rejected") as PromiseRejectedResult;
        throw new ActuatorError(
          reason.reason instanceof ActuatorError && reason.reason.code === "aborted"
            ? "aborted"
            : "start_failed",
          `${failed.length} of ${added.length} new replicas failed to start: ${errorMessage(reason.reason)}`,
          { cause: reason.reason },
        );
      }
    } else if (target < current) {
      const victims = this.pickVictims(current - target);
      this.slots = this.slots.filter((slot) => !victims.includes(slot));
      this.emit();
      await Promise.all(victims.map((slot) => this.retire(slot)));
    }
  }

  /** Broken and starting replicas go first, then the ready ones with the least work, newest first. */
  private pickVictims(count: number): Slot[] {
    const rank = (slot: Slot) => (slot.unhealthy ? 0 : slot.replica?.state === "ready" ? 2 : 1);
    const indexed = this.slots.map((slot, index) => ({ slot, index }));
    indexed.sort((a, b) => rank(a.slot) - rank(b.slot) || b.index - a.index);
    return indexed.slice(0, count).map(({ slot }) => slot);
  }

  private spawn(slot: Slot): Replica {
    this.seq += 1;
    const instanceId = `${this.deps.proxyId}-${this.seq}`;
    const workerConfig: WorkerConfigInput = {
      upstreamUrl: this.config.upstreamUrl,
      host: "127.0.0.1",
      port: 0,
      instanceId,
      drainTimeoutMs: this.config.drainTimeoutMs,
      ...(this.reporting ? { reporting: this.reporting } : {}),
    };
    const env: Record<string, string> = {};
    for (const key of INHERITED_ENV)
      if (process.env[key] !== undefined) env[key] = process.env[key] as string;
    env[WORKER_CONFIG_ENV] = JSON.stringify(workerConfig);
    const child = fork(WORKER_ENTRY, [], {
      execArgv: ["--import", TSX_LOADER],
      env,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "json",
    });
    const replica: Replica = {
      seq: this.seq,
      instanceId,
      child,
      state: "starting",
      stderrTail: "",
      failedProbes: 0,
      probing: false,
      exited: new Promise((resolve) => child.once("exit", () => resolve())),
    };
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      for (const line of chunk.split("\n").filter(Boolean))
        this.logger.debug({ instanceId, line }, "replica output");
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      replica.stderrTail = (replica.stderrTail + chunk).slice(-STDERR_TAIL);
      this.logger.warn({ instanceId, stderr: chunk.trim() }, "replica wrote to stderr");
    });
    child.on("error", (error) =>
      this.logger.error({ instanceId, error: error.message }, "replica process error"),
    );
    child.once("exit", (code, signal) => this.onExit(slot, replica, code, signal));
    return replica;
  }

  /** Starts a worker in the slot and resolves when it is ready and in the rotation. */
  private async start(slot: Slot, signal: AbortSignal | undefined): Promise<void> {
    const replica = this.spawn(slot);
    slot.replica = replica;
    const port = await new Promise<number>((resolve, reject) => {
      const fail = (error: ActuatorError) => {
        cleanup();
        replica.child.kill("SIGKILL");
        reject(error);
      };
      const onMessage = (message: unknown) => {
        if (!isWorkerReadyMessage(message)) return;
        cleanup();
        resolve(message.port);
      };
      const onExit = (code: number | null, exitSignal: NodeJS.Signals | null) => {
        const how = code === null ? `was killed by ${exitSignal}` : `exited with code ${code}`;
        const tail = replica.stderrTail.trim();
        fail(
          new ActuatorError(
            "start_failed",
            `replica ${replica.instanceId} ${how} before ready${tail ? `: ${tail}` : ""}`,
          ),
        );
      };
      const onAbort = () => fail(new ActuatorError("aborted", `starting ${replica.instanceId} was aborted`));
      const timer = setTimeout(
        () =>
          fail(
            new ActuatorError(
              "start_failed",
              `replica ${replica.instanceId} was not ready within ${this.config.readyTimeoutMs} ms`,
            ),
          ),
        this.config.readyTimeoutMs,
      );
      const cleanup = () => {
        clearTimeout(timer);
        replica.child.off("message", onMessage);
        replica.child.off("exit", onExit);
        signal?.removeEventListener("abort", onAbort);
      };
      replica.child.on("message", onMessage);
      replica.child.once("exit", onExit);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
    if (replica.state !== "starting") {
      throw new ActuatorError("start_failed", `replica ${replica.instanceId} stopped while starting`);
    }
    // Idle sockets close after 30 s, before the worker's 60 s keep-alive timeout: the front always closes first.
    replica.agent = new Agent({ keepAlive: true, maxSockets: 512, timeout: 30_000 });
    replica.port = port;
    replica.state = "ready";
    replica.readyAt = Date.now();
    slot.unhealthy = false;
    this.front.add(replica.seq, port, replica.agent);
    this.logger.info({ instanceId: replica.instanceId, pid: replica.child.pid, port }, "replica ready");
    this.emit();
  }

  private probeAll(): void {
    for (const { replica } of this.slots) {
      if (replica?.state === "ready" && !replica.probing) void this.probe(replica);
    }
  }

  /**
   * One liveness probe: the worker's health path, on a connection of its own (a hung worker must not hold a
   * pooled one). After `failureThreshold` failures in a row the replica is killed; its exit is then handled as
   * a crash: unhealthy, out of the rotation, replaced after the restart delay.
   */
  private async probe(replica: Replica): Promise<void> {
    const { timeoutMs, failureThreshold } = this.config.livenessProbe;
    replica.probing = true;
    const healthy = await new Promise<boolean>((resolve) => {
      const req = request(
        { host: "127.0.0.1", port: replica.port, path: WORKER_HEALTH_PATH, agent: false, timeout: timeoutMs },
        (res) => {
          res.resume();
          // 503 is a draining worker: alive, and on its way out.
          res.on("end", () => resolve(res.statusCode === 200 || res.statusCode === 503));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", () => resolve(false));
      req.end();
    });
    replica.probing = false;
    if (replica.state !== "ready") return;
    replica.failedProbes = healthy ? 0 : replica.failedProbes + 1;
    if (replica.failedProbes < failureThreshold) return;
    this.logger.warn(
      { instanceId: replica.instanceId, pid: replica.child.pid, failedProbes: replica.failedProbes },
      "replica failed its liveness probe; killing it",
    );
    this.front.removeFromRotation(replica.seq);
    replica.child.kill("SIGKILL");
  }

  private onExit(slot: Slot, replica: Replica, code: number | null, signal: NodeJS.Signals | null): void {
    const wasReady = replica.state === "ready";
    replica.state = "exited";
    this.front.forget(replica.seq);
    replica.agent?.destroy();
    if (!wasReady || slot.removed || this.closed) return;
    // A replica that was serving and exited on its own: it crashed.
    const uptime = Date.now() - (replica.readyAt ?? Date.now());
    slot.crashes = uptime >= STABLE_UPTIME_MS ? 1 : slot.crashes + 1;
    slot.unhealthy = true;
    this.logger.warn(
      {
        instanceId: replica.instanceId,
        code,
        signal,
        crashes: slot.crashes,
        stderr: replica.stderrTail.trim(),
      },
      "replica crashed; replacing it",
    );
    this.emit();
    this.scheduleRestart(slot);
  }

  private scheduleRestart(slot: Slot): void {
    const delay = exponentialBackoffMs(slot.crashes, {
      initialMs: this.config.restartDelayMs,
      maxMs: this.config.maxRestartDelayMs,
    });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (slot.removed || this.closed) return;
      this.start(slot, undefined).catch((error: unknown) => {
        if (slot.removed || this.closed) return;
        slot.crashes += 1;
        this.logger.error(
          { error: errorMessage(error), crashes: slot.crashes },
          "replacement replica failed to start",
        );
        this.scheduleRestart(slot);
      });
    }, delay);
  }

  /** Drain: out of the rotation, in-flight requests finish, then SIGTERM (the worker drains too), then exit. */
  private async retire(slot: Slot): Promise<void> {
    slot.removed = true;
    clearTimeout(slot.restartTimer);
    const replica = slot.replica;
    if (!replica || replica.state === "exited") return;
    const wasReady = replica.state === "ready";
    replica.state = "stopping";
    if (wasReady) {
      this.front.removeFromRotation(replica.seq);
      const idle = await this.front.waitIdle(replica.seq, this.config.drainTimeoutMs);
      if (!idle)
        this.logger.warn({ instanceId: replica.instanceId }, "drain timed out with requests in flight");
    }
    replica.child.kill("SIGTERM");
    let killTimer: NodeJS.Timeout | undefined;
    const exitedInTime = await Promise.race([
      replica.exited.then(() => true),
      new Promise<false>((resolve) => {
        killTimer = setTimeout(() => resolve(false), this.config.drainTimeoutMs + EXIT_GRACE_MS);
      }),
    ]);
    clearTimeout(killTimer);
    if (!exitedInTime) {
      replica.child.kill("SIGKILL");
      await replica.exited;
    }
    this.logger.info({ instanceId: replica.instanceId }, "replica stopped");
  }
}
