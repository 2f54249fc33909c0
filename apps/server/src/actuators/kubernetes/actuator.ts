import { STATUS_CODES } from "node:http";
import {
  ApiException,
  AppsV1Api,
  type ConfigurationOptions,
  DiscoveryV1Api,
  Observable,
  PatchStrategy,
  setHeaderOptions,
  type V1Scale,
  Watch,
} from "@kubernetes/client-node";
import type { KubernetesActuatorConfig } from "@proxyscale/core";
import { type Logger, silentLogger } from "@proxyscale/db";
import { z } from "zod";
import type {
  Actuator,
  ActuatorDeps,
  ActuatorTarget,
  ReplicaCounts,
  SetReplicasContext,
  SetReplicasResult,
} from "../types.ts";
import { ActuatorError, assertReplicaCount, errorMessage, sleep, throwIfAborted } from "../types.ts";
import { type KubeCredentials, loadKubeCredentials } from "./credentials.ts";

/** The fields of a Deployment or StatefulSet a watch event's object is read for. The API server omits zero values. */
const workloadSchema = z.object({
  metadata: z.object({ resourceVersion: z.string().optional() }).optional(),
  status: z
    .object({ replicas: z.number().int().optional(), readyReplicas: z.number().int().optional() })
    .optional(),
});

/** meta/v1 Status, the body of every API error and of a watch's ERROR event. */
const statusSchema = z.object({
  kind: z.literal("Status"),
  code: z.number().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
});

/** Longest pause between watch attempts after failures (doubling from 1 s). */
const MAX_WATCH_BACKOFF_MS = 30_000;
/** The API server ends a watch after this; it is then resumed from the last resourceVersion. */
const WATCH_TIMEOUT_SECONDS = 300;

class WatchGone extends Error {}

/**
 * Scales a Deployment or StatefulSet through its `scale` subresource with @kubernetes/client-node. The PATCH
 * carries the resourceVersion it read, so a concurrent change answers 409 and is retried on a fresh GET instead
 * of being overwritten.
 */
export class KubernetesActuator implements Actuator {
  readonly kind = "kubernetes";
  private readonly credentials: KubeCredentials;
  private readonly apps: AppsV1Api;
  private readonly discovery: DiscoveryV1Api;
  private readonly watcher: Watch;
  private readonly namespace: string;
  private readonly service: string;
  private readonly collectionPath: string;
  private readonly displayName: string;
  private readonly logger: Logger;
  private readinessForbidden = false;

