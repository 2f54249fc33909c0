import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  exponentialBackoffMs,
  type LocalActuatorConfig,
  type ResolvedReplicaTemplate,
  resolveReplicaTemplate,
} from "@proxyscale/core";
import { type Logger, silentLogger } from "@proxyscale/db";
import type {
  Actuator,
  ActuatorDeps,
  ActuatorTarget,
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
import {
  killGroup,
  prepareTemplateReplica,
  probeOnce,
  probeUntilReady,
  spawnProgram,
  type TemplatePorts,
} from "./template-replica.ts";

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
  /** A template replica's ports (all chosen before it starts), directory and exporter sidecar. */
  template?: {
    ports: TemplatePorts;
    dir: string;
    exporterCommand: string[] | undefined;
    exporter?: ChildProcess;
  };
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
  /** A template replica's directory (its config file, pid file and logs). */
  dir?: string;
}

/**
 * Runs a `local` proxy: real processes behind one front listener — the built-in Node worker, or a replica
 * template's program (HAProxy, nginx, any other). Scale-out waits for each new replica to be ready (the worker
 * says so over IPC; a template's readiness probe passes); scale-in takes replicas out of the rotation, lets
 * their in-flight requests finish, then stops them. A crashed replica is reported unhealthy and replaced, and so
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
  /** The replica template, expanded; undefined for the Node worker. */
  private readonly template: ResolvedReplicaTemplate | undefined;
  /** The proxy's temp directory, holding one directory per template replica; removed on close. */
  private tempDir: Promise<string> | undefined;

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
    const onColdStart = deps.onColdStart;
    this.front = new FrontListener(
      config.balance,
      this.logger,
      onColdStart && {
        ...config.coldStartQueue,
        onHold: () => {
          if (this.slots.length === 0 && !this.closed) onColdStart();
        },
      },
    );
    this.template = resolveReplicaTemplate(config.replica, config.upstreamUrl);
    // Only the Node worker pushes metrics; a template's replicas publish theirs for scraping (targets()).
    const reporting = this.template ? { ...config.reporting, enabled: false } : config.reporting;
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
              ...(replica.template ? { dir: replica.template.dir } : {}),
            },
          ]
        : [],
    );
  }

  frontStats(): FrontStats {
    return this.front.stats();
  }

  heldRequests(): number {
    return this.front.heldRequests();
  }

  /** The ready replicas' metrics endpoints: a template's `metrics` port and path. None for the Node worker. */
  async targets(): Promise<ActuatorTarget[]> {
    const metrics = this.template?.metrics;
    if (!metrics) return [];
    return this.slots.flatMap(({ replica }) => {
      if (replica?.state !== "ready" || !replica.template) return [];
      const port = replica.template.ports[metrics.port];
      return [
        {
          instance: replica.instanceId,
          url: `http://127.0.0.1:${port}${metrics.path}`,
          address: "127.0.0.1",
          port,
        },
      ];
    });
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
    if (this.tempDir) await rm(await this.tempDir, { recursive: true, force: true });
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

  private inheritedEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const key of INHERITED_ENV)
      if (process.env[key] !== undefined) env[key] = process.env[key] as string;
    return env;
  }

  private async spawn(slot: Slot): Promise<Replica> {
    this.seq += 1;
    const instanceId = `${this.deps.proxyId}-${this.seq}`;
    if (this.template) return this.spawnTemplate(slot, this.template, this.seq, instanceId);
    const workerConfig: WorkerConfigInput = {
      upstreamUrl: this.config.upstreamUrl,
      host: "127.0.0.1",
      port: 0,
      instanceId,
      drainTimeoutMs: this.config.drainTimeoutMs,
      ...(this.reporting ? { reporting: this.reporting } : {}),
    };
    const env = this.inheritedEnv();
    env[WORKER_CONFIG_ENV] = JSON.stringify(workerConfig);
    const child = fork(WORKER_ENTRY, [], {
      execArgv: ["--import", TSX_LOADER],
      env,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "json",
    });
    return this.track(slot, { seq: this.seq, instanceId, child });
  }

  /** A template replica: its ports and config file, then its program, in a process group of its own. */
  private async spawnTemplate(
    slot: Slot,
    template: ResolvedReplicaTemplate,
    seq: number,
    instanceId: string,
  ): Promise<Replica> {
    this.tempDir ??= mkdtemp(join(tmpdir(), "proxyscale-local-"));
    const dir = join(await this.tempDir, `replica-${seq}`);
    const prepared = await prepareTemplateReplica({
      template,
      upstreamUrl: this.config.upstreamUrl,
      instance: instanceId,
      dir,
    });
    let child: ChildProcess;
    try {
      child = await spawnProgram(prepared.command, { env: this.inheritedEnv(), cwd: dir });
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    return this.track(slot, {
      seq,
      instanceId,
      child,
      template: { ports: prepared.ports, dir, exporterCommand: prepared.exporterCommand },
    });
  }

  /** Follows a replica's process: its output to the log, its exit to onExit. */
  private track(slot: Slot, spawned: Pick<Replica, "seq" | "instanceId" | "child" | "template">): Replica {
    const { instanceId, child } = spawned;
    const replica: Replica = {
      ...spawned,
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

  /** Starts a replica in the slot and resolves when it is ready and in the rotation. */
  private async start(slot: Slot, signal: AbortSignal | undefined): Promise<void> {
    const replica = await this.spawn(slot);
    if (slot.removed || this.closed) {
      // Retired (or the actuator closed) while its process was being set up.
      this.killHard(replica);
      throw new ActuatorError("start_failed", `replica ${replica.instanceId} was removed while starting`);
    }
    slot.replica = replica;
    const port = await new Promise<number>((resolve, reject) => {
      let settled = false;
      const fail = (error: ActuatorError) => {
        cleanup();
        this.killHard(replica);
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
        settled = true;
        clearTimeout(timer);
        replica.child.off("message", onMessage);
        replica.child.off("exit", onExit);
        signal?.removeEventListener("abort", onAbort);
      };
      const template = this.template;
      const ports = replica.template?.ports;
      if (template && ports) {
        const { readiness } = template;
        void probeUntilReady({ ...readiness, port: ports[readiness.port] }, () => settled).then((ready) => {
          if (!ready || settled) return;
          cleanup();
          resolve(ports.port);
        });
      } else {
        replica.child.on("message", onMessage);
      }
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
    this.startExporter(replica);
    this.emit();
  }

  /**
   * A template's exporter sidecar, once its replica is ready (it reads the replica's stats from its first
   * scrape). It is not restarted: if it dies, the replica's metrics go missing (never zero) and the replica serves
   * on; it stops with its replica.
   */
  private startExporter(replica: Replica): void {
    const sidecar = replica.template;
    if (!sidecar?.exporterCommand) return;
    const { instanceId } = replica;
    spawnProgram(sidecar.exporterCommand, { env: this.inheritedEnv(), cwd: sidecar.dir }).then(
      (exporter) => {
        if (replica.state !== "ready") {
          killGroup(exporter);
          return;
        }
        sidecar.exporter = exporter;
        exporter.stdout?.resume();
        exporter.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
          this.logger.debug({ instanceId, line: chunk.trim() }, "exporter output");
        });
        exporter.once("exit", (code, signal) => {
          if (replica.state === "ready") {
            this.logger.warn(
              { instanceId, code, signal },
              "replica's exporter exited; its metrics go missing",
            );
          }
        });
      },
      (error: unknown) =>
        this.logger.warn({ instanceId, error: errorMessage(error) }, "replica's exporter did not start"),
    );
  }

  /** SIGKILL: to a template replica's whole process group (nginx's workers too), else to the worker. */
  private killHard(replica: Replica): void {
    if (replica.template) killGroup(replica.child);
    else replica.child.kill("SIGKILL");
  }

  private probeAll(): void {
    for (const { replica } of this.slots) {
      if (replica?.state === "ready" && !replica.probing) void this.probe(replica);
    }
  }

  /**
   * One liveness probe, on a connection of its own (a hung replica must not hold a pooled one): the worker's
   * health path, or a template's readiness probe. After `failureThreshold` failures in a row the replica is
   * killed; its exit is then handled as a crash: unhealthy, out of the rotation, replaced after the restart delay.
   */
  private async probe(replica: Replica): Promise<void> {
    const { timeoutMs, failureThreshold } = this.config.livenessProbe;
    replica.probing = true;
    const readiness = this.template?.readiness;
    const ports = replica.template?.ports;
    const healthy = await probeOnce(
      readiness && ports
        ? { kind: readiness.kind, path: readiness.path, port: ports[readiness.port], timeoutMs }
        : { kind: "http", path: WORKER_HEALTH_PATH, port: replica.port ?? 0, timeoutMs },
      // 503 is a draining replica: alive, and on its way out.
      { acceptUnavailable: true },
    );
    replica.probing = false;
    if (replica.state !== "ready") return;
    replica.failedProbes = healthy ? 0 : replica.failedProbes + 1;
    if (replica.failedProbes < failureThreshold) return;
    this.logger.warn(
      { instanceId: replica.instanceId, pid: replica.child.pid, failedProbes: replica.failedProbes },
      "replica failed its liveness probe; killing it",
    );
    this.front.removeFromRotation(replica.seq);
    this.killHard(replica);
  }

  private onExit(slot: Slot, replica: Replica, code: number | null, signal: NodeJS.Signals | null): void {
    const wasReady = replica.state === "ready";
    replica.state = "exited";
    this.front.forget(replica.seq);
    replica.agent?.destroy();
    if (replica.template) {
      // Whatever the replica forked (nginx's workers) and its exporter go with it, and so does its directory.
      killGroup(replica.child);
      if (replica.template.exporter) killGroup(replica.template.exporter);
      void rm(replica.template.dir, { recursive: true, force: true });
    }
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

  /**
   * Drain: out of the rotation, in-flight requests finish, then the stop signal (SIGTERM: the worker drains too;
   * a template's own signal), then exit — or SIGKILL after the timeout.
   */
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
    const stop = this.template?.stop ?? {
      signal: "SIGTERM" as const,
      timeoutMs: this.config.drainTimeoutMs + EXIT_GRACE_MS,
    };
    // Drained: the front's idle keep-alive connections to it go now, so a graceful stop has none to wait for.
    if (this.template) replica.agent?.destroy();
    replica.child.kill(stop.signal);
    let killTimer: NodeJS.Timeout | undefined;
    const exitedInTime = await Promise.race([
      replica.exited.then(() => true),
      new Promise<false>((resolve) => {
        killTimer = setTimeout(() => resolve(false), stop.timeoutMs);
      }),
    ]);
    clearTimeout(killTimer);
    if (!exitedInTime) {
      this.logger.warn(
        { instanceId: replica.instanceId, signal: stop.signal },
        "replica did not stop in time; killing it",
      );
      this.killHard(replica);
      await replica.exited;
    }
    this.logger.info({ instanceId: replica.instanceId }, "replica stopped");
  }
}
