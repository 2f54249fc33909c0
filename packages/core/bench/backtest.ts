/**
 * The backtest report (issue 12): every trace in ../shared/traces through the origin spec's threshold strategy,
 * target tracking with HPA's defaults (push loop and HPA-like 15 s sync), the conservative and aggressive
 * presets, predictive and the oracle; writes docs/backtest.md.
 * Run: node scripts/pnpm.mjs --filter @proxyscale/core run backtest (from the repository root).
 * The traces are read where they live, never copied into the project.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Candidate,
  type ComparisonRow,
  compare,
  DEFAULT_POLICY,
  hpaDefaultPolicy,
  type LoopModel,
  linearCapacityModel,
  parsePolicy,
  parseTrace,
  policyFromPreset,
  type ScalingPolicy,
  type Trace,
} from "../src/index.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const TRACES_DIR = resolve(REPO_ROOT, "../shared/traces");
const REPORT = join(REPO_ROOT, "docs/backtest.md");

/** The one capacity model, scaled per trace: the peak step's rate needs PEAK_REPLICAS replicas at the SLO. */
const PEAK_REPLICAS = 40;
const BOUNDS = { minReplicas: 1, maxReplicas: 80 };
const WARMUP_SECONDS = 60;
const DRAIN_SECONDS = 30;
/** ProxyScale's push loop: the SDK reporter's default sample/push interval (packages/sdk/src/reporter.ts). */
const PUSH_LOOP: LoopModel = { kind: "push", reportIntervalSeconds: 5 };
const INITIAL_REPLICAS = 1;

/**
 * The Twitter trace's collection gaps (SOURCES.md): 29 minutes a day from t = 84660 + 86400·d to 86340 + 86400·d
 * (d = 0…20), and t = 1089600–1089660 with the partial row after it (1089720). They are not real zero traffic.
 */
function twitterGaps(trace: Trace): Array<[number, number]> {
  const gaps: Array<[number, number]> = [];
  for (let d = 0; d <= 20; d++) gaps.push([84660 + 86400 * d, 86340 + 86400 * d]);
  gaps.push([1089600, 1089720]);
  const last = trace.startSeconds + (trace.requests.length - 1) * trace.stepSeconds;
  return gaps.filter(([from]) => from <= last);
}

/** Replaces each masked row by linear interpolation between the unmasked rows on either side. */
function maskGaps(trace: Trace, gaps: Array<[number, number]>): { trace: Trace; maskedRows: number } {
  const requests = [...trace.requests];
  const indexOf = (t: number) => Math.round((t - trace.startSeconds) / trace.stepSeconds);
  let maskedRows = 0;
  for (const [from, to] of gaps) {
    const first = Math.max(0, indexOf(from));
    const last = Math.min(requests.length - 1, indexOf(to));
    const before = first > 0 ? requests[first - 1]! : requests[last + 1]!;
    const after = last + 1 < requests.length ? requests[last + 1]! : before;
    const span = last - first + 2;
    for (let i = first; i <= last; i++) {
      requests[i] = Math.round(before + ((after - before) * (i - first + 1)) / span);
      maskedRows++;
    }
  }
  return { trace: { ...trace, requests }, maskedRows };
}

interface TraceSpec {
  file: string;
  label: string;
  /** One of the traces with a daily cycle, where the quality goal applies. */
  daily: boolean;
}

const KNOWN: Record<string, Omit<TraceSpec, "file">> = {
  "nasa-1995-07-per-minute.csv": { label: "NASA, July 1995", daily: true },
  "worldcup98-per-minute.csv": { label: "World Cup 98", daily: true },
  "twitter-stream-2021-08-per-minute.csv": { label: "Twitter stream, Aug 2021", daily: true },
  "azure-llm-inference-2023-conv-per-second.csv": { label: "Azure LLM conversation", daily: false },
  "azure-llm-inference-2023-code-per-second.csv": { label: "Azure LLM code", daily: false },
};

