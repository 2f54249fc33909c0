import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { KubernetesActuatorConfig } from "@proxyscale/core";
import { z } from "zod";
import type {
  Actuator,
  ActuatorDeps,
  ActuatorLogger,
  ReplicaCounts,
  SetReplicasContext,
  SetReplicasResult,
} from "../types.ts";
import {
  ActuatorError,
  assertReplicaCount,
  errorMessage,
  silentLogger,
  sleep,
  throwIfAborted,
} from "../types.ts";
import { type KubeConnection, loadKubeConnection } from "./credentials.ts";

/** autoscaling/v1 Scale, as the scale subresource returns it. */
const scaleSchema = z.object({
  metadata: z.object({ resourceVersion: z.string().optional() }).optional(),
  spec: z.object({ replicas: z.number().int().optional() }).optional(),
  status: z.object({ replicas: z.number().int().optional() }).optional(),
});
type Scale = z.infer<typeof scaleSchema>;

/** The fields of a Deployment or StatefulSet readiness comes from. The API server omits zero values. */
const workloadSchema = z.object({
  status: z.object({ readyReplicas: z.number().int().optional() }).optional(),
});

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
  private readonly displayName: string;
  private readonly logger: ActuatorLogger;
  private readinessForbidden = false;

  constructor(
    private readonly config: KubernetesActuatorConfig,
    deps: ActuatorDeps,
  ) {
    this.connection = loadKubeConnection(config.credentials, deps.env ?? process.env);
    this.logger = deps.logger ?? silentLogger;
    const namespace = config.namespace ?? this.connection.namespace ?? "default";
    const resource = config.workload === "deployment" ? "deployments" : "statefulsets";
    this.workloadPath = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${resource}/${encodeURIComponent(config.name)}`;
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
    const url = new URL(path, this.connection.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
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
    return new Promise((resolve, reject) => {
      const onError = (error: Error) =>
        reject(
          new ActuatorError(
            "unavailable",
            `${method} ${url.origin}${url.pathname} failed: ${errorMessage(error)}`,
            {
              retryable: true,
              cause: error,
            },
          ),
        );
      const options = { method, headers, timeout: this.config.requestTimeoutMs };
      const req =
        url.protocol === "https:"
          ? httpsRequest(url, { ...options, ...tls, agent: false })
          : httpRequest(url, { ...options, agent: false });
      req.on("timeout", () => req.destroy(new Error(`timed out after ${this.config.requestTimeoutMs} ms`)));
      req.on("error", onError);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", onError);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.end(payload);
    });
  }
}
