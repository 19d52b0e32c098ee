// How a knowledge search with a query's embedding orders what its two searches found
// (functions/voice/knowledge-ranking.ts): hybrid by reciprocal rank fusion, embedding
// with the text's best after it, and the text alone when the embedding found nothing.
// The searches themselves run against a database in tests/deploy/hosted-vector-api.test.ts.
import { describe, expect, it } from 'vitest';
import { fusedFraction, fusionDepth, type Hit, rankHits, RRF_K } from '../functions/voice/knowledge-ranking.ts';

const hit = (id: string, score: number): Hit => ({
  chunk_id: id,
  document_id: 'doc',
  knowledge_base_id: 'kb',
  title: 'Handbook',
  ordinal: id.charCodeAt(0),
  content: `chunk ${id}`,
  score,
});
const ids = (items: { chunk_id: string }[]) => items.map((h) => h.chunk_id);
const rrf = (...ranks: number[]) => ranks.reduce((sum, r) => sum + 1 / (RRF_K + r), 0);

// By the embedding: b, c, e, a. By the text: a, d, c (d has no embedding yet).
const byEmbedding = [hit('b', 0.95), hit('c', 0.9), hit('e', 0.8), hit('a', 0.3)];
const byText = [hit('a', 0.6), hit('d', 0.4), hit('c', 0.1)];

describe('hybrid: reciprocal rank fusion', () => {
  it('orders by the sum of 1/(60 + rank) over the searches that found a chunk, and says where each placed it', () => {
    const found = rankHits({ by_embedding: byEmbedding, by_text: byText }, 'hybrid', 5);
    expect(found.mode).toBe('hybrid');
    // a: 4th and 1st; c: 2nd and 3rd; b: 1st alone; d: the text's 2nd; e: the embedding's 3rd.
    expect(ids(found.items)).toEqual(['a', 'c', 'b', 'd', 'e']);
    expect(found.items.map((h) => h.score)).toEqual([rrf(4, 1), rrf(2, 3), rrf(1), rrf(2), rrf(3)].map((x) => expect.closeTo(x, 12)));
    expect(found.items.map((h) => h.matched_by)).toEqual(['both', 'both', 'embedding', 'full_text', 'embedding']);
    expect(found.items[0].hybrid).toEqual({ embedding: { rank: 4, score: 0.3 }, full_text: { rank: 1, score: 0.6 } });
    expect(found.items[3].hybrid).toEqual({ embedding: null, full_text: { rank: 2, score: 0.4 } });
    // The chunk itself as the search gave it.
    expect(found.items[3]).toMatchObject({ content: 'chunk d', title: 'Handbook', document_id: 'doc' });
  });

  it('answers at most the limit', () => {
    const found = rankHits({ by_embedding: byEmbedding, by_text: byText }, 'hybrid', 2);
    expect(ids(found.items)).toEqual(['a', 'c']);
  });

  it("ties (one search's first against the other's) go to the better single place, then the embedding's", () => {
    const one = rankHits({ by_embedding: [hit('y', 0.9)], by_text: [hit('x', 0.5)] }, 'hybrid', 5);
    expect(ids(one.items)).toEqual(['y', 'x']);
    // Two chunks both searches found at swapped places: equal fused scores, equal best
    // places; the embedding's first goes first.
    const swapped = rankHits({
      by_embedding: [hit('q', 0.9), hit('p', 0.8)],
      by_text: [hit('p', 0.5), hit('q', 0.4)],
    }, 'hybrid', 5);
    expect(swapped.items[0].score).toBe(swapped.items[1].score);
    expect(ids(swapped.items)).toEqual(['q', 'p']);
    const reversed = rankHits({
      by_embedding: [hit('p', 0.9), hit('q', 0.8)],
      by_text: [hit('q', 0.5), hit('p', 0.4)],
    }, 'hybrid', 5);
    expect(ids(reversed.items)).toEqual(['p', 'q']);
  });

  it('compares fused scores exactly: places 39 and 39 tie with 30 and 50 (1/99 + 1/99 = 1/90 + 1/110), and the better single place goes first', () => {
    // Two lists 50 deep (limit 25): x at 39 in both, y at 30 by the embedding and 50 by the text.
    // In floating point the first sum is one bit larger, which put x first.
    expect(1 / 99 + 1 / 99).not.toBe(1 / 90 + 1 / 110);
    const list = (at: Record<number, string>, prefix: string) =>
      Array.from({ length: 50 }, (_, i) => hit(at[i + 1] ?? `${prefix}${i + 1}`, 1 - i / 100));
    const found = rankHits({
      by_embedding: list({ 39: 'x', 30: 'y' }, 'e'),
      by_text: list({ 39: 'x', 50: 'y' }, 't'),
    }, 'hybrid', 50);
    const order = ids(found.items);
    expect(order.indexOf('y')).toBeLessThan(order.indexOf('x'));
    expect(order.indexOf('x')).toBe(order.indexOf('y') + 1);
    // The answer's scores are the fused ones, as numbers.
    expect(found.items[order.indexOf('y')].score).toBeCloseTo(1 / 90 + 1 / 110, 12);
    // The better single place decides even against the embedding's order: y's best is
    // the text's 30, x's 39, though the embedding lists x (39) before y (50).
    const textFirst = ids(rankHits({
      by_embedding: list({ 39: 'x', 50: 'y' }, 'e'),
      by_text: list({ 39: 'x', 30: 'y' }, 't'),
    }, 'hybrid', 50).items);
    expect(textFirst.indexOf('x')).toBe(textFirst.indexOf('y') + 1);
  });

  it('the fused score as an exact fraction', () => {
    expect(fusedFraction(39, 39)).toEqual({ n: 198, d: 99 * 99 });
    expect(fusedFraction(30, 50)).toEqual({ n: 200, d: 90 * 110 });
    expect(198 * 90 * 110).toBe(200 * 99 * 99);
    expect(fusedFraction(3, undefined)).toEqual({ n: 1, d: 63 });
    expect(fusedFraction(undefined, 7)).toEqual({ n: 1, d: 67 });
  });

  it('reads each list twice as deep as the limit, within the search bound of 50', () => {
    expect([1, 5, 25, 26, 50].map(fusionDepth)).toEqual([2, 10, 50, 50, 50]);
  });
});