function tracesToRun(): TraceSpec[] {
  if (!existsSync(TRACES_DIR)) {
    console.error(
      `backtest: no traces at ${TRACES_DIR} (../shared/traces from the repository root). The report needs them.`,
    );
    process.exit(1);
  }
  const files = readdirSync(TRACES_DIR)
    .filter((file) => file.endsWith(".csv"))
    .sort();
  if (files.length === 0) {
    console.error(`backtest: ${TRACES_DIR} holds no .csv trace`);
    process.exit(1);
  }
  return files.map((file) => ({ file, ...(KNOWN[file] ?? { label: file, daily: false }) }));
}

/**
 * A policy for this trace: the bounds, and its request-rate target scaled like the capacity model, so that
 * DEFAULT_POLICY's targetRequestRate (1000 req/s per replica) is one replica's rate at the SLO (μ × 0.8) and the
 * presets keep their ratio to it. Without this the seed's load score (20% request share) cannot reach a threshold
 * on a trace whose replica serves 0.2 req/s. HPA's defaults leave request rate off, so they are not scaled.
 */
function forTrace(policy: ScalingPolicy, sloRps: number): ScalingPolicy {
  return parsePolicy({
    ...policy,
    ...BOUNDS,
    targetRequestRate: (policy.targetRequestRate / DEFAULT_POLICY.targetRequestRate) * sloRps,
  });
}

/**
 * Predictive: HPA's defaults with the strategy swapped, its lead the fleet's provisioning time as
 * predictive.warmupSeconds asks.
 */
const PREDICTIVE: Candidate = {
  name: "predictive",
  policy: parsePolicy({
    ...hpaDefaultPolicy(BOUNDS),
    strategy: "predictive",
    predictive: { warmupSeconds: WARMUP_SECONDS },
  }),
  loop: PUSH_LOOP,
};

/** predictive.headroomQuantile values run beside the default (no headroom) predictive row. */
const HEADROOM_QUANTILES = [0.6, 0.7, 0.8] as const;
const headroomName = (quantile: number) => `predictive, headroom p${quantile * 100}`;

function candidates(sloRps: number): Candidate[] {
  const list: Candidate[] = [
    { name: "threshold (DEFAULT_POLICY)", policy: forTrace(DEFAULT_POLICY, sloRps), loop: PUSH_LOOP },
    { name: "target tracking, HPA defaults", policy: hpaDefaultPolicy(BOUNDS), loop: PUSH_LOOP },
    {
      name: "conservative preset",
      policy: forTrace(policyFromPreset("conservative"), sloRps),
      loop: PUSH_LOOP,
    },
    { name: "aggressive preset", policy: forTrace(policyFromPreset("aggressive"), sloRps), loop: PUSH_LOOP },
  ];
  // HPA's defaults target CPU 80%; the forecast is in req/s, so its target is the rate at which the capacity
  // model's CPU reaches 80% (ρ = (80 − 5) / 95 with the model's 5% idle CPU). Without it the forecast's target
  // stays HPA-defaults' 1e12 req/s and predictive never differs from target tracking.
  const perReplicaRps = sloRps / 0.8;
  const targetRequestRate = (perReplicaRps * (80 - 5)) / 95;
  list.push({ ...PREDICTIVE, policy: parsePolicy({ ...PREDICTIVE.policy, targetRequestRate }) });
  // The headroom the default leaves off, measured, so the report shows what it buys and what it costs.
  for (const headroomQuantile of HEADROOM_QUANTILES)
    list.push({
      ...PREDICTIVE,
      name: headroomName(headroomQuantile),
      policy: parsePolicy({
        ...PREDICTIVE.policy,
        targetRequestRate,
        predictive: { ...PREDICTIVE.policy.predictive, headroomQuantile },
      }),
    });
  return list;
}

const HPA_LIKE_NAME = "target tracking, HPA defaults, HPA-like loop";
const BASELINE_NAME = "target tracking, HPA defaults";

const fixed = (value: number, digits: number) =>
  Number.isFinite(value) ? value.toFixed(digits) : String(value);
const signed = (value: number, digits: number) => (value > 0 ? "+" : "") + fixed(value, digits);

