import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for kube-apiserver's apps/v1 workloads and their `scale` subresource, speaking the real
 * request and response shapes: autoscaling/v1 Scale, apps/v1 Deployment/StatefulSet status (zero values
 * omitted, as the API server's omitempty does), meta/v1 Status errors, merge-patch with a resourceVersion
 * precondition, bearer-token authentication and per-token RBAC, and watches of one workload
 * (`?watch=true&fieldSelector=metadata.name=…`: newline-delimited meta/v1 WatchEvents, 410 Gone as an ERROR
 * event for a resourceVersion older than `oldestResourceVersion`), and discovery.k8s.io/v1 EndpointSlices listed
 * by `labelSelector=kubernetes.io/service-name=…`.
 */
export interface FakeWorkload {
  resource: "deployments" | "statefulsets";
  namespace: string;
  name: string;
  specReplicas: number;
  statusReplicas: number;
  /** Pods that never become ready. */
  unready: number;
  resourceVersion: number;
}

export interface FakeIdentity {
  user: string;
  verbs: Array<"get-scale" | "patch-scale" | "get-workload" | "watch-workload" | "list-endpointslices">;
}

/** An EndpointSlice as the EndpointSlice controller writes it for a Service. */
export interface FakeEndpointSlice {
  namespace: string;
  name: string;
  service: string;
  addressType?: "IPv4" | "IPv6" | "FQDN";
  /** `ready` absent: the condition is unknown (the API says to treat it as ready). */
  endpoints: Array<{ addresses: string[]; ready?: boolean; pod?: string }>;
  /** `port` absent: the slice stands for every port. */
  ports: Array<{ name?: string; port?: number }>;
}

interface Watcher {
  key: string;
  res: ServerResponse;
}

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
}

const KIND = { deployments: "Deployment", statefulsets: "StatefulSet" } as const;
const SCALE_PATH = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/(deployments|statefulsets)\/([^/]+)(\/scale)?$/;
const COLLECTION_PATH = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/(deployments|statefulsets)$/;
const ENDPOINT_SLICES_PATH = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/;
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