describe('embedding', () => {
  it("the embedding's order, then the text's best not already found while the limit allows", () => {
    const all = rankHits({ by_embedding: byEmbedding, by_text: byText }, 'embedding', 6);
    expect(all.mode).toBe('embedding');
    expect(ids(all.items)).toEqual(['b', 'c', 'e', 'a', 'd']);
    expect(all.items.map((h) => h.matched_by)).toEqual(['embedding', 'embedding', 'embedding', 'embedding', 'full_text']);
    expect(all.items.map((h) => h.score)).toEqual([0.95, 0.9, 0.8, 0.3, 0.4]);
    expect(all.items.every((h) => h.hybrid === undefined)).toBe(true);
    expect(ids(rankHits({ by_embedding: byEmbedding, by_text: byText }, 'embedding', 3).items)).toEqual(['b', 'c', 'e']);
  });
});

describe('the text alone', () => {
  it('where nothing was found by the embedding (no vector search, or no chunk has one yet), whatever the ranking', () => {
    for (const ranking of ['hybrid', 'embedding'] as const) {
      for (const by_embedding of [null, []]) {
        const found = rankHits({ by_embedding, by_text: byText }, ranking, 2);
        expect(found.mode).toBe('full_text');
        expect(ids(found.items)).toEqual(['a', 'd']);
        expect(found.items.map((h) => [h.matched_by, h.score])).toEqual([['full_text', 0.6], ['full_text', 0.4]]);
      }
    }
  });
});
