import type { Decision, DemandForecast, Limit, ScalingPolicy } from "@proxyscale/core";
import type { ScalingEventStatus } from "@proxyscale/db";
import { describe, expectTypeOf, it } from "vitest";
import type {
  EvaluationOutput,
  ForecastOutput,
  PolicyOutput,
  ProxyOutput,
  RouterOutputs,
  ScalingEventOutput,
  SummaryOutput,
} from "../src/index.ts";

/**
 * The client's output types come from the procedures' output schemas through tRPC's inference (JSON: no
 * transformer, so dates arrive as ISO strings). `tsc --noEmit -p .` checks these; vitest runs them as no-ops.
 */
describe("the client's inferred output types", () => {
  it("are the records' own types, never any or unknown", () => {
    expectTypeOf<ProxyOutput>().not.toBeAny();
    expectTypeOf<ProxyOutput["currentReplicas"]>().toEqualTypeOf<number>();
    expectTypeOf<ProxyOutput["ownerTier"]>().toEqualTypeOf<"free" | "pro" | "enterprise">();
    expectTypeOf<ProxyOutput["region"]>().toEqualTypeOf<string | null>();
    expectTypeOf<ScalingEventOutput["status"]>().toEqualTypeOf<ScalingEventStatus>();
    expectTypeOf<SummaryOutput["events"]["byType"]>().toEqualTypeOf<
      Record<"scale_up" | "scale_down", number>
    >();
    expectTypeOf<PolicyOutput["policy"]>().toEqualTypeOf<ScalingPolicy>();
    expectTypeOf<PolicyOutput["source"]>().toEqualTypeOf<"proxy" | "environment" | "default">();
    expectTypeOf<ForecastOutput>().toEqualTypeOf<DemandForecast>();
  });

  it("carry core's decision as is: the limits union, the strategy basis, the explanation", () => {
    expectTypeOf<EvaluationOutput["limits"]>().toEqualTypeOf<Limit[]>();
    expectTypeOf<EvaluationOutput["explanation"]>().toEqualTypeOf<Decision["explanation"]>();
    expectTypeOf<NonNullable<EvaluationOutput["basis"]>["strategy"]>().toEqualTypeOf<Decision["strategy"]>();
    expectTypeOf<
      RouterOutputs["scaling"]["decisions"]["items"][number]["decision"]
    >().toEqualTypeOf<Decision>();
  });

  it("say what JSON carries: timestamps are ISO strings, not Dates", () => {
    expectTypeOf<ProxyOutput["createdAt"]>().toEqualTypeOf<string>();
    expectTypeOf<ScalingEventOutput["completedAt"]>().toEqualTypeOf<string | null>();
    expectTypeOf<SummaryOutput["from"]>().toEqualTypeOf<string>();
  });

  it("show the actuator redacted", () => {
    type Webhook = Extract<ProxyOutput["actuator"], { kind: "webhook" }>;
    expectTypeOf<Webhook["secret"]>().toEqualTypeOf<"[redacted]">();
  });
});
