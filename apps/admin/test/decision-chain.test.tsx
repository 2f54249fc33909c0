import {
  type Decision,
  decisionLimitSchema,
  describeLimit,
  explainDecision,
  type Limit,
} from "@proxyscale/core";
import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { DecisionChain } from "../src/components/DecisionChain.tsx";

/** One limit of every kind core knows; a kind added to core without a sample here fails the first test. */
const SAMPLES: Limit[] = [
  { kind: "noMetrics", liveSamples: 0, maxAgeSeconds: 60 },
  { kind: "tolerance", direction: "scale_up", tolerance: 0.1, ratio: 1.05, metric: "cpuPercent" },
  {
    kind: "cooldown",
    direction: "scale_down",
    cooldownSeconds: 300,
    remainingSeconds: 120,
    lastScaleAt: 1_000,
  },
  { kind: "stabilization", direction: "scale_down", windowSeconds: 300, from: 3, to: 5 },
  {
    kind: "ratePolicy",
    direction: "scale_up",
    selectPolicy: "Max",
    policy: { type: "Pods", value: 4, periodSeconds: 15 },
    from: 12,
    to: 9,
  },
  { kind: "minReplicas", value: 2, from: 1, to: 2 },
  { kind: "maxReplicas", value: 8, from: 9, to: 8 },
  { kind: "tierCap", value: 7, from: 8, to: 7 },
  { kind: "budget", value: 6, from: 7, to: 6 },
  {
    kind: "schedule",
    windows: [{ name: "business", endsAt: 1_800_000 }],
    timeZone: "Europe/Berlin",
    minReplicas: 6,
    maxReplicas: 10,
    from: 5,
    to: 6,
  },
  { kind: "health", unhealthyReplicas: 1, servingReplicas: 4, loadFactor: 1.25 },
  { kind: "minAdjustmentMagnitude", value: 2, from: 5, to: 7 },
  { kind: "fallback", missedIntervals: 4, failureThreshold: 3, replicas: 3, from: 7, to: 3 },
  { kind: "scaleToZero", idleSeconds: 31, gracePeriodSeconds: 30, from: 1, to: 0 },
  {
    kind: "activation",
    source: "front",
    heldRequests: 3,
    requestRate: 0,
    threshold: 0,
    from: 0,
    to: 1,
  },
  { kind: "inFlight", eventId: "event-1", toReplicas: 6, from: 3, to: 5 },
  { kind: "mode", mode: "dryRun", from: 5, to: 5 },
];

function decisionWith(limits: Limit[]): Decision {
  const base = {
    strategy: "threshold" as const,
    action: "scale_up" as const,
    currentReplicas: 5,
    recommendedReplicas: 12,
    desiredReplicas: 3,
    loadScore: 91,
    metrics: [
      {
        metric: "loadScore",
        value: 91,
        target: 80,
        ratio: 1.14,
        proposedReplicas: 12,
        withinTolerance: false,
      },
    ],
    averages: null,
    basis: null,
    limits,
    recommendation: { at: 2_000, replicas: 12 },
    evaluatedAt: 2_000,
  };
  return { ...base, explanation: explainDecision(base) };
}

describe("the decision chain", () => {
  it("has a sample of every limit kind in core's schema", () => {
    const kinds = decisionLimitSchema.options.map((option) => option.shape.kind.value);
    expect(SAMPLES.map((limit) => limit.kind).sort()).toEqual([...kinds].sort());
  });

  it.each(SAMPLES.map((limit) => [limit.kind, limit] as const))(
    "renders a %s limit with core's description between recommended and desired",
    (kind, limit) => {
      render(<DecisionChain decision={decisionWith([limit])} />);
      const steps = [...screen.getByRole("list", { name: "How the count was decided" }).children];
      expect(steps).toHaveLength(3);
      expect(steps[0]!.textContent).toMatch(/^recommended 12/);
      expect(steps[1]!.getAttribute("data-limit")).toBe(kind);
      expect(steps[1]!.textContent).toContain(describeLimit(limit));
      if ("from" in limit && limit.from !== limit.to)
        expect(steps[1]!.textContent).toContain(`(${limit.from} → ${limit.to})`);
      expect(steps[2]!.textContent).toMatch(/^desired 3/);
    },
  );

  it("keeps the pipeline order, shows the per-metric proposals and core's sentence", () => {
    const decision = decisionWith(SAMPLES);
    render(<DecisionChain decision={decision} />);
    const limits = [...document.querySelectorAll("[data-limit]")].map((step) =>
      step.getAttribute("data-limit"),
    );
    expect(limits).toEqual(SAMPLES.map((limit) => limit.kind));
    const proposal = screen.getByRole("table", { name: "Per-metric proposals" }).querySelector("tbody tr");
    expect(proposal?.textContent).toBe("loadScore91801.1412");
    expect(screen.getByText(decision.explanation)).toBeTruthy();
  });

  it("says not scaled when the action is none", () => {
    render(<DecisionChain decision={{ ...decisionWith([]), action: "none", desiredReplicas: 5 }} />);
    expect(screen.getByText(/not scaled, current 5/)).toBeTruthy();
  });
});
