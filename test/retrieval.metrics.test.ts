import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluateScores, precisionAt, rankRow, vocAp } from '../src/retrieval/metrics.ts';
import { rand } from './util.ts';

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);

test('VOC AP by hand: interpolation lifts an early hit to a later, better precision', () => {
  near(vocAp([1, 0, 1, 0, 0]), (1 + 2 / 3) / 2, 'two hits');
  // Hits at ranks 1, 4, 5: precisions 1, 1/2, 3/5. Interpolated, the hit at 4 takes max(prec at >= 4) = 3/5.
  near(vocAp([1, 0, 0, 1, 1]), (1 + 0.6 + 0.6) / 3, 'interpolated');
  near(vocAp([0, 0, 0, 1]), 0.25, 'one late hit');
});

test('AP@top: fewer relevant items than top, and truncation', () => {
  // top 2 of [1,0,0,1,1]: P = min(2, 3) = 2, one hit in the top 2 at rank 1 -> 1/2.
  near(vocAp([1, 0, 0, 1, 1], 2), 0.5, 'top 2');
  // top 200 with 3 relevant: P = 3, same as the full AP.
  near(vocAp([1, 0, 0, 1, 1], 200), vocAp([1, 0, 0, 1, 1]), 'top 200 > n');
});

test('precision with the reference denominator min(K, #relevant)', () => {
  near(precisionAt([1, 0, 0, 1, 1], 2), 0.5, 'P@2');
  near(precisionAt([1, 0, 0, 1, 1], 100), 1 / 3, 'P@100 with 3 relevant: mean of the first 3');
  assert.ok(Number.isNaN(precisionAt([0, 0, 0], 100)), 'no relevant item: NaN');
  assert.ok(Number.isNaN(vocAp([0, 0, 0])), 'no relevant item: NaN AP');
  assert.ok(Number.isNaN(vocAp([0, 0, 0], 200)), 'no relevant item: NaN AP@200');
});

test('interpolated AP equals (1/P) sum over hits of the best precision at or after the hit (random lists)', () => {
  for (let seed = 0; seed < 50; seed++) {
    const r = rand(40, 300 + seed);
    const rel: number[] = Array.from(r, (v) => (v > 0.3 ? 1 : 0));
    if (!rel.some((x) => x)) continue;
    const P = rel.reduce((a, b) => a + b, 0);
    const prec = rel.map((_, i) => rel.slice(0, i + 1).reduce((a, b) => a + b, 0) / (i + 1));
    let want = 0;
    rel.forEach((x, i) => { if (x) want += Math.max(...prec.slice(i)) / P; });
    near(vocAp(rel), want, `seed ${seed}`);
  }
});

test('ranking: higher first, ties to the lower index, NaN last', () => {
  assert.equal(Array.from(rankRow([0.5, 0.9, 0.5, Number.NaN, 0.9])), [1, 4, 0, 2, 3]);
});

test('evaluateScores: ties, a query without relevant items left out of the means', () => {
  const gallery = [0, 1, 1];
  // Query 0 (class 1): all tied -> order 0,1,2 -> rel 0,1,1 -> precisions 1/2, 2/3 at the hits; interpolated,
  // the first hit takes 2/3 too -> AP 2/3.
  // Query 1 (class 0): gallery 0 ranked first -> AP 1.
  // Query 2 (class 7): nothing relevant -> NaN, not counted.
  const scores = [0.5, 0.5, 0.5, 0.9, 0.1, 0.2, 0.3, 0.2, 0.1];
  const m = evaluateScores(scores, [1, 0, 7], gallery);
  near(m.map_all, (2 / 3 + 1) / 2, 'mAP@all');
  near(m.map_200, m.map_all, 'mAP@200 (P = #relevant < 200)');
  near(m.precision_100, (1 / 2 + 1) / 2, 'P@100: mean(rel[:2]) for q0, rel[:1] for q1');
  assert.is(m.queries_scored, 2);
});

test.run();
