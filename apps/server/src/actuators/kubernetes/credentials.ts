import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import type { KubernetesCredentials } from "@proxyscale/core";
import { ActuatorError, errorMessage } from "../types.ts";

/** A loaded client-node KubeConfig, plus what the actuator needs to explain itself. */
export interface KubeCredentials {
  kubeConfig: KubeConfig;
  /** The credentials' own namespace (service account or kubeconfig context), when they name one. */
  namespace?: string;
  /** Where the credentials came from, for error messages. */
  source: string;
}

/**
 * Loads the credentials a kubernetes actuator config names into a client-node KubeConfig, which then does
 * TLS, tokens (re-read from the token file every minute, as client-go does), client certificates, exec plugins
 * and auth providers. Fails at once, naming the file or field, when they cannot work.
 */
export function loadKubeCredentials(
  credentials: KubernetesCredentials,
  env: Record<string, string | undefined>,
): KubeCredentials {
  return credentials.source === "inCluster"
    ? loadInCluster(credentials, env)
    : loadKubeconfig(credentials.path, credentials.context);
}

function misconfigured(message: string, cause?: unknown): ActuatorError {
  return new ActuatorError("invalid_request", message, cause === undefined ? {} : { cause });
}

function readRequired(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw misconfigured(`cannot read the ${what} at ${path}: ${errorMessage(error)}`, error);
  }
}

/**
 * The pod's service account. client-node's `loadFromCluster` only reads the fixed
 * /var/run/secrets/kubernetes.io/serviceaccount (under a prefix) and `process.env`, so this builds the same
 * cluster and `tokenFile` user from the configured `serviceAccountDir`, `apiServerUrl` and environment.
 */
function loadInCluster(
  credentials: Extract<KubernetesCredentials, { source: "inCluster" }>,
  env: Record<string, string | undefined>,
): KubeCredentials {
  const dir = credentials.serviceAccountDir;
  let server = credentials.apiServerUrl?.replace(/\/$/, "");
  if (!server) {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    if (!host || !port) {
      throw misconfigured(
        "in-cluster credentials need KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (not running in a pod?); " +
          'use credentials: { source: "kubeconfig" } outside a cluster',
      );
    }
    server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  }
  const tokenFile = join(dir, "token");
  const caFile = join(dir, "ca.crt");
  // client-node reads both only when it sends a request: a missing file should stop the start instead.
  readRequired(tokenFile, "service account token");
  readRequired(caFile, "cluster CA");
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromClusterAndUser(
    { name: "inCluster", server, caFile, skipTLSVerify: false },
    { name: "inClusterUser", authProvider: { name: "tokenFile", config: { tokenFile } } },
  );
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, "namespace"), "utf8").trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return { kubeConfig, ...(namespace ? { namespace } : {}), source: `service account ${dir}` };
}

/** A kubeconfig file: `path`, else client-node's default discovery ($KUBECONFIG, merged, then ~/.kube/config). */
function loadKubeconfig(path: string | undefined, contextName: string | undefined): KubeCredentials {
  const kubeConfig = new KubeConfig();
  const fromEnv = process.env.KUBECONFIG;
  const where = path ?? (fromEnv ? fromEnv : join(homedir(), ".kube", "config"));
  // Without a file, loadFromDefault quietly falls back to in-cluster or http://localhost:8080.
  if (!path && !fromEnv && !existsSync(where)) {
    throw misconfigured(
      `no kubeconfig: set credentials.path or KUBECONFIG, or create ${where} (or use credentials: { source: "inCluster" })`,
    );
  }
  try {
    if (path) kubeConfig.loadFromFile(path);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    throw misconfigured(`cannot load kubeconfig ${where}: ${errorMessage(error)}`, error);
  }
  if (contextName !== undefined) {
    if (!kubeConfig.getContextObject(contextName))
      throw misconfigured(`kubeconfig ${where} has no context "${contextName}"`);
    kubeConfig.setCurrentContext(contextName);
  }
  const current = kubeConfig.getCurrentContext();
  if (!current) throw misconfigured(`kubeconfig ${where} has no current-context; set credentials.context`);
  const context = kubeConfig.getContextObject(current);
  if (!context) throw misconfigured(`kubeconfig ${where} has no context "${current}"`);
  const source = `kubeconfig ${where} (context "${current}")`;
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw misconfigured(`${source} names missing cluster "${context.cluster}"`);
  if (!URL.canParse(cluster.server))
    throw misconfigured(`${source}: cluster "${cluster.name}" has an invalid server URL`);
  if (context.user && !kubeConfig.getCurrentUser())
    throw misconfigured(`${source} names missing user "${context.user}"`);
  return { kubeConfig, ...(context.namespace ? { namespace: context.namespace } : {}), source };
}
