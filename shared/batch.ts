// Concurrent calls coalesced into one run: while `maxInFlight` runs are on their way (to
// the database), what arrives waits, and the next run takes all of it (up to
// `maxBatch`). Nothing waits on a timer: an idle batcher runs a call at once, alone;
// only under load do calls share a run, each then waiting at most for the run ahead of
// it. For lookups whose own cost is far below a round trip's — the call path's /route,
// where a statement's parse, plan and protocol cost Postgres more than its index probes.
export class Batcher<I, O> {
  private readonly queue: { item: I; resolve: (out: O) => void; reject: (err: unknown) => void }[] = [];
  private inFlight = 0;

  /** `run` answers its items in their order, one output each. */
  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly limits: { maxInFlight: number; maxBatch: number } = { maxInFlight: 2, maxBatch: 64 },
  ) {}

  load(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.inFlight < this.limits.maxInFlight) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.inFlight++;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.limits.maxBatch);
        try {
          const outputs = await this.run(batch.map((p) => p.item));
          // Answers are matched to callers by position: a run that answers another number
          // of items may have lost one in the middle, and every answer after it would go
          // to the wrong caller (on /route, another tenant's agent). None is handed out.
          if (outputs.length !== batch.length) {
            const err = new Error(`a batch answered ${outputs.length} items for the ${batch.length} it was given`);
            for (const p of batch) p.reject(err);
          } else {
            batch.forEach((p, i) => p.resolve(outputs[i]));
          }
        } catch (err) {
          // The run failed as a whole (the database unreachable): every call in it fails
          // with that error, and the next run is tried for what waits.
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.inFlight--;
    }
  }
}