  constructor(
    private readonly config: KubernetesActuatorConfig,
    deps: ActuatorDeps,
  ) {
    this.credentials = loadKubeCredentials(config.credentials, deps.env ?? process.env);
    const { kubeConfig } = this.credentials;
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
    this.watcher = new Watch(kubeConfig);
    this.logger = deps.logger ?? silentLogger;
    this.namespace = config.namespace ?? this.credentials.namespace ?? "default";
    this.service = config.service ?? config.name;
    const resource = config.workload === "deployment" ? "deployments" : "statefulsets";
    this.collectionPath = `/apis/apps/v1/namespaces/${encodeURIComponent(this.namespace)}/${resource}`;
    this.displayName = `${config.workload} ${this.namespace}/${config.name}`;
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
      const scale = await this.getScale(ctx.signal);
      // ScaleSpec.replicas is omitempty: absent means 0.
      if ((scale.spec?.replicas ?? 0) === replicas) break;
      try {
        await this.patchScale(
          { metadata: { resourceVersion: scale.metadata?.resourceVersion }, spec: { replicas } },
          ctx.signal,
        );
        break;
      } catch (error) {
        if (!(error instanceof ActuatorError) || error.status !== 409) throw error;
      }
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
   * The ready replicas' addresses, from the EndpointSlices of the workload's Service (`config.service`, else
   * the workload's name): one target per ready endpoint address and Service port. An endpoint whose `ready`
   * condition is absent counts as ready, as the EndpointSlice API says; one listed by two slices (while the
   * controller moves it) appears once.
   */
  async targets(): Promise<ActuatorTarget[]> {
    const labelSelector = `kubernetes.io/service-name=${this.service}`;
    const slices = await this.request(
      `LIST endpointslices of service ${this.namespace}/${this.service}`,
      (options) =>
        this.discovery.listNamespacedEndpointSlice({ namespace: this.namespace, labelSelector }, options),
    );
    const targets = new Map<string, ActuatorTarget>();
    for (const slice of slices.items) {
      for (const endpoint of slice.endpoints ?? []) {
        if (endpoint.conditions?.ready === false) continue;
        for (const address of endpoint.addresses) {
          for (const port of slice.ports ?? []) {
            // A slice port without a number stands for every port of the pod: nothing a scraper can dial.
            if (port.port === undefined) continue;
            targets.set(`${address}:${port.port}`, {
              instance: endpoint.targetRef?.name ?? address,
              address,
              port: port.port,
              ...(port.name ? { portName: port.name } : {}),
            });
          }
        }
      }
    }
    return [...targets.values()];
  }

  /**
   * Watches the workload (client-node's Watch: `?watch=true`, resumed from the last resourceVersion when the
   * API server ends the stream, from scratch after 410 Gone) and reports its replicas and ready replicas on every
   * change, so a pod that crashes or becomes ready reaches the control loop at once instead of at the next
   * reconcile. Without RBAC to watch, it logs once and leaves the counts to getReplicas.
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

  /** One watch request; resolves with the last resourceVersion seen when the stream ends. */
  private watchOnce(
    since: string | undefined,
    onChange: (counts: ReplicaCounts) => void,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const query = {
      fieldSelector: `metadata.name=${this.config.name}`,
      allowWatchBookmarks: true,
      timeoutSeconds: WATCH_TIMEOUT_SECONDS,
      resourceVersion: since,
    };
    let resourceVersion = since;
    return new Promise((resolve, reject) => {
      let stream: AbortController | undefined;
      /** Why this side ended the stream (an ERROR event); undefined while it runs or ended on its own. */
      let ended: Error | undefined;
      const stop = () => stream?.abort();
      signal.addEventListener("abort", stop, { once: true });
      const onEvent = (type: string, object: unknown) => {
        if (type === "ERROR") {
          const status = statusSchema.safeParse(object).data;
          ended =
            status?.code === 410
              ? new WatchGone()
              : this.apiError(`WATCH ${this.displayName}`, status?.code ?? 500, object);
          stream?.abort();
          return;
        }
        const workload = workloadSchema.safeParse(object).data;
        resourceVersion = workload?.metadata?.resourceVersion ?? resourceVersion;
        if (type === "BOOKMARK") return;
        const replicas = type === "DELETED" ? 0 : (workload?.status?.replicas ?? 0);
        const readyReplicas = Math.min(replicas, workload?.status?.readyReplicas ?? 0);
        onChange({ replicas, readyReplicas, unhealthyReplicas: replicas - readyReplicas });
      };
      const onDone = (error: unknown) => {
        signal.removeEventListener("abort", stop);
        if (ended) return reject(ended);
        // client-node ends a stream quiet for 30 s with a TimeoutError: resume it like one the server closed.
        if (!error || signal.aborted || (error instanceof Error && error.name === "TimeoutError"))
          return resolve(resourceVersion);
        const statusCode = (error as { statusCode?: unknown }).statusCode;
        reject(
          typeof statusCode === "number"
            ? this.apiError(`WATCH ${this.displayName}`, statusCode, undefined)
            : this.unavailable(`WATCH ${this.displayName}`, error),
        );
      };
      this.watcher.watch(this.collectionPath, query, onEvent, onDone).then(
        (controller) => {
          stream = controller;
          if (ended || signal.aborted) controller.abort();
        },
        (error: unknown) => onDone(error),
      );
    });
  }

  async close(): Promise<void> {}

  /** Polls until status.replicas reaches the target, or the wait ends; returns what it last saw. */
  private async waitForReplicas(target: number, signal: AbortSignal | undefined): Promise<number> {
    const deadline = Date.now() + this.config.waitForReplicasMs;
    for (;;) {
      const observed = (await this.getScale(signal)).status?.replicas ?? 0;
      if (observed === target || Date.now() >= deadline) return observed;
      await sleep(Math.min(this.config.pollIntervalMs, Math.max(1, deadline - Date.now())), signal);
    }
  }

  private getScale(signal?: AbortSignal): Promise<V1Scale> {
    const param = { name: this.config.name, namespace: this.namespace };
    return this.request(
      `GET ${this.displayName}`,
      (options) =>
        this.config.workload === "deployment"
          ? this.apps.readNamespacedDeploymentScale(param, options)
          : this.apps.readNamespacedStatefulSetScale(param, options),
      signal,
    );
  }

  /** A JSON merge patch: with the resourceVersion in it, the API server applies it only to the scale we read. */
  private patchScale(body: object, signal?: AbortSignal): Promise<V1Scale> {
    const param = { name: this.config.name, namespace: this.namespace, body, fieldManager: "proxyscale" };
    return this.request(
      `PATCH ${this.displayName}`,
      (options) => {
        const withType = setHeaderOptions("Content-Type", PatchStrategy.MergePatch, options);
        return this.config.workload === "deployment"
          ? this.apps.patchNamespacedDeploymentScale(param, withType)
          : this.apps.patchNamespacedStatefulSetScale(param, withType);
      },
      signal,
    );
  }

  /** readyReplicas from the workload itself; undefined when RBAC does not allow reading it. */
  private async readReplicasReady(): Promise<number | undefined> {
    if (this.readinessForbidden) return undefined;
    const param = { name: this.config.name, namespace: this.namespace };
    try {
      const workload = await this.request(`GET ${this.displayName}`, (options) =>
        this.config.workload === "deployment"
          ? this.apps.readNamespacedDeployment(param, options)
          : this.apps.readNamespacedStatefulSet(param, options),
      );
      return workload.status?.readyReplicas ?? 0;
    } catch (error) {
      if (!(error instanceof ActuatorError) || error.code !== "forbidden") throw error;
      this.readinessForbidden = true;
      this.logger.warn(
        { workload: this.displayName },
        "no RBAC to get the workload: readiness is unknown, every replica counts as ready",
      );
      return undefined;
    }
  }

  /**
   * One API call with the request timeout (and the caller's abort signal) on it; every failure becomes an
   * ActuatorError whose message starts with `what` (verb and resource).
   */
  private async request<T>(
    what: string,
    call: (options: ConfigurationOptions) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const timeoutMs = this.config.requestTimeoutMs;
    const options: ConfigurationOptions = {
      middleware: [
        {
          pre: (context) => {
            const timeout = AbortSignal.timeout(timeoutMs);
            context.setSignal(signal ? AbortSignal.any([timeout, signal]) : timeout);
            return new Observable(Promise.resolve(context));
          },
          post: (response) => new Observable(Promise.resolve(response)),
        },
      ],
      middlewareMergeStrategy: "append",
    };
    try {
      return await call(options);
    } catch (error) {
      if (error instanceof ApiException) {
        const body = typeof error.body === "string" ? parseJson(error.body) : error.body;
        throw this.apiError(what, error.code, body);
      }
      if (signal?.aborted) throw new ActuatorError("aborted", `${what} was aborted`, { cause: error });
      if (error instanceof Error && error.name === "TimeoutError") {
        throw new ActuatorError("unavailable", `${what} failed: timed out after ${timeoutMs} ms`, {
          retryable: true,
          cause: error,
        });
      }
      throw this.unavailable(what, error);
    }
  }

  /** An API server's answer as an ActuatorError; `what` is the verb and resource, `body` its meta/v1 Status. */
  private apiError(what: string, code: number, body: unknown): ActuatorError {
    const status = statusSchema.safeParse(body).data;
    const detail = status?.message ?? STATUS_CODES[code] ?? `HTTP ${code}`;
    switch (code) {
      case 401:
        return new ActuatorError(
          "unauthorized",
          `${what}: the API server rejected the credentials from ${this.credentials.source} (401 ${detail})`,
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
        const retryable = code === 429 || code >= 500;
        return new ActuatorError(
          retryable ? "unavailable" : "invalid_request",
          `${what}: ${code} ${status?.reason ?? ""} ${detail}`.replace(/\s+/g, " ").trim(),
          { status: code, retryable },
        );
      }
    }
  }

  private unavailable(what: string, error: unknown): ActuatorError {
    return new ActuatorError("unavailable", `${what} failed: ${errorMessage(error)}`, {
      retryable: true,
      cause: error,
    });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
