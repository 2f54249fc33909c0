import { describe, expect, it } from "vitest";
import { replicaData } from "../src/pages/replica-data.ts";

type Args = Parameters<typeof replicaData>;

const columns = (at: number[], replicas: (number | null)[]) => ({ at, replicas }) as unknown as Args[0];
const decision = (at: number, current: number, desired: number) =>
  ({
    evaluatedAt: new Date(at).toISOString(),
    decision: { currentReplicas: current, desiredReplicas: desired },
  }) as unknown as Args[1][number];
const event = (at: number, newReplicas: number) =>
  ({ createdAt: new Date(at).toISOString(), newReplicas }) as unknown as Args[2][number];

describe("the replicas chart's data", () => {
  it("merges decisions and events (newest first) into the samples' time order, samples first on a tie", () => {
    const data = replicaData(
      columns([1_000, 2_000, 3_000], [2, 2, 3]),
      [decision(3_000, 2, 3), decision(1_500, 2, 2)],
      [event(2_500, 3)],
      0,
    );
    expect(data).toEqual([
      [1, 1.5, 2, 2.5, 3, 3],
      [2, 2, 2, null, 3, 2],
      [null, 2, null, null, null, 3],
      [null, null, null, 3, null, null],
    ]);
  });

  it("leaves out decisions and events before the window, and keeps marks after the last sample", () => {
    const data = replicaData(
      columns([10_000], [1]),
      [decision(20_000, 1, 4), decision(5_000, 1, 1)],
      [event(4_000, 2)],
      9_000,
    );
    expect(data).toEqual([
      [10, 20],
      [1, 1],
      [null, 4],
      [null, null],
    ]);
  });
});
