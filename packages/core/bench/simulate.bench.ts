/**
 * The simulator's speed (issue 12): a 30-day trace at 60 s steps (43,200 steps) through target tracking,
 * push-driven (a sample per step, each one decided), 60 s warm-up. Goal: ≤ 150 ms. The same trace through
 * predictive (Holt-Winters refitted every 15 simulated minutes on up to a week of the trace's past): goal ≤ 1 s.
 * Baseline, measured in the same run: a plain loop over the same steps that builds each step's row without the
 * decision chain (the rate, the capacity model's readings and the replicas it needs, one object per step), so
 * the ratio compares across machines. Median of 9 rounds, interleaved. Also target tracking under a weekday
 * capacity window and a monthly budget (no goal of its own; it shows what the calendar arithmetic costs), and
 * target tracking with every step's decision then read (a kept decision is made again on first read; no goal).
 * Run: pnpm --filter @proxyscale/core bench (or: cd packages/core && npx tsx bench/simulate.bench.ts)
 */
import { cpus } from "node:os";
import { linearCapacityModel, parsePolicy, simulate } from "../src/index.ts";

const STEPS = 30 * 24 * 60;
const STEP_SECONDS = 60;
const ROUNDS = 9;

/** A daily cycle (peak 600 req/s, trough 60) with deterministic noise: counts per 60 s step. */
function syntheticTrace(): number[] {
  let seed = 12345;
  const noise = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  return Array.from({ length: STEPS }, (_, i) => {
    const day = (i % 1440) / 1440;
    const rate = 330 - 270 * Math.cos(2 * Math.PI * day) + 40 * (noise() - 0.5);
    return Math.round(Math.max(0, rate) * STEP_SECONDS);
  });
}

const trace = syntheticTrace();
const capacity = linearCapacityModel({ perReplicaRps: 50 });
const policy = parsePolicy({
  strategy: "targetTracking",
  targetCpuPercent: 60,
  targetMemoryPercent: 100,
  targetRequestRate: 1e12,
  minReplicas: 1,
  maxReplicas: 40,
});

/** Predictive over the same targets: the forecast's req/s target is the rate at which CPU meets 60%. */
const predictivePolicy = parsePolicy({
  ...policy,
  strategy: "predictive",
  targetRequestRate: (50 * (60 - 5)) / 95,
});

/** Target tracking held to a weekday capacity window (Europe/Berlin) and a monthly budget: croner's calendar. */
const scheduledPolicy = parsePolicy({
  ...policy,
  timeZone: "Europe/Berlin",
  schedules: [{ name: "business", cron: "0 9 * * 1-5", durationMinutes: 540, minReplicas: 6 }],
  costPerReplicaHour: 0.1,
  monthlyBudget: 800,
});

let sink = 0;

function baseline(): number {
  const started = performance.now();
  const rows = new Array(trace.length);
  for (let i = 0; i < trace.length; i++) {
    const demandRps = trace[i]! / STEP_SECONDS;
    const demandReplicas = capacity.requiredReplicas(demandRps);
    rows[i] = {
      demandRps,
      demandReplicas,
      metrics: capacity.reading(demandRps / Math.max(1, demandReplicas)),
    };
  }
  sink += rows.length;
  return performance.now() - started;
}

function simulation(
  keepDecisions: "every" | "none",
  simulated = policy,
  readDecisions = false,
): { ms: number; decisions: number; actions: number } {
  const started = performance.now();
  const result = simulate({
    policy: simulated,
    trace,
    stepSeconds: STEP_SECONDS,
    capacity,
    initialReplicas: 4,
    warmupSeconds: 60,
    loop: { kind: "push" },
    keepDecisions,
  });
  if (readDecisions) for (const step of result.steps) sink += step.decision?.desiredReplicas ?? 0;
  const ms = performance.now() - started;
  sink += result.steps.length;
  return { ms, decisions: result.decisions, actions: result.scalingActions };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

// Warm-up round (JIT), not counted.
baseline();
simulation("every");
simulation("none");
simulation("none", predictivePolicy);
simulation("none", scheduledPolicy);
simulation("every", policy, true);
const simMs: number[] = [];
const leanMs: number[] = [];
const baseMs: number[] = [];
const ratios: number[] = [];
const leanRatios: number[] = [];
const predictiveMs: number[] = [];
const predictiveRatios: number[] = [];
const scheduledMs: number[] = [];
const scheduledRatios: number[] = [];
const readMs: number[] = [];
const readRatios: number[] = [];
let last = { decisions: 0, actions: 0 };
for (let round = 0; round < ROUNDS; round++) {
  const base = baseline();
  const sim = simulation("every");
  const lean = simulation("none");
  const predictive = simulation("none", predictivePolicy);
  predictiveMs.push(predictive.ms);
  predictiveRatios.push(predictive.ms / base);
  const scheduled = simulation("none", scheduledPolicy);
  scheduledMs.push(scheduled.ms);
  scheduledRatios.push(scheduled.ms / base);
  const read = simulation("every", policy, true);
  readMs.push(read.ms);
  readRatios.push(read.ms / base);
  baseMs.push(base);
  simMs.push(sim.ms);
  leanMs.push(lean.ms);
  ratios.push(sim.ms / base);
  leanRatios.push(lean.ms / base);
  last = sim;
}
console.log(`simulator bench — Node ${process.version}, ${cpus()[0]?.model ?? "cpu"} × ${cpus().length}`);
console.log(
  `${STEPS} steps of ${STEP_SECONDS} s, target tracking, push loop: ${last.decisions} decisions, ${last.actions} scaling actions`,
);
console.log(`| workload | ms (median of ${ROUNDS}) | ratio to baseline (median) |`);
console.log("| --- | ---: | ---: |");
console.log(
  `| baseline: plain loop over the steps (rows, no decisions) | ${median(baseMs).toFixed(2)} | 1 |`,
);
console.log(
  `| simulate, every step's decision kept | ${median(simMs).toFixed(1)} | ${median(ratios).toFixed(0)} |`,
);
console.log(
  `| simulate, keepDecisions: "none" | ${median(leanMs).toFixed(1)} | ${median(leanRatios).toFixed(0)} |`,
);
console.log(
  `| simulate predictive (refits included), keepDecisions: "none" | ${median(predictiveMs).toFixed(1)} | ${median(predictiveRatios).toFixed(0)} |`,
);
console.log(
  `| simulate target tracking with a schedule and a budget, keepDecisions: "none" | ${median(scheduledMs).toFixed(1)} | ${median(scheduledRatios).toFixed(0)} |`,
);
console.log(
  `| simulate, every step's decision kept, then every one read (made again) | ${median(readMs).toFixed(1)} | ${median(readRatios).toFixed(0)} |`,
);
console.log(`predictive goal ≤ 1 s: ${median(predictiveMs) <= 1000 ? "met" : "NOT met"} on this run`);
console.log(
  `goal ≤ 150 ms: ${median(simMs) <= 150 ? "met" : "NOT met"} (decisions kept), ${median(leanMs) <= 150 ? "met" : "NOT met"} (none kept) on this run`,
);
if (sink === 0) console.log("");
