import { type ClientRequest, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { KubernetesActuatorConfig } from "@proxyscale/core";
import { type Logger, silentLogger } from "@proxyscale/db";
import { z } from "zod";
import type {
  Actuator,
  ActuatorDeps,
  ReplicaCounts,
  SetReplicasContext,
  SetReplicasResult,
} from "../types.ts";
import { ActuatorError, assertReplicaCount, errorMessage, sleep, throwIfAborted } from "../types.ts";
import { type KubeConnection, loadKubeConnection } from "./credentials.ts";

/** autoscaling/v1 Scale, as the scale subresource returns it. */
const scaleSchema = z.object({
  metadata: z.object({ resourceVersion: z.string().optional() }).optional(),
  spec: z.object({ replicas: z.number().int().optional() }).optional(),
  status: z.object({ replicas: z.number().int().optional() }).optional(),
});
type Scale = z.infer<typeof scaleSchema>;

/** The fields of a Deployment or StatefulSet the counts come from. The API server omits zero values. */
const workloadSchema = z.object({
  metadata: z.object({ resourceVersion: z.string().optional() }).optional(),
  status: z
    .object({ replicas: z.number().int().optional(), readyReplicas: z.number().int().optional() })
    .optional(),
});

/** meta/v1 WatchEvent. */
const watchEventSchema = z.object({
  type: z.enum(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]),
  object: z.unknown(),
});

/** Longest pause between watch attempts after failures (doubling from 1 s). */
const MAX_WATCH_BACKOFF_MS = 30_000;
/** The API server ends a watch after this; it is then resumed from the last resourceVersion. */
const WATCH_TIMEOUT_SECONDS = 300;

class WatchGone extends Error {}

/** meta/v1 Status, the body of every API error. */
const statusSchema = z.object({
  kind: z.literal("Status"),
  message: z.string().optional(),
  reason: z.string().optional(),
});

interface KubeResponse {
  status: number;
  body: unknown;
}

/**
 * Scales a Deployment or StatefulSet through its `scale` subresource. The PATCH carries the resourceVersion
 * it read, so a concurrent change answers 409 and is retried on a fresh GET instead of being overwritten.
 */
export class KubernetesActuator implements Actuator {
  readonly kind = "kubernetes";
  private readonly connection: KubeConnection;
  private readonly workloadPath: string;
  private readonly collectionPath: string;
  private readonly displayName: string;
  private readonly logger: Logger;
  private readinessForbidden = false;

