import { describe, expect, it } from "vitest";
import { groupCommit } from "../src/group-commit.ts";

interface Req {
  lane: string;
  id: string;
  weight?: number;
}

/** A group commit whose batches are held until released, so the test sees what each batch took. */
function recorder(options: { maxWeight?: number } = {}) {
  const batches: string[][] = [];
  const release: Array<() => void> = [];
  const submit = groupCommit<Req, string>(
    async (batch) => {
      batches.push(batch.map((waiting) => waiting.request.id));
      await new Promise<void>((resolve) => release.push(resolve));
      for (const waiting of batch) waiting.resolve(waiting.request.id);
    },
    { laneOf: (r) => r.lane, weightOf: (r) => r.weight ?? 1, ...options },
  );
  return { batches, release, submit };
}

describe("groupCommit", () => {
  it("takes one request per lane in turn, so a lane with a backlog shares each batch", async () => {
    const { batches, release, submit } = recorder({ maxWeight: 4 });
    const done = [
      ...Array.from({ length: 10 }, (_, i) => submit({ lane: "flood", id: `f${i}` })),
      submit({ lane: "quiet", id: "q0" }),
    ];
    await expect.poll(() => batches.length).toBeGreaterThan(0);
    expect(batches[0]).toEqual(["f0", "q0", "f1", "f2"]);
    let finished = false;
    const all = Promise.all(done).then((results) => {
      finished = true;
      return results;
    });
    while (!finished) {
      release.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await all).toHaveLength(11);
  });

  it("gives a lane no second batch in flight while another lane waits", async () => {
    const { batches, release, submit } = recorder({ maxWeight: 5_000 });
    const heavy = [
      submit({ lane: "flood", id: "f0", weight: 5_000 }),
      submit({ lane: "flood", id: "f1", weight: 5_000 }),
    ];
    const quiet = submit({ lane: "quiet", id: "q0" });
    // The second slot goes to the quiet lane, not to the flood's next heavy request.
    await expect.poll(() => batches.length).toBe(2);
    expect(batches).toEqual([["f0"], ["q0"]]);
    release.splice(1, 1)[0]!();
    expect(await quiet).toBe("q0");
    release.shift()!();
    await expect.poll(() => batches.length).toBe(3);
    expect(batches[2]).toEqual(["f1"]);
    release.shift()!();
    expect(await Promise.all(heavy)).toEqual(["f0", "f1"]);
  });
});
