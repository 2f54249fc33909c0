/**
 * The replicas of a simulated proxy: `current` is what the engine counts (serving + warming, as the actuator
 * reports it); a new replica warms up for `warmupMs` before it serves; a removed one drains for `drainMs`
 * (it takes no new requests but is still paid for). Time only moves forward (`advanceTo`).
 */
export class Fleet {
  /** Replicas running and not draining: serving + warming (the engine's currentReplicas). */
  current: number;
  serving: number;
  /** Ready times of warming replicas, ascending from `warmHead` (the newest last). */
  private warming: number[] = [];
  private warmHead = 0;
  /** End times of draining replicas, ascending from `drainHead`. */
  private draining: number[] = [];
  private drainHead = 0;
  private at: number;
  /** ∫ serving dt and ∫ (serving + warming + draining) dt since the last `takeIntegrals`, in replica-ms. */
  private servingMs = 0;
  private billedMs = 0;

  constructor(
    initial: number,
    private readonly warmupMs: number,
    private readonly drainMs: number,
    at: number,
  ) {
    this.current = initial;
    this.serving = initial;
    this.at = at;
  }

  get warmingCount(): number {
    return this.warming.length - this.warmHead;
  }

  get drainingCount(): number {
    return this.draining.length - this.drainHead;
  }

  private integrate(to: number): void {
    const dt = to - this.at;
    if (dt > 0) {
      this.servingMs += this.serving * dt;
      this.billedMs += (this.current + this.drainingCount) * dt;
      this.at = to;
    }
  }

  /** Moves the clock to `t`, bringing warmed-up replicas into service and ending drains on the way. */
  advanceTo(t: number): void {
    for (;;) {
      const ready = this.warmHead < this.warming.length ? this.warming[this.warmHead]! : Infinity;
      const drained = this.drainHead < this.draining.length ? this.draining[this.drainHead]! : Infinity;
      const next = Math.min(ready, drained);
      if (next > t) break;
      this.integrate(next);
      if (ready <= drained) {
        this.warmHead++;
        this.serving++;
      } else {
        this.drainHead++;
      }
    }
    this.integrate(t);
    if (this.warmHead > 1024 && this.warmHead * 2 > this.warming.length) {
      this.warming = this.warming.slice(this.warmHead);
      this.warmHead = 0;
    }
    if (this.drainHead > 1024 && this.drainHead * 2 > this.draining.length) {
      this.draining = this.draining.slice(this.drainHead);
      this.drainHead = 0;
    }
  }

  /**
   * Scales to `replicas` at the fleet's clock (call `advanceTo` first). Up: new replicas warm up. Down: the
   * newest warming replicas go first (they serve nobody yet), then serving ones start draining.
   */
  scaleTo(replicas: number): void {
    const t = this.at;
    if (replicas > this.current) {
      const added = replicas - this.current;
      if (this.warmupMs <= 0) this.serving += added;
      else for (let i = 0; i < added; i++) this.warming.push(t + this.warmupMs);
    } else {
      let removed = this.current - replicas;
      while (removed > 0 && this.warmingCount > 0) {
        this.warming.pop();
        removed--;
      }
      this.serving -= removed;
      if (this.drainMs > 0) for (let i = 0; i < removed; i++) this.draining.push(t + this.drainMs);
    }
    this.current = replicas;
  }

  /** The integrals since the last call (replica-ms), then resets them. */
  takeIntegrals(): { servingMs: number; billedMs: number } {
    const result = { servingMs: this.servingMs, billedMs: this.billedMs };
    this.servingMs = 0;
    this.billedMs = 0;
    return result;
  }
}
