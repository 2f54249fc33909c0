import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KubernetesActuatorConfig, parseActuatorConfig } from "@proxyscale/core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { ActuatorError, KubernetesActuator, loadKubeCredentials } from "../../src/actuators/index.ts";
import { FakeKubeApiServer } from "./fake-kube-apiserver.ts";

let dir: string;
let tls: { key: Buffer; cert: Buffer };
let api: FakeKubeApiServer;
let apiUrl: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "proxyscale-kube-"));
  // A self-signed serving certificate for 127.0.0.1, as a cluster CA would issue.
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=kube-apiserver",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "apiserver.key"),
      "-out",
      join(dir, "ca.crt"),
    ],
    { stdio: "ignore" },
  );
  tls = { key: readFileSync(join(dir, "apiserver.key")), cert: readFileSync(join(dir, "ca.crt")) };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(async () => {
  api = new FakeKubeApiServer(tls);
  apiUrl = await api.start();
  api.identities.set("operator-token", {
    user: "system:serviceaccount:prod:proxyscale",
    verbs: ["get-scale", "patch-scale", "get-workload"],
  });
  api.identities.set("viewer-token", { user: "system:serviceaccount:prod:viewer", verbs: ["get-scale"] });
  api.addWorkload({ resource: "deployments", namespace: "prod", name: "edge", specReplicas: 3 });
});
afterEach(() => api.stop());

