import { describe, expect, it } from "vitest";
import { FairShare } from "../src/fair-share.ts";

describe("FairShare", () => {
  it("runs one user's heavy requests one at a time, in order, and never holds back another user", async () => {
    const share = new FairShare(5_000);
    const running: string[] = [];
    const finish = new Map<string, () => void>();
    const job = (user: string, id: string, weight: number) =>
      share.run(user, weight, async () => {
        running.push(id);
        await new Promise<void>((resolve) => finish.set(id, resolve));
        return id;
      });
    const a1 = job("flooder", "a1", 5_000);
    const a2 = job("flooder", "a2", 5_000);
    const small = Array.from({ length: 3 }, (_, i) => job("fleet", `s${i}`, 1));
    await expect.poll(() => running).toEqual(["a1", "s0", "s1", "s2"]);
    finish.get("a1")!();
    expect(await a1).toBe("a1");
    await expect.poll(() => running).toContain("a2");
    finish.get("a2")!();
    for (const id of ["s0", "s1", "s2"]) finish.get(id)!();
    expect(await Promise.all([a2, ...small])).toEqual(["a2", "s0", "s1", "s2"]);
  });
});