interface TraceOutcome {
  spec: TraceSpec;
  steps: number;
  stepSeconds: number;
  peakRps: number;
  capacity: string;
  maskedRows: number;
  rows: ComparisonRow[];
  seconds: number;
}

function runTrace(spec: TraceSpec): TraceOutcome {
  const started = performance.now();
  let trace = parseTrace(readFileSync(join(TRACES_DIR, spec.file), "utf8"));
  let maskedRows = 0;
  if (spec.file.startsWith("twitter-")) ({ trace, maskedRows } = maskGaps(trace, twitterGaps(trace)));
  let peakCount = 0;
  for (const count of trace.requests) if (count > peakCount) peakCount = count;
  const peakRps = peakCount / trace.stepSeconds;
  // ρ_slo is 0.8 with the model's default latency SLO: the peak needs PEAK_REPLICAS at 0.8 × perReplicaRps each.
  const perReplicaRps = peakRps / (PEAK_REPLICAS * 0.8);
  const capacity = linearCapacityModel({ perReplicaRps });
  const comparison = compare({
    trace,
    capacity,
    initialReplicas: INITIAL_REPLICAS,
    candidates: candidates(perReplicaRps * 0.8),
    warmupSeconds: WARMUP_SECONDS,
    drainSeconds: DRAIN_SECONDS,
    hpaDefaults: true,
    hpaBounds: BOUNDS,
    keepDecisions: "none",
  });
  const rows = comparison.rows.map((row) => (row.kind === "hpa" ? { ...row, name: HPA_LIKE_NAME } : row));
  return {
    spec,
    steps: trace.requests.length,
    stepSeconds: trace.stepSeconds,
    peakRps,
    capacity: comparison.capacity,
    maskedRows,
    rows: rows.map((row) => ({ ...row, simulation: null })),
    seconds: (performance.now() - started) / 1000,
  };
}

function traceSection(outcome: TraceOutcome): string {
  const { spec } = outcome;
  const lines: string[] = [];
  lines.push(`## ${spec.label} (\`${spec.file}\`)`, "");
  const days = (outcome.steps * outcome.stepSeconds) / 86400;
  lines.push(
    `${outcome.steps.toLocaleString("en")} steps of ${outcome.stepSeconds} s (${days >= 1 ? `${fixed(days, 1)} days` : `${fixed((days * 24 * 60) | 0, 0)} minutes`}); ` +
      `peak ${fixed(outcome.peakRps, 2)} req/s → ${fixed(outcome.peakRps / (PEAK_REPLICAS * 0.8), 4)} req/s per replica.` +
      (outcome.maskedRows > 0
        ? ` ${outcome.maskedRows} rows of collection gaps masked (linear interpolation).`
        : ""),
    "",
  );
  lines.push(
    "| strategy | θ_U % | θ_O % | τ_U % | τ_O % | υ % | jitter /h | actions | replica-h | SLO min | τ_U − oracle | replica-h ÷ oracle |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const row of outcome.rows) {
    const m = row.metrics;
    lines.push(
      `| ${row.name} | ${fixed(m.underProvisioningAccuracy, 2)} | ${fixed(m.overProvisioningAccuracy, 1)} | ${fixed(m.underProvisioningTimeshare, 2)} | ${fixed(m.overProvisioningTimeshare, 1)} | ${fixed(m.instability, 2)} | ${fixed(m.jitter, 2)} | ${m.scalingActions} | ${fixed(m.replicaHours, m.replicaHours < 100 ? 1 : 0)} | ${fixed(m.sloViolationMinutes, 0)} | ${signed(row.fromOracle.underProvisioningTimeshare, 2)} | ${fixed(row.fromOracle.replicaHoursRatio, 2)} |`,
    );
  }
  const idle = outcome.rows.filter((row) => row.kind !== "oracle" && row.metrics.scalingActions === 0);
  if (idle.length > 0)
    lines.push(
      "",
      `Never scaled: ${idle.map((row) => row.name).join(", ")} (a threshold on the seed's load score that the capacity model's readings never pass).`,
    );
  lines.push("");
  return lines.join("\n");
}