function writeKubeconfig(
  name: string,
  options: {
    token?: string;
    /** The scaler user's fields, as YAML lines, instead of `token`. */
    user?: string;
    ca?: "data" | "file" | "none";
    insecure?: boolean;
    server?: string;
  } = {},
) {
  const ca = options.ca ?? "data";
  const caLine =
    ca === "data"
      ? `    certificate-authority-data: ${tls.cert.toString("base64")}\n`
      : ca === "file"
        ? "    certificate-authority: ca.crt\n"
        : "";
  const path = join(dir, name);
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: lab
  cluster:
    server: ${options.server ?? apiUrl}
${caLine}${options.insecure ? "    insecure-skip-tls-verify: true\n" : ""}contexts:
- name: prod
  context:
    cluster: lab
    user: scaler
    namespace: prod
- name: broken
  context:
    cluster: nowhere
users:
- name: scaler
  user:
${options.user ?? `    token: ${options.token ?? "operator-token"}\n`}`,
  );
  return path;
}

function kube(overrides: Record<string, unknown>, env: Record<string, string> = {}): KubernetesActuator {
  const config = parseActuatorConfig({
    kind: "kubernetes",
    name: "edge",
    pollIntervalMs: 20,
    waitForReplicasMs: 5_000,
    ...overrides,
  }) as KubernetesActuatorConfig;
  return new KubernetesActuator(config, { proxyId: "edge", env });
}

const ctx = { proxyId: "edge", eventId: "evt", fromReplicas: 3 };
const scalePath = "/apis/apps/v1/namespaces/prod/deployments/edge/scale";
/** How long a watch event may take to reach the actuator from the fake API server. */
const WAIT = { timeout: 5_000, interval: 10 };

describe("kubernetes actuator", () => {
  it("reads and patches the scale subresource over TLS with kubeconfig credentials", async () => {
    api.rolloutDelayMs = 150;
    const actuator = kube({ credentials: { source: "kubeconfig", path: writeKubeconfig("config") } });
    expect(await actuator.getReplicas()).toEqual({ replicas: 3, readyReplicas: 3, unhealthyReplicas: 0 });

    await expect(actuator.setReplicas(5, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 5 });
    const patch = api.requests.find((request) => request.method === "PATCH");
    expect(patch).toEqual({
      method: "PATCH",
      path: `${scalePath}?fieldManager=proxyscale`,
      contentType: "application/merge-patch+json",
      authorization: "Bearer operator-token",
      body: { metadata: { resourceVersion: "1000" }, spec: { replicas: 5 } },
    });
    // It waited for the rollout: GETs of the scale came after the PATCH until status.replicas reached 5.
    const afterPatch = api.requests.slice(api.requests.indexOf(patch!) + 1);
    expect(afterPatch.length).toBeGreaterThan(1);
    expect(afterPatch.every((request) => request.method === "GET" && request.path === scalePath)).toBe(true);
    expect(api.workload("prod", "deployments", "edge")).toMatchObject({ specReplicas: 5, statusReplicas: 5 });
  });

  it("watches the workload: reports readiness changes at once, resumes where it was, and starts over after 410 Gone", async () => {
    api.identities.set("watcher-token", {
      user: "system:serviceaccount:prod:proxyscale",
      verbs: ["get-scale", "patch-scale", "get-workload", "watch-workload"],
    });
    const actuator = kube({
      credentials: { source: "kubeconfig", path: writeKubeconfig("watcher", { token: "watcher-token" }) },
    });
    const seen: Array<{ replicas: number; readyReplicas: number; unhealthyReplicas: number }> = [];
    const stop = actuator.watch((counts) => seen.push(counts));
    const workload = api.workload("prod", "deployments", "edge")!;
    const watches = () => api.requests.filter((request) => request.path.includes("watch=true"));
    const last = () => seen.at(-1);
    /** The watch streams the fake API server has seen requested, and how many are open now. */
    const streams = () => ({ requested: watches().length, open: api.watching });
    try {
      await expect.poll(() => last()?.readyReplicas, WAIT).toBe(3);
      expect(watches()[0]?.path).toBe(
        "/apis/apps/v1/namespaces/prod/deployments?watch=true&fieldSelector=metadata.name%3Dedge&allowWatchBookmarks=true&timeoutSeconds=300",
      );

      api.setUnready(workload, 1);
      await expect.poll(() => last()?.unhealthyReplicas, WAIT).toBe(1);
      expect(last()).toEqual({ replicas: 3, readyReplicas: 2, unhealthyReplicas: 1 });

      // The API server ends the stream: the watch resumes from the last resourceVersion it saw.
      const resumeFrom = String(workload.resourceVersion);
      api.endWatches();
      await expect.poll(streams, WAIT).toEqual({ requested: 2, open: 1 });
      expect(watches()[1]?.path).toContain(`resourceVersion=${resumeFrom}`);
      api.setUnready(workload, 0);
      await expect.poll(() => last()?.unhealthyReplicas, WAIT).toBe(0);

      // History compacted past where it was: 410 Gone, then a watch from scratch that lists the object again.
      api.oldestResourceVersion = workload.resourceVersion + 1;
      const before = seen.length;
      api.endWatches();
      await expect.poll(streams, WAIT).toEqual({ requested: 4, open: 1 });
      await expect.poll(() => seen.length, WAIT).toBeGreaterThan(before);
      expect(watches()[2]?.path).toContain("resourceVersion=");
      expect(watches()[3]?.path).not.toContain("resourceVersion=");
      expect(last()).toEqual({ replicas: 3, readyReplicas: 3, unhealthyReplicas: 0 });
    } finally {
      stop();
    }
    await expect.poll(() => api.watching, WAIT).toBe(0);
  });

  it("leaves the counts to getReplicas when RBAC does not allow watching", async () => {
    const warnings: string[] = [];
    const config = parseActuatorConfig({
      kind: "kubernetes",
      name: "edge",
      credentials: { source: "kubeconfig", path: writeKubeconfig("config") },
    }) as KubernetesActuatorConfig;
    const actuator = new KubernetesActuator(config, {
      proxyId: "edge",
      env: {},
      logger: { debug() {}, info() {}, warn: (_obj, msg) => warnings.push(msg ?? ""), error() {} },
    });
    const stop = actuator.watch(() => {});
    await expect.poll(() => warnings.length, WAIT).toBeGreaterThan(0);
    stop();
    expect(warnings).toEqual(["cannot watch the workload: replica counts come from reconciles only"]);
    expect(api.requests.filter((request) => request.path.includes("watch=true"))).toHaveLength(1);
    expect(await actuator.getReplicas()).toEqual({ replicas: 3, readyReplicas: 3, unhealthyReplicas: 0 });
  });

  it("reports what it observed when the rollout outlasts the wait", async () => {
    api.rolloutDelayMs = 2_000;
    const actuator = kube({
      credentials: { source: "kubeconfig", path: writeKubeconfig("config") },
      waitForReplicasMs: 100,
    });
    await expect(actuator.setReplicas(6, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 3 });
  });

  it("uses in-cluster service-account credentials, re-reading the rotated token", async () => {
    api.addWorkload({
      resource: "statefulsets",
      namespace: "edge-ns",
      name: "edge",
      specReplicas: 2,
      unready: 1,
    });
    api.identities.set("rotated-token", {
      user: "system:serviceaccount:edge-ns:proxyscale",
      verbs: ["get-scale", "get-workload", "patch-scale"],
    });
    const serviceAccountDir = join(dir, "sa");
    mkdirSync(serviceAccountDir, { recursive: true });
    writeFileSync(join(serviceAccountDir, "token"), "operator-token");
    writeFileSync(join(serviceAccountDir, "ca.crt"), tls.cert);
    writeFileSync(join(serviceAccountDir, "namespace"), "edge-ns");
    const actuator = kube(
      { workload: "statefulset", credentials: { source: "inCluster", serviceAccountDir } },
      { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(api.port) },
    );
    expect(await actuator.getReplicas()).toEqual({ replicas: 2, readyReplicas: 1, unhealthyReplicas: 1 });
    expect(api.requests.map((request) => request.path)).toEqual([
      "/apis/apps/v1/namespaces/edge-ns/statefulsets/edge/scale",
      "/apis/apps/v1/namespaces/edge-ns/statefulsets/edge",
    ]);

    // client-node re-reads the token file once it is a minute old, as client-go does.
    writeFileSync(join(serviceAccountDir, "token"), "rotated-token");
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 61_000 });
    try {
      await actuator.setReplicas(4, ctx);
    } finally {
      vi.useRealTimers();
    }
    expect(api.requests.at(-1)?.authorization).toBe("Bearer rotated-token");
    expect(api.workload("edge-ns", "statefulsets", "edge")?.specReplicas).toBe(4);
  });

  it("explains where in-cluster credentials are missing", () => {
    expect(() =>
      kube({ credentials: { source: "inCluster", serviceAccountDir: join(dir, "sa") } }, {}),
    ).toThrow("in-cluster credentials need KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT");
    expect(() =>
      kube(
        { credentials: { source: "inCluster", serviceAccountDir: join(dir, "missing") } },
        { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: "6443" },
      ),
    ).toThrow(`cannot read the service account token at ${join(dir, "missing", "token")}`);
  });

  it("retries a 409 Conflict on a fresh GET and wins", async () => {
    api.concurrentWriters = 2;
    const actuator = kube({ credentials: { source: "kubeconfig", path: writeKubeconfig("config") } });
    await expect(actuator.setReplicas(7, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 7 });
    const writes = api.requests.filter((request) => request.method === "PATCH");
    expect(writes).toHaveLength(3);
    // Each retry carried the resourceVersion of a new read, not the stale one.
    const versions = writes.map(
      (request) => (request.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion,
    );
    expect(new Set(versions).size).toBe(3);
  });

  it("gives up with a conflict error when the scale keeps changing", async () => {
    api.concurrentWriters = 10;
    const actuator = kube({
      credentials: { source: "kubeconfig", path: writeKubeconfig("config") },
      conflictRetries: 2,
    });
    const error = await actuator.setReplicas(7, ctx).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ActuatorError);
    expect(error).toMatchObject({
      code: "conflict",
      status: 409,
      message: expect.stringContaining("409 Conflict 3 times"),
    });
    expect(api.workload("prod", "deployments", "edge")?.specReplicas).toBe(3);
  });

  it("names a missing workload with the API server's own message", async () => {
    const actuator = kube({
      name: "ghost",
      credentials: { source: "kubeconfig", path: writeKubeconfig("config") },
    });
    await expect(actuator.getReplicas()).rejects.toMatchObject({
      code: "not_found",
      status: 404,
      message: 'GET deployment prod/ghost: not found: deployments.apps "ghost" not found',
    });
  });

  it("reports rejected credentials (401) and missing RBAC (403) clearly", async () => {
    const rejected = kube({
      credentials: { source: "kubeconfig", path: writeKubeconfig("bad", { token: "expired" }) },
    });
    await expect(rejected.getReplicas()).rejects.toMatchObject({
      code: "unauthorized",
      status: 401,
      message: expect.stringContaining(
        `the API server rejected the credentials from kubeconfig ${join(dir, "bad")}`,
      ),
    });
    const viewer = kube({
      credentials: { source: "kubeconfig", path: writeKubeconfig("viewer", { token: "viewer-token" }) },
    });
    await expect(viewer.setReplicas(4, ctx)).rejects.toMatchObject({
      code: "forbidden",
      message:
        'PATCH deployment prod/edge: forbidden by RBAC: deployments.apps "edge" is forbidden: User "system:serviceaccount:prod:viewer" cannot patch resource "deployments/scale" in API group "apps" in the namespace "prod"',
    });
    // Without RBAC to read the Deployment, readiness is unknown and every replica counts as ready.
    expect(await viewer.getReplicas()).toEqual({ replicas: 3, readyReplicas: 3, unhealthyReplicas: 0 });
  });

  it("verifies the server certificate unless insecure-skip-tls-verify is set", async () => {
    const unverified = kube({
      credentials: { source: "kubeconfig", path: writeKubeconfig("noca", { ca: "none" }) },
    });
    await expect(unverified.getReplicas()).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(/self[- ]signed certificate/),
    });
    const insecure = kube({
      credentials: {
        source: "kubeconfig",
        path: writeKubeconfig("insecure", { ca: "none", insecure: true }),
      },
    });
    expect(await insecure.getReplicas()).toMatchObject({ replicas: 3 });
    const caFile = kube({
      credentials: { source: "kubeconfig", path: writeKubeconfig("cafile", { ca: "file" }) },
    });
    expect(await caFile.getReplicas()).toMatchObject({ replicas: 3 });
  });

  it("lists the ready replicas' addresses from the EndpointSlices of the workload's Service", async () => {
    api.identities.set("scraper-token", {
      user: "system:serviceaccount:prod:proxyscale",
      verbs: ["get-scale", "list-endpointslices"],
    });
    api.addEndpointSlice({
      namespace: "prod",
      name: "edge-7kx2p",
      service: "edge",
      endpoints: [
        { addresses: ["10.1.0.5"], ready: true, pod: "edge-6f9c-a" },
        { addresses: ["10.1.0.6"], ready: false, pod: "edge-6f9c-b" },
        { addresses: ["10.1.0.7"], pod: "edge-6f9c-c" },
      ],
      ports: [
        { name: "metrics", port: 8405 },
        { name: "http", port: 8080 },
      ],
    });
    // The controller moving an endpoint lists it in two slices for a while; another Service's slice is not ours.
    api.addEndpointSlice({
      namespace: "prod",
      name: "edge-q8w4z",
      service: "edge",
      endpoints: [{ addresses: ["10.1.0.5"], ready: true, pod: "edge-6f9c-a" }],
      ports: [{ name: "metrics", port: 8405 }],
    });
    api.addEndpointSlice({
      namespace: "prod",
      name: "edge-admin-m2c9d",
      service: "edge-admin",
      endpoints: [{ addresses: ["10.1.0.9"], ready: true, pod: "edge-admin-0" }],
      ports: [{ port: 9000 }],
    });
    const path = writeKubeconfig("scraper", { token: "scraper-token" });
    const byAddress = (targets: Array<{ address: string; port: number }>) =>
      [...targets].sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`));

    const edge = kube({ credentials: { source: "kubeconfig", path } });
    expect(byAddress(await edge.targets())).toEqual([
      { instance: "edge-6f9c-a", address: "10.1.0.5", port: 8080, portName: "http" },
      { instance: "edge-6f9c-a", address: "10.1.0.5", port: 8405, portName: "metrics" },
      { instance: "edge-6f9c-c", address: "10.1.0.7", port: 8080, portName: "http" },
      { instance: "edge-6f9c-c", address: "10.1.0.7", port: 8405, portName: "metrics" },
    ]);
    const list = new URL(api.requests.at(-1)?.path ?? "", apiUrl);
    expect(list.pathname).toBe("/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices");
    expect(list.searchParams.get("labelSelector")).toBe("kubernetes.io/service-name=edge");

    const admin = kube({ service: "edge-admin", credentials: { source: "kubeconfig", path } });
    expect(await admin.targets()).toEqual([{ instance: "edge-admin-0", address: "10.1.0.9", port: 9000 }]);

    const withoutRbac = kube({ credentials: { source: "kubeconfig", path: writeKubeconfig("config") } });
    await expect(withoutRbac.targets()).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringContaining("LIST endpointslices of service prod/edge: forbidden by RBAC"),
    });
  });

  it("stops a scale in flight when its signal aborts", async () => {
    api.rolloutDelayMs = 30_000;
    const actuator = kube({ credentials: { source: "kubeconfig", path: writeKubeconfig("config") } });
    const controller = new AbortController();
    const scaling = actuator.setReplicas(6, { ...ctx, signal: controller.signal });
    await expect.poll(() => api.requests.some((request) => request.method === "PATCH"), WAIT).toBe(true);
    controller.abort();
    await expect(scaling).rejects.toMatchObject({ code: "aborted" });
  });

  it("gives up on an API server that does not answer after requestTimeoutMs", async () => {
    api.stalled = true;
    const actuator = kube({
      credentials: { source: "kubeconfig", path: writeKubeconfig("config") },
      requestTimeoutMs: 200,
    });
    await expect(actuator.getReplicas()).rejects.toMatchObject({
      code: "unavailable",
      retryable: true,
      message: "GET deployment prod/edge failed: timed out after 200 ms",
    });
  });

  it("skips the PATCH when the scale already asks for the count", async () => {
    const actuator = kube({ credentials: { source: "kubeconfig", path: writeKubeconfig("config") } });
    await expect(actuator.setReplicas(3, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 3 });
    expect(api.requests.some((request) => request.method === "PATCH")).toBe(false);
  });

  it("scales to zero, whose Scale omits spec.replicas", async () => {
    const actuator = kube({ credentials: { source: "kubeconfig", path: writeKubeconfig("config") } });
    await expect(actuator.setReplicas(0, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 0 });
    const before = api.requests.length;
    await expect(actuator.setReplicas(0, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 0 });
    expect(api.requests.slice(before).some((request) => request.method === "PATCH")).toBe(false);
  });
});

