import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type { KubernetesCredentials } from "@proxyscale/core";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ActuatorError, errorMessage } from "../types.ts";

/** Everything needed to call the API server. The token is read per request: in-cluster tokens rotate. */
export interface KubeConnection {
  server: URL;
  token?: () => string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify: boolean;
  /** The credentials' own namespace (service account or kubeconfig context), when they name one. */
  namespace?: string;
  /** Where the credentials came from, for error messages. */
  source: string;
}

export function loadKubeConnection(
  credentials: KubernetesCredentials,
  env: Record<string, string | undefined>,
): KubeConnection {
  return credentials.source === "inCluster"
    ? loadInCluster(credentials, env)
    : loadKubeconfig(credentials.path ?? defaultKubeconfigPath(env), credentials.context);
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

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

function loadInCluster(
  credentials: Extract<KubernetesCredentials, { source: "inCluster" }>,
  env: Record<string, string | undefined>,
): KubeConnection {
  const dir = credentials.serviceAccountDir;
  let server = credentials.apiServerUrl;
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
  const tokenPath = join(dir, "token");
  readRequired(tokenPath, "service account token");
  const namespace = readOptional(join(dir, "namespace"));
  return {
    server: new URL(server),
    token: () => readRequired(tokenPath, "service account token").toString("utf8").trim(),
    ca: readRequired(join(dir, "ca.crt"), "cluster CA"),
    insecureSkipTlsVerify: false,
    ...(namespace ? { namespace } : {}),
    source: `service account ${dir}`,
  };
}

function defaultKubeconfigPath(env: Record<string, string | undefined>): string {
  const fromEnv = env.KUBECONFIG?.split(":").find((path) => path.length > 0);
  if (fromEnv) return fromEnv;
  if (!env.HOME) throw misconfigured("no kubeconfig path: set credentials.path, KUBECONFIG or HOME");
  return join(env.HOME, ".kube", "config");
}

const clusterSchema = z.object({
  server: z.string(),
  "certificate-authority": z.string().optional(),
  "certificate-authority-data": z.string().optional(),
  "insecure-skip-tls-verify": z.boolean().optional(),
});
const userSchema = z
  .object({
    token: z.string().optional(),
    tokenFile: z.string().optional(),
    "client-certificate": z.string().optional(),
    "client-certificate-data": z.string().optional(),
    "client-key": z.string().optional(),
    "client-key-data": z.string().optional(),
    exec: z.unknown().optional(),
    "auth-provider": z.unknown().optional(),
  })
  .nullish()
  .transform((user) => user ?? {});
const contextSchema = z.object({
  cluster: z.string(),
  user: z.string().optional(),
  namespace: z.string().optional(),
});

const kubeconfigSchema = z.object({
  "current-context": z.string().optional(),
  clusters: z.array(z.object({ name: z.string(), cluster: clusterSchema })).default([]),
  users: z.array(z.object({ name: z.string(), user: userSchema })).default([]),
  contexts: z.array(z.object({ name: z.string(), context: contextSchema })).default([]),
});

/** Reads a kubeconfig: server, CA, bearer token or client certificate, insecure-skip-tls-verify. */
export function loadKubeconfig(path: string, contextName: string | undefined): KubeConnection {
  const base = dirname(path);
  const resolve = (file: string) => (isAbsolute(file) ? file : join(base, file));
  let raw: unknown;
  try {
    raw = parseYaml(readRequired(path, "kubeconfig").toString("utf8"));
  } catch (error) {
    if (error instanceof ActuatorError) throw error;
    throw misconfigured(`kubeconfig ${path} is not valid YAML: ${errorMessage(error)}`, error);
  }
  const parsed = kubeconfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw misconfigured(`kubeconfig ${path}: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  const config = parsed.data;
  const wanted = contextName ?? config["current-context"];
  if (!wanted) throw misconfigured(`kubeconfig ${path} has no current-context; set credentials.context`);
  const context = config.contexts.find((entry) => entry.name === wanted)?.context;
  if (!context) throw misconfigured(`kubeconfig ${path} has no context "${wanted}"`);
  const cluster = config.clusters.find((entry) => entry.name === context.cluster)?.cluster;
  if (!cluster)
    throw misconfigured(`kubeconfig ${path}: context "${wanted}" names missing cluster "${context.cluster}"`);
  const user = context.user ? config.users.find((entry) => entry.name === context.user)?.user : {};
  if (!user)
    throw misconfigured(`kubeconfig ${path}: context "${wanted}" names missing user "${context.user}"`);
  if (user.exec !== undefined || user["auth-provider"] !== undefined) {
    throw misconfigured(
      `kubeconfig ${path}: user "${context.user}" authenticates with exec/auth-provider, which ProxyScale does not run; ` +
        "give it a service account token (token or tokenFile) or a client certificate",
    );
  }
  const fileOrData = (file: string | undefined, data: string | undefined, what: string) =>
    data !== undefined
      ? Buffer.from(data, "base64")
      : file !== undefined
        ? readRequired(resolve(file), what)
        : undefined;

  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw misconfigured(`kubeconfig ${path}: cluster "${context.cluster}" has an invalid server URL`);
  }
  const ca = fileOrData(
    cluster["certificate-authority"],
    cluster["certificate-authority-data"],
    "cluster CA",
  );
  const cert = fileOrData(user["client-certificate"], user["client-certificate-data"], "client certificate");
  const key = fileOrData(user["client-key"], user["client-key-data"], "client key");
  const { token, tokenFile } = user;
  const readToken =
    token !== undefined
      ? () => token
      : tokenFile !== undefined
        ? () => readRequired(resolve(tokenFile), "token file").toString("utf8").trim()
        : undefined;
  return {
    server,
    ...(readToken ? { token: readToken } : {}),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
    ...(context.namespace ? { namespace: context.namespace } : {}),
    source: `kubeconfig ${path} (context "${wanted}")`,
  };
}