/** The issue's quality goal on one trace: τ_U cut ≥ 50% vs HPA-defaults target tracking at ≤ 10% more replica-hours. */
function goalRow(outcome: TraceOutcome, rowName: string): string {
  const { baseline, mine, cut, more } = against(outcome, rowName);
  const met = cut >= 50 && more <= 10;
  const oracle = outcome.rows.find((row) => row.kind === "oracle")!.metrics;
  const fromOracle = `${signed(mine.underProvisioningTimeshare - oracle.underProvisioningTimeshare, 2)} pt, ${fixed(mine.replicaHours / oracle.replicaHours, 2)}×`;
  return `| ${outcome.spec.label} | ${rowName} | ${fixed(baseline.underProvisioningTimeshare, 2)} | ${fixed(baseline.replicaHours, 0)} | ${fixed(mine.underProvisioningTimeshare, 2)} | ${signed(-cut, 0)}% | ${signed(more, 1)}% | ${fromOracle} | ${met ? "met" : "not met"} |`;
}

/**
 * A row against the baseline: the τ_U cut (%; NaN when the baseline is never under-provisioned) and the extra
 * replica-hours (%).
 */
function against(outcome: TraceOutcome, rowName: string) {
  const baseline = outcome.rows.find((row) => row.name === BASELINE_NAME)!.metrics;
  const mine = outcome.rows.find((row) => row.name === rowName)!.metrics;
  const cut =
    baseline.underProvisioningTimeshare > 0
      ? (1 - mine.underProvisioningTimeshare / baseline.underProvisioningTimeshare) * 100
      : Number.NaN;
  return { baseline, mine, cut, more: (mine.replicaHours / baseline.replicaHours - 1) * 100 };
}

/**
 * Where the goal is not met: the measured trade-off per trace (numbers from this run) and what the investigation
 * of issue 12 found (figures measured separately; see the text).
 */
