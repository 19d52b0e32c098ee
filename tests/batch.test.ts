// shared/batch.ts: concurrent calls coalesced into runs (the call path's /route lookups).
import { describe, expect, it } from 'vitest';
import { Batcher } from '../shared/batch.ts';

/** A run that answers each item doubled once `release` is called, recording its batches. */
function gatedRun() {
  const runs: number[][] = [];
  const gates: (() => void)[] = [];
  const run = (items: number[]) => {
    runs.push(items);
    return new Promise<number[]>((resolve) => gates.push(() => resolve(items.map((i) => i * 2))));
  };
  const releaseAll = async () => {
    while (gates.length) {
      gates.shift()!();
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  return { runs, run, releaseAll };
}

describe('Batcher', () => {
  it('runs a call at once and alone when nothing is in flight', async () => {
    const g = gatedRun();
    const b = new Batcher(g.run, { maxInFlight: 2, maxBatch: 64 });
    const one = b.load(1);
    expect(g.runs).toEqual([[1]]);
    await g.releaseAll();
    expect(await one).toBe(2);
  });

  it('past maxInFlight runs, what arrives waits and the next run takes it all, each call answered with its own output', async () => {
    const g = gatedRun();
    const b = new Batcher(g.run, { maxInFlight: 2, maxBatch: 64 });
    const calls = Array.from({ length: 10 }, (_, i) => b.load(i));
    expect(g.runs).toEqual([[0], [1]]);
    await g.releaseAll();
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 10 }, (_, i) => i * 2));
    // The eight that waited went in one run.
    expect(g.runs).toEqual([[0], [1], [2, 3, 4, 5, 6, 7, 8, 9]]);
  });

  it('takes at most maxBatch items per run', async () => {
    const g = gatedRun();
    const b = new Batcher(g.run, { maxInFlight: 1, maxBatch: 3 });
    const calls = Array.from({ length: 8 }, (_, i) => b.load(i));
    await g.releaseAll();
    await Promise.all(calls);
    expect(g.runs).toEqual([[0], [1, 2, 3], [4, 5, 6], [7]]);
  });

  it('a run that fails fails its calls only; the next run goes on', async () => {
    let n = 0;
    const b = new Batcher<number, number>(async (items) => {
      if (n++ === 1) throw new Error('database unavailable');
      await new Promise((r) => setTimeout(r, 5));
      return items.map((i) => i + 100);
    }, { maxInFlight: 1, maxBatch: 2 });
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => b.load(i)));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
      100, 'database unavailable', 'database unavailable', 103, 104,
    ]);
  });

  it('a run that answers another number of items than it was given fails them all: no answer goes to the wrong caller', async () => {
    // One answer lost in the middle: matched by position, item 2 would get item 3's.
    const b = new Batcher<number, number>(async (items) => items.filter((i) => i !== 2).map((i) => i * 10), {
      maxInFlight: 1,
      maxBatch: 10,
    });
    const first = b.load(1); // alone: the idle batcher runs it at once
    const rest = [b.load(2), b.load(3)];
    expect(await first).toBe(10);
    const settled = await Promise.allSettled(rest);
    expect(settled.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : r.value))).toEqual([
      'a batch answered 1 items for the 2 it was given',
      'a batch answered 1 items for the 2 it was given',
    ]);
    // One too many is no better.
    const extra = new Batcher<number, number>(async (items) => [...items, 0], { maxInFlight: 1, maxBatch: 10 });
    await expect(extra.load(7)).rejects.toThrow(/answered 2 items for the 1/);
  });
});