describe("kubeconfig credentials", () => {
  /** A kubeconfig whose user runs `plugin` (a node script) as its exec credential plugin. */
  function writeExecKubeconfig(name: string, plugin: string) {
    const scriptPath = join(dir, `${name}.mjs`);
    writeFileSync(scriptPath, plugin);
    return writeKubeconfig(name, {
      user: `    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${JSON.stringify(process.execPath)}
      args: [${JSON.stringify(scriptPath)}]
      interactiveMode: Never
`,
    });
  }

  it("runs an exec credential plugin and reuses its token until it expires", async () => {
    api.identities.set("exec-token", {
      user: "eks:proxyscale",
      verbs: ["get-scale", "patch-scale", "get-workload"],
    });
    const runs = join(dir, "exec-runs.log");
    const path = writeExecKubeconfig(
      "exec",
      `import { appendFileSync } from "node:fs";
appendFileSync(${JSON.stringify(runs)}, "run\\n");
const expirationTimestamp = new Date(Date.now() + 3_600_000).toISOString();
process.stdout.write(JSON.stringify({
  apiVersion: "client.authentication.k8s.io/v1",
  kind: "ExecCredential",
  status: { token: "exec-token", expirationTimestamp },
}));
`,
    );
    const actuator = kube({ credentials: { source: "kubeconfig", path } });
    expect(await actuator.getReplicas()).toEqual({ replicas: 3, readyReplicas: 3, unhealthyReplicas: 0 });
    await expect(actuator.setReplicas(4, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 4 });
    expect(new Set(api.requests.map((request) => request.authorization))).toEqual(
      new Set(["Bearer exec-token"]),
    );
    expect(readFileSync(runs, "utf8")).toBe("run\n");
  });

  it("reports a failing exec plugin with what it printed", async () => {
    const path = writeExecKubeconfig(
      "exec-failing",
      `process.stderr.write("error: the SSO session has expired; run aws sso login");
process.exit(1);
`,
    );
    const actuator = kube({ credentials: { source: "kubeconfig", path } });
    await expect(actuator.getReplicas()).rejects.toMatchObject({
      code: "unavailable",
      message: "GET deployment prod/edge failed: error: the SSO session has expired; run aws sso login",
    });
    expect(api.requests).toHaveLength(0);
  });

  it("refuses dangling and missing contexts with the reason", () => {
    const path = writeKubeconfig("dangling");
    expect(() => loadKubeCredentials({ source: "kubeconfig", path, context: "broken" }, {})).toThrow(
      'names missing cluster "nowhere"',
    );
    expect(() => loadKubeCredentials({ source: "kubeconfig", path, context: "staging" }, {})).toThrow(
      'has no context "staging"',
    );
    expect(() => loadKubeCredentials({ source: "kubeconfig", path: join(dir, "absent") }, {})).toThrow(
      `cannot load kubeconfig ${join(dir, "absent")}`,
    );
  });
});
