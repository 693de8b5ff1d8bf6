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
