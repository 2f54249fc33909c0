import { describe, expect, it } from "vitest";
import { forEachBounded, KeyedQueue } from "../../src/control/queue.ts";

const sum = (a: number, b: number) => a + b;

describe("KeyedQueue", () => {
  it("queues a key added again before it is taken once, merging its work", async () => {
    const queue = new KeyedQueue<string, number>(sum);
    void queue.add("a", 1);
    void queue.add("b", 10);
    void queue.add("a", 2);
    expect(queue.length).toBe(2);
    const batch = await queue.take(10);
    expect(batch.map(({ key, work }) => [key, work])).toEqual([
      ["a", 3],
      ["b", 10],
    ]);
  });

  it("takes at most `max` keys, oldest first", async () => {
    const queue = new KeyedQueue<number, number>(sum);
    for (let key = 0; key < 5; key++) void queue.add(key, 1);
    expect((await queue.take(2)).map((item) => item.key)).toEqual([0, 1]);
    expect((await queue.take(10)).map((item) => item.key)).toEqual([2, 3, 4]);
  });

  it("shares a batch round-robin between lanes, so one owner's thousand keys do not push another's out", async () => {
    const owner = (key: string) => key.split("/")[0];
    const queue = new KeyedQueue<string, number>(sum, (work) => work > 0, owner);
    for (let i = 0; i < 1_000; i++) void queue.add(`flood/${i}`, 1);
    void queue.add("quiet/a", 1);
    void queue.add("other/b", 1);
    void queue.add("quiet/c", 1);
    // Urgent first (all of these), and within them one per lane in turn, each lane oldest first.
    expect((await queue.take(6)).map((item) => item.key)).toEqual([
      "flood/0",
      "quiet/a",
      "other/b",
      "flood/1",
      "quiet/c",
      "flood/2",
    ]);
    // Non-urgent keys come after every urgent one, shared the same way.
    void queue.add("quiet/late", 0);
    const rest = (await queue.take(2_000)).map((item) => item.key);
    expect(rest.at(-1)).toBe("quiet/late");
    expect(rest).toHaveLength(998);
  });

  it("never hands a key to two workers: one added while held is queued again after done", async () => {
    const queue = new KeyedQueue<string, number>(sum);
    void queue.add("a", 1);
    const first = await queue.take(10);
    void queue.add("a", 5);
    void queue.add("a", 7);
    expect(queue.length).toBe(0);
    expect(queue.isProcessing("a")).toBe(true);
    queue.done(first);
    const second = await queue.take(10);
    expect(second.map(({ key, work }) => [key, work])).toEqual([["a", 12]]);
  });

  it("resolves an add once the key was processed after it, not before", async () => {
    const queue = new KeyedQueue<string, number>(sum);
    let early = false;
    void queue.add("a", 1).then(() => {
      early = true;
    });
    const first = await queue.take(1);
    let late = false;
    const added = queue.add("a", 2).then(() => {
      late = true;
    });
    queue.done(first);
    await Promise.resolve();
    expect(early).toBe(true);
    expect(late).toBe(false);
    const second = await queue.take(1);
    queue.done(second);
    await added;
    expect(late).toBe(true);
  });

  it("takes urgent work first, oldest first, including a key whose merged work became urgent", async () => {
    const queue = new KeyedQueue<string, number>(sum, (work) => work >= 10);
    for (const key of ["a", "b", "c", "d"]) void queue.add(key, 1);
    void queue.add("u", 10);
    void queue.add("c", 20);
    expect((await queue.take(3)).map((item) => item.key)).toEqual(["u", "c", "a"]);
    expect((await queue.take(3)).map((item) => item.key)).toEqual(["b", "d"]);
  });

  it("lets a worker wait for urgent work only, while another takes the rest", async () => {
    const queue = new KeyedQueue<string, number>(sum, (work) => work >= 10);
    const urgentWorker = queue.take(10, true);
    const anyWorker = queue.take(10);
    void queue.add("slow", 1);
    expect((await anyWorker).map((item) => item.key)).toEqual(["slow"]);
    void queue.add("push", 10);
    expect((await urgentWorker).map((item) => item.key)).toEqual(["push"]);
  });

  it("wakes a waiting worker as soon as a key arrives", async () => {
    const queue = new KeyedQueue<string, number>(sum);
    const taking = queue.take(10);
    void queue.add("x", 1);
    expect((await taking).map((item) => item.key)).toEqual(["x"]);
  });

  it("is idle only when nothing waits and nothing is held", async () => {
    const queue = new KeyedQueue<string, number>(sum);
    await queue.idle();
    void queue.add("a", 1);
    let idle = false;
    const watching = queue.idle().then(() => {
      idle = true;
    });
    const batch = await queue.take(10);
    await Promise.resolve();
    expect(idle).toBe(false);
    queue.done(batch);
    await watching;
    expect(idle).toBe(true);
  });

  it("on shut down gives waiting workers an empty batch and releases every adder", async () => {
    const queue = new KeyedQueue<string, number>(sum);
    const waitingWorker = queue.take(10);
    queue.shutDown();
    expect(await waitingWorker).toEqual([]);
    await queue.add("late", 1);
    expect(queue.length).toBe(0);

    const other = new KeyedQueue<string, number>(sum);
    const dropped = other.add("a", 1);
    other.shutDown();
    await dropped;
    expect(await other.take(10)).toEqual([]);
  });
});

describe("forEachBounded", () => {
  it("runs every item with at most `limit` in flight and reports failures without stopping", async () => {
    let inFlight = 0;
    let most = 0;
    const seen: number[] = [];
    const failed: number[] = [];
    await forEachBounded(
      [1, 2, 3, 4, 5, 6, 7],
      3,
      async (item) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight -= 1;
        if (item === 4) throw new Error("four");
        seen.push(item);
      },
      (item) => failed.push(item),
    );
    expect(most).toBe(3);
    expect(seen.sort()).toEqual([1, 2, 3, 5, 6, 7]);
    expect(failed).toEqual([4]);
  });
});
