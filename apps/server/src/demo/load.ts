/**
 * `npm run demo:load`: real HTTP load against the running demo proxy `demo-edge` (ramp up, hold, ramp down, then
 * quiet), printing every 2 s the request rate, the replicas ProxyScale runs and its latest decision.
 *
 * Reads `<data dir>/demo.json` (written by the server at start) and signs a short admin token with the server's
 * secret (`$PROXYSCALE_JWT_SECRET`, else `<data dir>/jwt-secret`), or uses `$PROXYSCALE_TOKEN`.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { signToken } from "@proxyscale/api";
import { DEFAULT_DATA_DIR, JWT_SECRET_FILE_NAME } from "@proxyscale/core";
import { DEMO_FILE_NAME, type DemoInfo } from "./register.ts";
import { TrafficGenerator } from "./traffic.ts";

const { values: args } = parseArgs({
  options: {
    rps: { type: "string", default: "150" },
    ramp: { type: "string", default: "20" },
    hold: { type: "string", default: "40" },
    quiet: { type: "string", default: "45" },
    "data-dir": { type: "string" },
    help: { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  process.stderr.write(`demo:load: ${message}\n`);
  process.exit(1);
}

if (args.help) {
  process.stdout.write(
    "usage: npm run demo:load -- [--rps 150] [--ramp 20] [--hold 40] [--quiet 45] [--data-dir ./.proxyscale]\n" +
      "  ramps the demo proxy's load from 0 to --rps over --ramp s, holds --hold s, ramps down over --ramp s,\n" +
      "  then watches --quiet s without load while ProxyScale scales back in.\n",
  );
  process.exit(0);
}

function positive(name: string, value: string | undefined): number {
  const number = Number(value);
  if (!(Number.isFinite(number) && number >= 0)) fail(`--${name} must be a number ≥ 0, got ${value}`);
  return number;
}

const peakRps = positive("rps", args.rps);
const rampSeconds = positive("ramp", args.ramp);
const holdSeconds = positive("hold", args.hold);
const quietSeconds = positive("quiet", args.quiet);
const dataDir = resolve(args["data-dir"] ?? process.env.PROXYSCALE_DATA_DIR ?? DEFAULT_DATA_DIR);

let demo: DemoInfo;
try {
  demo = JSON.parse(readFileSync(join(dataDir, DEMO_FILE_NAME), "utf8")) as DemoInfo;
} catch (error) {
  fail(
    `cannot read ${join(dataDir, DEMO_FILE_NAME)} (${(error as Error).message}): start the server first (npm start), ` +
      "with the demo enabled and the same PROXYSCALE_DATA_DIR",
  );
}

async function adminToken(): Promise<string> {
  if (process.env.PROXYSCALE_TOKEN) return process.env.PROXYSCALE_TOKEN;
  let secret = process.env.PROXYSCALE_JWT_SECRET;
  if (!secret) {
    try {
      secret = readFileSync(join(dataDir, JWT_SECRET_FILE_NAME), "utf8").trim();
    } catch {
      fail(`no token: set PROXYSCALE_TOKEN, or PROXYSCALE_JWT_SECRET, or keep the secret in ${dataDir}`);
    }
  }
  return signToken({ sub: "admin", role: "admin", tier: "enterprise", secret, expiresIn: "1h" });
}

const token = await adminToken();

async function api<T>(path: string): Promise<T | null> {
  try {
    const response = await fetch(`${demo.serverUrl}/api${path}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) return null;
    return (await response.json()) as T;
  } catch {
    return null;
  }
}

interface Phase {
  name: string;
  seconds: number;
  rate(elapsedInPhase: number): number;
}

const phases: Phase[] = [
  { name: "ramp up", seconds: rampSeconds, rate: (t) => (peakRps * t) / Math.max(rampSeconds, 1e-9) },
  { name: "hold", seconds: holdSeconds, rate: () => peakRps },
  { name: "ramp down", seconds: rampSeconds, rate: (t) => peakRps * (1 - t / Math.max(rampSeconds, 1e-9)) },
  { name: "quiet", seconds: quietSeconds, rate: () => 0 },
];
const totalSeconds = phases.reduce((sum, phase) => sum + phase.seconds, 0);

function phaseAt(elapsed: number): { phase: Phase; rate: number } {
  let start = 0;
  for (const phase of phases) {
    if (elapsed < start + phase.seconds) return { phase, rate: phase.rate(elapsed - start) };
    start += phase.seconds;
  }
  const last = phases[phases.length - 1]!;
  return { phase: last, rate: 0 };
}

const traffic = new TrafficGenerator({ url: demo.frontUrl, maxInFlight: 128 }).start();
process.stdout.write(
  `Load on ${demo.name} at ${demo.frontUrl}: 0 → ${peakRps} req/s over ${rampSeconds}s, hold ${holdSeconds}s, ` +
    `down over ${rampSeconds}s, then ${quietSeconds}s quiet. ProxyScale: ${demo.serverUrl}\n\n`,
);

const startedAt = Date.now();
let maxReplicas = 0;
let lastPrint = startedAt;
let stopping = false;
process.on("SIGINT", () => {
  stopping = true;
});

while (!stopping) {
  const elapsed = (Date.now() - startedAt) / 1000;
  if (elapsed >= totalSeconds) break;
  const { phase, rate } = phaseAt(elapsed);
  traffic.setRate(rate);
  await new Promise((resolveTimer) => setTimeout(resolveTimer, 250));
  if (Date.now() - lastPrint < 2_000) continue;
  const seconds = (Date.now() - lastPrint) / 1000;
  lastPrint = Date.now();
  const window = traffic.takeWindow();
  const [proxy, decisions] = await Promise.all([
    api<{ currentReplicas: number; desiredReplicas: number; health: string }>(`/proxies/${demo.proxyId}`),
    api<{ items: Array<{ decision: { explanation: string } }> }>(
      `/proxy/scaling/decisions/${demo.proxyId}?limit=1`,
    ),
  ]);
  if (proxy) maxReplicas = Math.max(maxReplicas, proxy.currentReplicas);
  const answered = window.ok + window.failed;
  const line = [
    `${String(Math.round(elapsed)).padStart(4)}s`,
    phase.name.padEnd(9),
    `target ${String(Math.round(rate)).padStart(4)} rps`,
    `sent ${String(Math.round(window.sent / seconds)).padStart(4)} rps`,
    `failed ${window.failed}`,
    `avg ${answered > 0 ? (window.latencyMsSum / answered).toFixed(1) : "-"} ms`,
    `replicas ${proxy ? `${proxy.currentReplicas} (desired ${proxy.desiredReplicas}, ${proxy.health})` : "?"}`,
  ].join(" | ");
  const explanation = decisions?.items[0]?.decision.explanation;
  process.stdout.write(`${line}\n${explanation ? `       last decision: ${explanation}\n` : ""}`);
}

await traffic.stop();
const totals = traffic.snapshot();
const events = await api<{ items: Array<{ eventType: string; status: string; createdAt: string }> }>(
  `/proxy/scaling/events/${demo.proxyId}?limit=50`,
);
const during = (events?.items ?? []).filter((event) => Date.parse(event.createdAt) >= startedAt);
const finalProxy = await api<{ currentReplicas: number }>(`/proxies/${demo.proxyId}`);
process.stdout.write(
  `\n${totals.sent} requests, ${totals.ok} ok, ${totals.failed} failed` +
    `${totals.failed > 0 ? ` (${JSON.stringify(totals.failures)})` : ""}; ` +
    `${totals.instances.size} replicas answered; most replicas seen ${maxReplicas}; now ${finalProxy?.currentReplicas ?? "?"}; ` +
    `scale events: ${during.filter((e) => e.eventType === "scale_up").length} up, ` +
    `${during.filter((e) => e.eventType === "scale_down").length} down\n`,
);
process.exit(0);
