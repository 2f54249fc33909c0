interface UserShare {
  inFlight: number;
  waiting: Array<{ weight: number; start: () => void }>;
}

/**
 * Per-user admission of heavy work: one user's requests hold at most `budget` weight (samples) in processing at
 * once (a request heavier than that runs alone); the rest wait their turn, in order, before their input is
 * parsed. A flood of 5,000-sample pushes is then processed one at a time, so its parsing and scoring (on the
 * server's one thread) leave room for everyone else between them, while a fleet's many one-sample pushes are
 * not held back.
 */
export class FairShare {
  private readonly users = new Map<string, UserShare>();

  constructor(private readonly budget: number) {}

  /** Runs `work` once the user's share has room for `weight`; the share is given back when it settles. */
  async run<T>(user: string, weight: number, work: () => Promise<T>): Promise<T> {
    let share = this.users.get(user);
    if (!share) {
      share = { inFlight: 0, waiting: [] };
      this.users.set(user, share);
    }
    if (share.waiting.length === 0 && this.fits(share, weight)) {
      share.inFlight += weight;
    } else {
      const queued = share;
      await new Promise<void>((start) => queued.waiting.push({ weight, start }));
    }
    try {
      return await work();
    } finally {
      share.inFlight -= weight;
      this.wake(user, share);
    }
  }

  private fits(share: UserShare, weight: number): boolean {
    return share.inFlight === 0 || share.inFlight + weight <= this.budget;
  }

  /** Starts the oldest waiters that fit now (counted at once), in order. */
  private wake(user: string, share: UserShare): void {
    while (share.waiting.length > 0 && this.fits(share, share.waiting[0]!.weight)) {
      const next = share.waiting.shift()!;
      share.inFlight += next.weight;
      next.start();
    }
    if (share.inFlight === 0 && share.waiting.length === 0) this.users.delete(user);
  }
}
