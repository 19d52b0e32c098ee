// How a knowledge search with a query's embedding orders what its two searches found:
// the chunks nearest the embedding (pgvector, cosine) and the chunks best matching the
// text (full text, ts_rank). Both lists come from one statement; this module only orders
// them, so the provider's search during a call stays one round trip.
//
// Hybrid (the default): reciprocal rank fusion, each chunk scored by the sum of 1/(k + r)
// over the lists that hold it at rank r. The two scores are not comparable (a cosine
// similarity and a ts_rank), their ranks are: a chunk without an embedding yet (a
// document added since its embeddings were computed) is still found by its words, and an
// exact word the embedding misses (a product code, a name) still ranks. k = 60, as the
// method's authors (Cormack, Clarke, Büttcher 2009) and most engines use: the first
// places of a list weigh little more than the next few. With lists at most 50 deep, a
// chunk both searches found always comes before one only either found (2/110 > 1/61):
// agreement first, then each list's best alternately by place.
//
// Embedding: the embedding's order, the text's best after it when the embedding found
// fewer chunks than asked for (fewer have an embedding, or the HNSW scan stopped).

/** A chunk as a search statement answers it. */
export type Hit = {
  chunk_id: string;
  document_id: string;
  knowledge_base_id: string;
  title: string;
  ordinal: number;
  content: string;
  score: number;
};

/** Where a list placed a chunk: 1-based, and that search's own score. */
export type Place = { rank: number; score: number };

export type MatchedBy = 'embedding' | 'full_text' | 'both';
export type RankedHit = Hit & {
  matched_by: MatchedBy;
  /** Hybrid only: each search's place for the chunk, null where it did not find it. */
  hybrid?: { embedding: Place | null; full_text: Place | null };
};
export type Ranking = 'hybrid' | 'embedding';
export type Found = { items: RankedHit[]; mode: Ranking | 'full_text' };

/** One search statement's answer: the chunks by the embedding (null when not searched:
 *  the project has no vector search) and by the text, each in order. */
export type Searched = { by_embedding: Hit[] | null; by_text: Hit[] };

export const RRF_K = 60;

/** How deep each list is read for a fusion of `limit` chunks: twice as deep (a chunk
 *  placed low in both lists can beat one placed high in one), within the search's own
 *  bound of 50. */
export const fusionDepth = (limit: number) => Math.min(50, 2 * limit);

/** The fused score of a chunk at these places (1-based; undefined: not found by that
 *  list) as a fraction n/d: 1/(k+a) + 1/(k+b) = (2k+a+b)/((k+a)(k+b)). Integers below
 *  2^15 here, so products of two compare exactly. */
export function fusedFraction(a: number | undefined, b: number | undefined): { n: number; d: number } {
  if (a !== undefined && b !== undefined) return { n: 2 * RRF_K + a + b, d: (RRF_K + a) * (RRF_K + b) };
  return { n: 1, d: RRF_K + (a ?? b!) };
}

/** The text's answer alone, as the GET searches give it. */
export const byText = (hits: Hit[]): { items: (Hit & { matched_by: 'full_text' })[]; mode: 'full_text' } => ({
  items: hits.map((h) => ({ ...h, matched_by: 'full_text' as const })),
  mode: 'full_text',
});

/** The chunks in the order the ranking gives, at most `limit`. Where nothing was found by
 *  the embedding (no vector search, or no chunk has an embedding yet) it is the text's
 *  answer, and says so. */
export function rankHits(searched: Searched, ranking: Ranking, limit: number): Found {
  const nearest = searched.by_embedding ?? [];
  if (!nearest.length) return byText(searched.by_text.slice(0, limit));
  if (ranking === 'embedding') {
    const items: RankedHit[] = nearest.slice(0, limit).map((h) => ({ ...h, matched_by: 'embedding' }));
    const found = new Set(items.map((h) => h.chunk_id));
    for (const h of searched.by_text) {
      if (items.length >= limit) break;
      if (!found.has(h.chunk_id)) items.push({ ...h, matched_by: 'full_text' });
    }
    return { items, mode: 'embedding' };
  }
  const fused = new Map<string, { hit: Hit; embedding: Place | null; full_text: Place | null }>();
  const place = (list: Hit[], key: 'embedding' | 'full_text') =>
    list.forEach((hit, i) => {
      const entry = fused.get(hit.chunk_id) ?? { hit, embedding: null, full_text: null };
      entry[key] = { rank: i + 1, score: hit.score };
      fused.set(hit.chunk_id, entry);
    });
  place(nearest, 'embedding');
  place(searched.by_text, 'full_text');
  const best = (e: { embedding: Place | null; full_text: Place | null }) =>
    Math.min(e.embedding?.rank ?? Infinity, e.full_text?.rank ?? Infinity);
  const scored = [...fused.values()].map((e) => ({ ...e, fraction: fusedFraction(e.embedding?.rank, e.full_text?.rank) }));
  // Compared exactly, as fractions: in floating point, equal sums (1/99 + 1/99 and
  // 1/90 + 1/110) differ in their last bit and would skip the ties' rule. Ties: the
  // better single place, then the embedding's (then the id: never reached, as no two
  // chunks share a place in one list, but the order must not depend on the map's).
  scored.sort((a, b) =>
    b.fraction.n * a.fraction.d - a.fraction.n * b.fraction.d || best(a) - best(b) ||
    (a.embedding?.rank ?? Infinity) - (b.embedding?.rank ?? Infinity) ||
    (a.hit.chunk_id < b.hit.chunk_id ? -1 : a.hit.chunk_id > b.hit.chunk_id ? 1 : 0)
  );
  const items = scored.slice(0, limit).map((e): RankedHit => ({
    ...e.hit,
    score: e.fraction.n / e.fraction.d,
    matched_by: e.embedding && e.full_text ? 'both' : e.embedding ? 'embedding' : 'full_text',
    hybrid: { embedding: e.embedding, full_text: e.full_text },
  }));
  return { items, mode: 'hybrid' };
}
