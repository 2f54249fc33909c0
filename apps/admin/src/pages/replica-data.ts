import type { RouterOutputs } from "../trpc.ts";

type Columns = RouterOutputs["metrics"]["range"]["columns"];
type StoredDecision = RouterOutputs["scaling"]["decisions"]["items"][number];
type ScalingEvent = RouterOutputs["scaling"]["events"]["items"][number];

const seconds = (ms: number) => ms / 1000;

/**
 * Replicas on one time axis: the samples' (many, in time order) with the decisions' current → desired and the
 * events' new counts (few) merged in. A decision or event at a sample's time comes after the sample.
 */
export function replicaData(
  columns: Columns,
  decisions: StoredDecision[],
  events: ScalingEvent[],
  from: number,
) {
  const marks = [
    ...decisions.map((d) => ({
      at: Date.parse(d.evaluatedAt),
      values: [d.decision.currentReplicas, d.decision.desiredReplicas, null],
    })),
    ...events.map((e) => ({ at: Date.parse(e.createdAt), values: [null, null, e.newReplicas] })),
  ]
    .filter((mark) => mark.at >= from)
    .sort((a, b) => a.at - b.at);
  const length = columns.at.length + marks.length;
  const x: number[] = new Array(length);
  const series: (number | null)[][] = [new Array(length), new Array(length), new Array(length)];
  for (let k = 0, i = 0, j = 0; k < length; k++) {
    const mark = marks[j];
    if (mark && (i === columns.at.length || mark.at < columns.at[i]!)) {
      x[k] = seconds(mark.at);
      for (let s = 0; s < 3; s++) series[s]![k] = mark.values[s] ?? null;
      j++;
    } else {
      x[k] = seconds(columns.at[i]!);
      series[0]![k] = columns.replicas?.[i] ?? null;
      series[1]![k] = null;
      series[2]![k] = null;
      i++;
    }
  }
  return [x, ...series] as [number[], ...(number | null)[][]];
}