function shortfallSection(daily: TraceOutcome[]): string[] {
  const rows = ["predictive", ...HEADROOM_QUANTILES.map(headroomName)];
  const meets = (o: TraceOutcome) => {
    const { cut, more } = against(o, "predictive");
    return cut >= 50 && more <= 10;
  };
  const missed = daily.filter((o) => !meets(o));
  if (missed.length === 0) return [];
  const labels = (list: TraceOutcome[]) =>
    new Intl.ListFormat("en", { type: "conjunction" }).format(list.map((o) => o.spec.label)) || "none";
  const trade = daily.map((o) => {
    const parts = rows.map((name) => {
      const { cut, more } = against(o, name);
      return `${name} ${signed(-cut, 0)}% τ_U at ${signed(more, 1)}% replica-h`;
    });
    return `- **${o.spec.label}:** ${parts.join("; ")}.`;
  });
  return [
    "### Where it falls short",
    "",
    `The default predictive row meets the goal on ${labels(daily.filter(meets))} and misses it on ${labels(missed)}. Headroom buys τ_U with replica-hours; measured in this run:`,
    "",
    ...trade,
    "",
    "What the investigation found (issue 12). Figures not in the tables above were measured while investigating, with the same set-up (scratch copies of core, not kept), and are not rerun by this script:",
    "",
    "- **NASA: minute-to-minute noise, which no forecast of a mean can see.** NASA averages 0.7 req/s, about 44 requests a minute: Poisson noise alone is √44 ≈ 15% of a minute's count, and one replica at the SLO serves 0.17 req/s, about 24% of the mean rate. Target tracking with HPA's defaults is under-provisioned in 14% of the minutes while over-provisioned in 68% of them: its misses are single minutes above the ones before, which the minute before does not show. The forecast adds the daily rise over the lead and nothing else, so τ_U falls further only with standing headroom, paid in every minute; every headroom measured costs more than 10% before it halves τ_U (the rows above). Quantiles of the anchored forecast's own errors over the lead, instead of the model's per-minute errors, were no cheaper (p60 −36% at +9.3%, p70 −57% at +15.5%, in a scratch run). Square-root- or level-normalised quantiles did not help, and a Kalman-style blend of the reading and the curve gave −19% at +4.3%. A longer scale-down stabilization window instead of headroom (its max over recent recommendations is headroom that follows the noise) is on the same frontier: 450 s −47% at +9.6%, 600 s −58% at +12.9%; a shorter one loses most of what the default window catches (120 s: +77% τ_U at −3.4%).",
    "- **What met it on Twitter and World Cup 98: anchoring.** The bare bucket forecast (what predictive acted on before, 300 s lead) gave NASA −25% τ_U at +5.1%, Twitter −56% at +20.0%, World Cup 98 −49% at +10.3%. Five minutes ahead its error was larger than plain persistence on Twitter (median |e| 7.6% vs 3.3% of the mean) and World Cup 98 (MAE 24% vs 7%): the curve's level is a typical day's, and today runs above or below it (match days, drift). Acting on the current rate × the curve's change over the lead keeps today's level; with the lead at the fleet's real warm-up (60 s, as `predictive.warmupSeconds` asks) that is the default row above. With a 300 s lead (and the count applied after stabilization, below) the anchored forecast gave Twitter −64% at +12.4%, World Cup 98 −80% at +4.2%: a lead longer than the warm-up pays for replicas that are ready early.",
    "- **Quantile, not k·σ.** Headroom of k standard deviations of the model's errors was tried first: 0.5σ gave NASA −44% τ_U at +8.3%, Twitter −73% at +39.8%, World Cup 98 −69% at +19.9%; 1σ −63% / −75% / −76% at +14.6% / +61.7% / +30.7%. The errors are skewed (rare large spikes; on Twitter the forecast is above the bucket's actual rate in about 61% of buckets), so σ is large and paid for in every bucket.",
    "- **Not the cause: stabilization and rate policies.** Applying the forecast's count after the scale-down stabilization (so the window holds only the reactive half) took Twitter's over-spend from +20.0% to +17.6% with the bare forecast: about 2.4 points, not most of it. HPA's default scale-up rate policies never bound. Huber-robust Holt-Winters updates did not help (Twitter −51% at +16.0%).",
    "- **The reactive half.** Part of predictive's gain and spend is not the forecast: its reactive half tracks the request-rate target the forecast needs (beside CPU 80%), and target tracking with that target and no forecast already gives NASA −13% τ_U at +3.4%, Twitter −20% at +6.0%, World Cup 98 −11% at +0.4%.",
    "",
  ];
}

