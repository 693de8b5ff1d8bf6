/** The shared test vectors written by web/make_vectors.py, and the repository's model folders. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const MODELS = path.resolve(HERE, '..', '..', 'models');
const VECTORS = path.join(HERE, 'vectors.json');
// Written from the dataset in ../shared/data (never committed): `npm run vectors` or .ci/run makes it.
if (!existsSync(VECTORS)) {
  throw new Error(`${VECTORS} is missing: run \`npm run vectors\` (python web/make_vectors.py) first`);
}
export const vectors = JSON.parse(readFileSync(VECTORS, 'utf8'));

/** Texts the `scores` rows belong to: the cases predict accepts, then the reviews. */
export const scoredTexts = [
  ...vectors.cases.filter((c) => !c.refused).map((c) => c.text),
  ...vectors.reviews.map((r) => r.text),
];

/** Python's code point spans as UTF-16 spans of `text` (what `text.slice(start, end)` takes). */
export function unitSpans(text, spans) {
  const at = [0];
  for (const ch of text) at.push(at.at(-1) + ch.length);
  return spans.map(([a, b]) => [at[a], at[b]]);
}

/** UTF-16 spans of `text` as code point spans (Python's `str` indices). */
export function codePointSpans(text, spans) {
  const cp = new Array(text.length + 1);
  let k = 0;
  for (let u = 0; u <= text.length;) {
    cp[u] = k;
    if (u === text.length) break;
    const step = String.fromCodePoint(text.codePointAt(u)).length;
    if (step === 2) cp[u + 1] = k; // inside a pair: never a span edge
    u += step;
    k += 1;
  }
  return spans.map(([a, b]) => [cp[a], cp[b]]);
}