function status(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

export class FakeKubeApiServer {
  readonly requests: RecordedRequest[] = [];
  readonly identities = new Map<string, FakeIdentity>();
  private readonly workloads = new Map<string, FakeWorkload>();
  private readonly endpointSlices: FakeEndpointSlice[] = [];
  /** The next N PATCHes each find the object changed by someone else since it was read. */
  concurrentWriters = 0;
  /** How long the controller takes to bring status.replicas to spec.replicas. */
  rolloutDelayMs = 0;
  /** Requests are recorded and never answered, as from an API server that hangs. */
  stalled = false;
  /** A watch from a resourceVersion below this gets 410 Gone (the API server compacted its history). */
  oldestResourceVersion = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly server;
  private readonly secure: boolean;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(tls?: { key: Buffer; cert: Buffer }) {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => this.handle(req, Buffer.concat(chunks).toString("utf8"), res));
    };
    this.server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
    this.secure = tls !== undefined;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    return `${this.secure ? "https" : "http"}://127.0.0.1:${port}`;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.endWatches();
    for (const timer of this.timers) clearTimeout(timer);
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  addWorkload(
    workload: Omit<FakeWorkload, "resourceVersion" | "statusReplicas" | "unready"> & Partial<FakeWorkload>,
  ) {
    const full: FakeWorkload = {
      statusReplicas: workload.specReplicas,
      unready: 0,
      resourceVersion: 1000,
      ...workload,
    };
    this.workloads.set(this.key(full.namespace, full.resource, full.name), full);
    return full;
  }

  addEndpointSlice(slice: FakeEndpointSlice): void {
    this.endpointSlices.push(slice);
  }

  workload(namespace: string, resource: FakeWorkload["resource"], name: string): FakeWorkload | undefined {
    return this.workloads.get(this.key(namespace, resource, name));
  }

  /** Pods that stop (or start) being ready, as the kubelet's probes would report: a MODIFIED event. */
  setUnready(workload: FakeWorkload, unready: number): void {
    workload.unready = unready;
    this.changed(workload);
  }

  /** Ends every open watch, as the API server does when its timeout passes. */
  endWatches(): void {
    for (const watcher of this.watchers) watcher.res.end();
    this.watchers.clear();
  }

  /** Open watches. */
  get watching(): number {
    return this.watchers.size;
  }

  private changed(workload: FakeWorkload): void {
    workload.resourceVersion += 1;
    const key = this.key(workload.namespace, workload.resource, workload.name);
    const event = `${JSON.stringify({ type: "MODIFIED", object: this.workloadObject(workload) })}\n`;
    for (const watcher of this.watchers) if (watcher.key === key) watcher.res.write(event);
  }

  private watch(url: URL, namespace: string, resource: FakeWorkload["resource"], res: ServerResponse) {
    const name = url.searchParams.get("fieldSelector")?.match(/^metadata\.name=(.+)$/)?.[1] ?? "";
    const workload = this.workload(namespace, resource, name);
    res.writeHead(200, { "content-type": "application/json" });
    const since = url.searchParams.get("resourceVersion");
    if (since !== null && Number(since) < this.oldestResourceVersion) {
      const gone = status(
        410,
        "Expired",
        `too old resource version: ${since} (${this.oldestResourceVersion})`,
      );
      res.end(`${JSON.stringify({ type: "ERROR", object: gone })}\n`);
      return;
    }
    if (workload && (since === null || Number(since) < workload.resourceVersion))
      res.write(`${JSON.stringify({ type: "ADDED", object: this.workloadObject(workload) })}\n`);
    const watcher = { key: this.key(namespace, resource, name), res };
    this.watchers.add(watcher);
    res.once("close", () => this.watchers.delete(watcher));
  }

  private key(namespace: string, resource: string, name: string) {
    return `${namespace}/${resource}/${name}`;
  }

  private handle(req: IncomingMessage, rawBody: string, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://apiserver");
    let body: unknown;
    try {
      body = rawBody ? JSON.parse(rawBody) : undefined;
    } catch {
      body = rawBody;
    }
    this.requests.push({
      method: req.method ?? "",
      path: `${url.pathname}${url.search}`,
      contentType: req.headers["content-type"],
      authorization: req.headers.authorization,
      body,
    });
    if (this.stalled) return;
    const send = (code: number, payload: unknown) =>
      res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(payload));

    const token = req.headers.authorization?.match(/^Bearer (.+)$/)?.[1];
    const identity = token === undefined ? undefined : this.identities.get(token);
    if (!identity) return send(401, status(401, "Unauthorized", "Unauthorized"));

    const collection = url.pathname.match(COLLECTION_PATH);
    if (collection && req.method === "GET" && url.searchParams.get("watch") === "true") {
      const [, namespace = "", resource = "deployments"] = collection;
      if (!identity.verbs.includes("watch-workload")) {
        return send(
          403,
          status(
            403,
            "Forbidden",
            `${resource}.apps is forbidden: User "${identity.user}" cannot watch resource "${resource}" in API group "apps" in the namespace "${namespace}"`,
          ),
        );
      }
      return this.watch(url, namespace, resource as FakeWorkload["resource"], res);
    }
    const slices = url.pathname.match(ENDPOINT_SLICES_PATH);
    if (slices && req.method === "GET") {
      const [, namespace = ""] = slices;
      if (!identity.verbs.includes("list-endpointslices")) {
        return send(
          403,
          status(
            403,
            "Forbidden",
            `endpointslices.discovery.k8s.io is forbidden: User "${identity.user}" cannot list resource "endpointslices" in API group "discovery.k8s.io" in the namespace "${namespace}"`,
          ),
        );
      }
      return send(200, this.endpointSliceList(namespace, url.searchParams.get("labelSelector")));
    }
    const match = url.pathname.match(SCALE_PATH);
    if (!match) return send(404, status(404, "NotFound", "the server could not find the requested resource"));
    const [, namespace = "", resource = "deployments", name = "", scaleSuffix] = match;
    const isScale = scaleSuffix !== undefined;
    const kind = resource as FakeWorkload["resource"];
    const details = { name, group: "apps", kind: resource };
    const verb =
      req.method === "PATCH" && isScale
        ? "patch-scale"
        : req.method === "GET"
          ? isScale
            ? "get-scale"
            : "get-workload"
          : undefined;
    if (!verb)
      return send(
        405,
        status(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`),
      );
    if (!identity.verbs.includes(verb)) {
      const [action, subresource] =
        verb === "get-workload" ? ["get", resource] : [verb.split("-")[0], `${resource}/scale`];
      return send(
        403,
        status(
          403,
          "Forbidden",
          `${resource}.apps "${name}" is forbidden: User "${identity.user}" cannot ${action} resource "${subresource}" in API group "apps" in the namespace "${namespace}"`,
          details,
        ),
      );
    }
    const workload = this.workload(namespace, kind, name);
    if (!workload) return send(404, status(404, "NotFound", `${resource}.apps "${name}" not found`, details));

    if (req.method === "PATCH") {
      const contentType = req.headers["content-type"]?.split(";")[0];
      if (
        contentType !== "application/merge-patch+json" &&
        contentType !== "application/strategic-merge-patch+json"
      ) {
        return send(
          415,
          status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
          ),
        );
      }
      const patch = body as
        | { metadata?: { resourceVersion?: string }; spec?: { replicas?: unknown } }
        | undefined;
      if (typeof patch !== "object" || patch === null) {
        return send(400, status(400, "BadRequest", "error decoding patch: invalid character"));
      }
      if (this.concurrentWriters > 0) {
        this.concurrentWriters -= 1;
        workload.resourceVersion += 1;
      }
      const precondition = patch.metadata?.resourceVersion;
      if (precondition !== undefined && precondition !== String(workload.resourceVersion)) {
        return send(
          409,
          status(
            409,
            "Conflict",
            `Operation cannot be fulfilled on ${resource}.apps "${name}": the object has been modified; please apply your changes to the latest version and try again`,
            details,
          ),
        );
      }
      const replicas = patch.spec?.replicas;
      if (replicas !== undefined) {
        if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
          return send(
            422,
            status(
              422,
              "Invalid",
              `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
              { ...details, causes: [{ reason: "FieldValueInvalid", field: "spec.replicas" }] },
            ),
          );
        }
        workload.specReplicas = replicas;
        this.changed(workload);
        this.rollout(workload);
      }
    }
    return send(200, isScale ? this.scale(workload) : this.workloadObject(workload));
  }

  /** Only the equality selector on the service-name label, the one way a Service's slices are found. */
  private endpointSliceList(namespace: string, labelSelector: string | null) {
    const [label, value] = labelSelector?.split("=") ?? [];
    const items = this.endpointSlices
      .filter(
        (slice) =>
          slice.namespace === namespace &&
          (label === undefined || (label === SERVICE_NAME_LABEL && value === slice.service)),
      )
      .map((slice) => ({
        metadata: {
          name: slice.name,
          namespace: slice.namespace,
          resourceVersion: "2000",
          labels: {
            [SERVICE_NAME_LABEL]: slice.service,
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
          },
        },
        addressType: slice.addressType ?? "IPv4",
        endpoints: slice.endpoints.map((endpoint) => ({
          addresses: endpoint.addresses,
          // Pointer fields: an unknown condition is left out.
          conditions:
            endpoint.ready === undefined
              ? {}
              : { ready: endpoint.ready, serving: endpoint.ready, terminating: !endpoint.ready },
          ...(endpoint.pod
            ? { targetRef: { kind: "Pod", namespace: slice.namespace, name: endpoint.pod } }
            : {}),
          nodeName: "node-1",
        })),
        ports: slice.ports.map((port) => ({
          name: port.name ?? "",
          protocol: "TCP",
          ...(port.port === undefined ? {} : { port: port.port }),
        })),
      }));
    return {
      kind: "EndpointSliceList",
      apiVersion: "discovery.k8s.io/v1",
      metadata: { resourceVersion: "2000" },
      items,
    };
  }

  private rollout(workload: FakeWorkload) {
    const apply = () => {
      workload.statusReplicas = workload.specReplicas;
      this.changed(workload);
    };
    if (this.rolloutDelayMs === 0) return apply();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      apply();
    }, this.rolloutDelayMs);
    this.timers.add(timer);
  }

  private metadata(workload: FakeWorkload) {
    return {
      name: workload.name,
      namespace: workload.namespace,
      uid: `6f1c2b7e-0000-4000-8000-${workload.name.padStart(12, "0").slice(-12)}`,
      resourceVersion: String(workload.resourceVersion),
      creationTimestamp: "2025-01-01T00:00:00Z",
    };
  }

  private scale(workload: FakeWorkload) {
    return {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: this.metadata(workload),
      spec: workload.specReplicas === 0 ? {} : { replicas: workload.specReplicas },
      status: { replicas: workload.statusReplicas, selector: `app=${workload.name}` },
    };
  }

  private workloadObject(workload: FakeWorkload) {
    const ready = Math.max(0, workload.statusReplicas - workload.unready);
    const omitZero = (fields: Record<string, number>) =>
      Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== 0));
    return {
      kind: KIND[workload.resource],
      apiVersion: "apps/v1",
      metadata: { ...this.metadata(workload), generation: 1 },
      spec: { replicas: workload.specReplicas, selector: { matchLabels: { app: workload.name } } },
      status: {
        observedGeneration: 1,
        ...omitZero({ replicas: workload.statusReplicas, readyReplicas: ready, availableReplicas: ready }),
      },
    };
  }
}