function main(): void {
  const specs = tracesToRun();
  const outcomes: TraceOutcome[] = [];
  for (const spec of specs) {
    process.stdout.write(`backtest: ${spec.file} … `);
    const outcome = runTrace(spec);
    console.log(`${outcome.steps} steps, ${fixed(outcome.seconds, 1)} s`);
    outcomes.push(outcome);
  }
  const capacityLine = linearCapacityModel({ perReplicaRps: 1 })
    .description.replace("1 req/s per replica", "μ req/s per replica")
    .replace("memory 30% + 20%/(req/s)", "memory 30% + (20/μ)%/(req/s), i.e. +20 points at saturation");
  const doc: string[] = [
    "# Backtest report",
    "",
    "Generated by `packages/core/bench/backtest.ts`; do not edit by hand. Reproduce from the repository root with:",
    "",
    "```sh",
    "node scripts/pnpm.mjs --filter @proxyscale/core run backtest",
    "```",
    "",
    `It reads every \`.csv\` in \`../shared/traces/\` (relative to the repository root; not copied into the project) and replays each through core's simulator (\`compare\`, docs/simulator.md), the same \`decide\` the control loop runs. Whole run: ${fixed(
      outcomes.reduce((sum, o) => sum + o.seconds, 0),
      0,
    )} s on a shared 2-core machine.`,
    "",
    "## Set-up, the same for every trace",
    "",
    `- **Capacity model:** \`${capacityLine}\`, with μ scaled per trace so that the trace's peak step needs ${PEAK_REPLICAS} replicas at the SLO (μ = peak req/s ÷ (${PEAK_REPLICAS} × 0.8)). Demand in replicas is the model's \`requiredReplicas\`.`,
    "- **Request-rate targets** scale with the model: DEFAULT_POLICY's `targetRequestRate` (1000 req/s per replica) becomes one replica's rate at the SLO (0.8 μ), the presets' keep their ratio to it (800 → 0.64 μ, 1200 → 0.96 μ); HPA's defaults leave request rate off.",
    `- **Bounds:** every policy runs with minReplicas ${BOUNDS.minReplicas}, maxReplicas ${BOUNDS.maxReplicas}; the oracle is unbounded. Start: ${INITIAL_REPLICAS} warm replica.`,
    `- **Fleet:** a new replica warms up ${WARMUP_SECONDS} s before it serves; a removed one drains (is paid for) ${DRAIN_SECONDS} s.`,
    `- **Loops:** ProxyScale's push loop with a sample every 5 s (the SDK reporter's default), decided on arrival, no metric delay; the HPA-like row is \`HPA_LIKE_LOOP\` (15 s sync, 15 s scrapes read 15 s late). Each trace is stepped at its own step (60 s, or 1 s for the Azure traces).`,
    "- **Strategies:**",
    "  - *threshold (DEFAULT_POLICY)*: the origin spec's threshold strategy with its defaults (scale up at load score 80, down at 30, cooldowns 60 s / 300 s);",
    "  - *target tracking, HPA defaults*: `hpaDefaultPolicy` (cpu 80%, HPA's default behavior and tolerance), on the push loop — the baseline of the quality goal;",
    "  - *… HPA-like loop*: the same policy on `HPA_LIKE_LOOP`, so that the push loop's advantage is measured, not claimed;",
    "  - *conservative / aggressive preset*: `policyFromPreset` (packages/core/src/presets.ts), on the preset's own strategy (the default, threshold) and targets;",
    `  - *predictive*: HPA's defaults with \`strategy: "predictive"\` and \`predictive.warmupSeconds\` ${WARMUP_SECONDS} (the fleet's warm-up; no headroom), on the push loop; *predictive, headroom pN* is the same with \`predictive.headroomQuantile: N/100\`;`,
    "  - *oracle*: knows the future demand and runs exactly the replicas each step needs, started one warm-up ahead (never under-provisioned).",
    "- **Twitter:** the collection gaps listed in SOURCES.md (29 minutes a day, and t = 1089600–1089720) are masked by linear interpolation between the rows on either side, so no strategy is scored on fake zero traffic.",
    "",
    "Columns (formulas in docs/simulator.md): θ_U / θ_O under-/over-provisioning accuracy, τ_U / τ_O under-/over-provisioning timeshare, υ instability, jitter (supply adaptations minus demand changes, per hour), scaling actions, replica-hours (billed: serving + warming + draining), minutes in SLO violation, and the distance from the oracle (τ_U difference in points; replica-hours as a ratio).",
    "",
    "## Quality goal: predictive vs target tracking with HPA's defaults",
    "",
    "Goal (issue 12): on the traces with a daily cycle, predictive cuts τ_U by at least 50% against target tracking with HPA's defaults (same push loop) at no more than 10% more replica-hours.",
    "",
    `The default predictive row is the goal's; the headroom rows (\`predictive.headroomQuantile\` ${HEADROOM_QUANTILES.join(", ")}, docs/engine.md) show what more headroom buys and costs. Distance from the oracle: τ_U difference in points, replica-hours as a ratio.`,
    "",
    "| trace | row | baseline τ_U % | baseline replica-h | predictive τ_U % | τ_U change | replica-h change | from oracle | goal |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...outcomes
      .filter((o) => o.spec.daily)
      .flatMap((o) =>
        ["predictive", ...HEADROOM_QUANTILES.map(headroomName)].map((name) => goalRow(o, name)),
      ),
    "",
    ...shortfallSection(outcomes.filter((o) => o.spec.daily)),
    ...outcomes.map(traceSection),
  ];
  writeFileSync(REPORT, `${doc.join("\n").trimEnd()}\n`);
  console.log(`backtest: wrote ${relative(process.cwd(), REPORT)}`);
}

main();