  constructor(
    private readonly config: KubernetesActuatorConfig,
    deps: ActuatorDeps,
  ) {
    this.connection = loadKubeConnection(config.credentials, deps.env ?? process.env);
    this.logger = deps.logger ?? silentLogger;
    const namespace = config.namespace ?? this.connection.namespace ?? "default";
    const resource = config.workload === "deployment" ? "deployments" : "statefulsets";
    this.collectionPath = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${resource}`;
    this.workloadPath = `${this.collectionPath}/${encodeURIComponent(config.name)}`;
    this.displayName = `${config.workload} ${namespace}/${config.name}`;
  }

  async getReplicas(): Promise<ReplicaCounts> {
    const scale = await this.getScale();
    const replicas = scale.status?.replicas ?? 0;
    const readyReplicas = Math.min(replicas, (await this.readReplicasReady()) ?? replicas);
    return { replicas, readyReplicas, unhealthyReplicas: replicas - readyReplicas };
  }

  async setReplicas(replicas: number, ctx: SetReplicasContext): Promise<SetReplicasResult> {
    assertReplicaCount(replicas);
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(ctx.signal, `scaling ${this.displayName}`);
      const scale = await this.getScale();
      // ScaleSpec.replicas is omitempty: absent means 0.
      if ((scale.spec?.replicas ?? 0) === replicas) break;
      const patch = {
        metadata: { resourceVersion: scale.metadata?.resourceVersion },
        spec: { replicas },
      };
      const response = await this.call("PATCH", `${this.workloadPath}/scale?fieldManager=proxyscale`, patch);
      if (response.status === 200) break;
      if (response.status !== 409) throw this.apiError("PATCH", response);
      if (attempt >= this.config.conflictRetries) {
        throw new ActuatorError(
          "conflict",
          `${this.displayName}: the scale kept changing under us (409 Conflict ${attempt + 1} times)`,
          { status: 409, retryable: true },
        );
      }
      this.logger.info(
        { workload: this.displayName, attempt: attempt + 1 },
        "scale conflict, retrying on a fresh read",
      );
    }
    return { status: "completed", observedReplicas: await this.waitForReplicas(replicas, ctx.signal) };
  }

  /**
   * Watches the workload (`?watch=true`, resumed from the last resourceVersion when the API server ends the
   * stream, from scratch after 410 Gone) and reports its replicas and ready replicas on every change, so a pod
   * that crashes or becomes ready reaches the control loop at once instead of at the next reconcile. Without RBAC
   * to watch, it logs once and leaves the counts to getReplicas.
   */
  watch(onChange: (counts: ReplicaCounts) => void): () => void {
    const controller = new AbortController();
    void this.watchLoop(onChange, controller.signal);
    return () => controller.abort();
  }

  private async watchLoop(onChange: (counts: ReplicaCounts) => void, signal: AbortSignal): Promise<void> {
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        resourceVersion = await this.watchOnce(resourceVersion, onChange, signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof WatchGone) {
          resourceVersion = undefined;
          continue;
        }
        if (error instanceof ActuatorError && (error.code === "forbidden" || error.code === "unauthorized")) {
          this.logger.warn(
            { workload: this.displayName, err: error.message },
            "cannot watch the workload: replica counts come from reconciles only",
          );
          return;
        }
        failures += 1;
        const delay = Math.min(MAX_WATCH_BACKOFF_MS, 1_000 * 2 ** (failures - 1));
        this.logger.warn(
          { workload: this.displayName, err: errorMessage(error), delay },
          "watch failed; retrying",
        );
        await sleep(delay, signal).catch(() => undefined);
      }
    }
  }

  /** One watch request; resolves with the last resourceVersion seen when the API server ends it. */
  private watchOnce(
    since: string | undefined,
    onChange: (counts: ReplicaCounts) => void,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const query = new URLSearchParams({
      watch: "true",
      fieldSelector: `metadata.name=${this.config.name}`,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(WATCH_TIMEOUT_SECONDS),
      ...(since ? { resourceVersion: since } : {}),
    });
    let resourceVersion = since;
    return new Promise((resolve, reject) => {
      const req = this.open("GET", `${this.collectionPath}?${query}`, { signal }, reject);
      req.on("response", (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            reject(
              this.apiError("WATCH", { status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks)) }),
            ),
          );
          return;
        }
        let buffered = "";
        const onEvent = (line: string) => {
          const event = watchEventSchema.safeParse(parseJson(Buffer.from(line)));
          if (!event.success) return;
          if (event.data.type === "ERROR") {
            const status = z.object({ code: z.number().optional() }).safeParse(event.data.object).data;
            req.destroy();
            reject(
              status?.code === 410
                ? new WatchGone()
                : this.apiError("WATCH", { status: status?.code ?? 500, body: event.data.object }),
            );
            return;
          }
          const workload = workloadSchema.safeParse(event.data.object).data;
          resourceVersion = workload?.metadata?.resourceVersion ?? resourceVersion;
          if (event.data.type === "BOOKMARK") return;
          const replicas = event.data.type === "DELETED" ? 0 : (workload?.status?.replicas ?? 0);
          const readyReplicas = Math.min(replicas, workload?.status?.readyReplicas ?? 0);
          onChange({ replicas, readyReplicas, unhealthyReplicas: replicas - readyReplicas });
        };
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffered += chunk;
          let newline = buffered.indexOf("\n");
          while (newline >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (line) onEvent(line);
            newline = buffered.indexOf("\n");
          }
        });
        res.on("end", () => resolve(resourceVersion));
        res.on("error", (error) => reject(this.unavailable("WATCH", this.collectionPath, error)));
      });
    });
  }

  async close(): Promise<void> {}

  /** Polls until status.replicas reaches the target, or the wait ends; returns what it last saw. */
  private async waitForReplicas(target: number, signal: AbortSignal | undefined): Promise<number> {
    const deadline = Date.now() + this.config.waitForReplicasMs;
    for (;;) {
      const observed = (await this.getScale()).status?.replicas ?? 0;
      if (observed === target || Date.now() >= deadline) return observed;
      await sleep(Math.min(this.config.pollIntervalMs, Math.max(1, deadline - Date.now())), signal);
    }
  }

  private async getScale(): Promise<Scale> {
    const response = await this.call("GET", `${this.workloadPath}/scale`);
    if (response.status !== 200) throw this.apiError("GET", response);
    const parsed = scaleSchema.safeParse(response.body);
    if (!parsed.success)
      throw new ActuatorError("bad_response", `${this.displayName}: the scale is not a Scale object`);
    return parsed.data;
  }

  /** readyReplicas from the workload itself; undefined when RBAC does not allow reading it. */
  private async readReplicasReady(): Promise<number | undefined> {
    if (this.readinessForbidden) return undefined;
    const response = await this.call("GET", this.workloadPath);
    if (response.status === 403) {
      this.readinessForbidden = true;
      this.logger.warn(
        { workload: this.displayName },
        "no RBAC to get the workload: readiness is unknown, every replica counts as ready",
      );
      return undefined;
    }
    if (response.status !== 200) throw this.apiError("GET", response);
    return workloadSchema.safeParse(response.body).data?.status?.readyReplicas ?? 0;
  }

  private apiError(verb: string, response: KubeResponse): ActuatorError {
    const status = statusSchema.safeParse(response.body).data;
    const detail = status?.message ?? `HTTP ${response.status}`;
    const what = `${verb} ${this.displayName}`;
    switch (response.status) {
      case 401:
        return new ActuatorError(
          "unauthorized",
          `${what}: the API server rejected the credentials from ${this.connection.source} (401 ${detail})`,
          { status: 401 },
        );
      case 403:
        return new ActuatorError("forbidden", `${what}: forbidden by RBAC: ${detail}`, { status: 403 });
      case 404:
        return new ActuatorError("not_found", `${what}: not found: ${detail}`, { status: 404 });
      case 409:
        return new ActuatorError("conflict", `${what}: conflict: ${detail}`, {
          status: 409,
          retryable: true,
        });
      default: {
        const retryable = response.status === 429 || response.status >= 500;
        return new ActuatorError(
          retryable ? "unavailable" : "invalid_request",
          `${what}: ${response.status} ${status?.reason ?? ""} ${detail}`.replace(/\s+/g, " ").trim(),
          { status: response.status, retryable },
        );
      }
    }
  }

  private call(method: "GET" | "PATCH", path: string, body?: unknown): Promise<KubeResponse> {
    return new Promise((resolve, reject) => {
      const req = this.open(method, path, { body, timeoutMs: this.config.requestTimeoutMs }, reject);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (error) => reject(this.unavailable(method, path, error)));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks)) }));
      });
    });
  }

  /** Sends a request to the API server with the connection's credentials; `onError` gets transport failures. */
  private open(
    method: "GET" | "PATCH",
    path: string,
    options: { body?: unknown; timeoutMs?: number; signal?: AbortSignal },
    onError: (error: ActuatorError) => void,
  ): ClientRequest {
    const url = new URL(path, this.connection.server);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const token = this.connection.token?.();
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": "proxyscale",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(payload === undefined
        ? {}
        : {
            "content-type": "application/merge-patch+json",
            "content-length": String(Buffer.byteLength(payload)),
          }),
    };
    const tls = {
      ...(this.connection.ca ? { ca: this.connection.ca } : {}),
      ...(this.connection.cert ? { cert: this.connection.cert } : {}),
      ...(this.connection.key ? { key: this.connection.key } : {}),
      rejectUnauthorized: !this.connection.insecureSkipTlsVerify,
    };
    const common = {
      method,
      headers,
      ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const req =
      url.protocol === "https:"
        ? httpsRequest(url, { ...common, ...tls, agent: false })
        : httpRequest(url, { ...common, agent: false });
    req.on("timeout", () => req.destroy(new Error(`timed out after ${options.timeoutMs} ms`)));
    req.on("error", (error) => onError(this.unavailable(method, path, error)));
    req.end(payload);
    return req;
  }

  private unavailable(method: string, path: string, error: Error): ActuatorError {
    const url = new URL(path, this.connection.server);
    return new ActuatorError(
      "unavailable",
      `${method} ${url.origin}${url.pathname} failed: ${errorMessage(error)}`,
      {
        retryable: true,
        cause: error,
      },
    );
  }
}

function parseJson(buffer: Buffer): unknown {
  const text = buffer.toString("utf8");
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
