import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { normalize, tokenize, Tokenizer, Vocabulary, truncate, padBatch } from '../src/tokenizer.js';
import { nfkc } from '../src/normalize.js';
import { UNIDATA_VERSION } from '../src/tables.js';
import { tokenizeWithOffsets } from '../src/offsets.js';
import { vectors, MODELS, codePointSpans } from './vectors.js';
import { DATA, dataPresent, labelledReviews } from './archive.js';

function tokenizerOf(name) {
  const manifest = JSON.parse(readFileSync(path.join(MODELS, name, 'manifest.json'), 'utf8'));
  const vocab = Vocabulary.fromText(readFileSync(path.join(MODELS, name, manifest.files.vocab.path), 'utf8'));
  const t = manifest.tokenizer;
  return new Tokenizer(vocab, t.max_len, t.padding, t.truncating);
}
const tokenizers = Object.fromEntries(Object.keys(vectors.models).map((n) => [n, tokenizerOf(n)]));

test('tables and vectors come from the same Python Unicode version', () => {
  assert.equal(UNIDATA_VERSION, vectors.unidata_version);
});

for (const c of vectors.cases) {
  test(`hard case "${c.name}": tokens and ids equal Python's`, () => {
    assert.deepEqual(tokenize(c.text), c.tokens);
    for (const [name, ids] of Object.entries(c.ids)) assert.deepEqual(tokenizers[name].ids(c.text), ids, name);
  });
}

test('Unicode mismatch: this engine NFKC-folds code points Python does not know; the port keeps them', () => {
  const newer = vectors.cases.find((c) => c.name === 'newer unicode');
  const naive = newer.text.normalize('NFKC');
  console.log(`# Node Unicode ${process.versions.unicode}, Python tables ${UNIDATA_VERSION}: ` +
    `naive NFKC ${naive === newer.text ? 'agrees' : 'differs'} on "newer unicode"`);
  assert.equal(nfkc(newer.text), newer.text); // Python leaves these code points alone
  assert.deepEqual(tokenize(newer.text), newer.tokens);
});

test(`normalize() and tokens of ${vectors.fuzz.length} random strings of tricky pieces equal Python's`, () => {
  for (const f of vectors.fuzz) {
    assert.equal(normalize(f.text), f.normalized, JSON.stringify(f.text));
    assert.deepEqual(tokenize(f.text), f.tokens, JSON.stringify(f.text));
  }
});

/** tokenizeWithOffsets of `text`: Python's tokens and, counted in code points, Python's spans. */
function sameSpans(text, tokens, spans) {
  const got = tokenizeWithOffsets(text);
  assert.deepEqual(got.tokens, tokens, JSON.stringify(text.slice(0, 80)));
  assert.deepEqual(codePointSpans(text, got.spans), spans, JSON.stringify(text.slice(0, 80)));
  for (const [a, b] of got.spans) assert.ok(0 <= a && a < b && b <= text.length);
}

test('token spans of the hard cases, the fuzz strings and the sampled reviews equal Python\'s', () => {
  for (const c of vectors.cases) sameSpans(c.text, c.tokens, c.spans);
  for (const f of vectors.fuzz) sameSpans(f.text, f.tokens, f.spans);
  for (const r of vectors.reviews) sameSpans(r.text, tokenize(r.text), r.spans);
});

test('a word\'s span is its UTF-16 slice: contractions split, astral characters whole', () => {
  const text = "\u{1F600} I didn\u2019t \u{1D400}mazing WON'T";
  const { tokens, spans } = tokenizeWithOffsets(text);
  assert.deepEqual(tokens.map((t, i) => [t, text.slice(...spans[i])]), [
    ['i', 'I'], ['did', 'did'], ['not', 'n\u2019t'], ['amazing', '\u{1D400}mazing'], ['will', 'WON'], ['not', "'T"]]);
});

test(`ids of ${vectors.reviews.length} test reviews equal Python's`, () => {
  const t = tokenizers[vectors.main_model];
  for (const r of vectors.reviews) assert.deepEqual(t.ids(r.text), r.ids, r.name);
});

test('truncate and pad follow the manifest sides', () => {
  assert.deepEqual(truncate([1, 2, 3, 4], 2, 'pre'), [3, 4]);
  assert.deepEqual(truncate([1, 2, 3, 4], 2, 'post'), [1, 2]);
  assert.deepEqual(Array.from(padBatch([[5], [6, 7]], 3, 'post')), [5, 0, 0, 6, 7, 0]);
  assert.deepEqual(Array.from(padBatch([[5], [6, 7]], 3, 'pre')), [0, 0, 5, 0, 6, 7]);
  assert.throws(() => padBatch([[1, 2]], 1, 'pre'), /does not fit/);
  assert.throws(() => new Vocabulary(['a', 'b']), /starts with/);
});

const corpus = vectors.corpus;
test(`tokens, token spans and ids of all labelled reviews in ${path.basename(DATA)} equal Python's`,
  { skip: !dataPresent() && `${DATA} is not there (set EDGE_INFER_DATA)` }, async () => {
    const t = tokenizers[corpus.model];
    let tok = createHash('sha256'); let ids = createHash('sha256'); let spans = createHash('sha256'); let names = [];
    let k = 0; let total = 0;
    const bad = [];
    const flush = () => {
      const want = corpus.chunks[k++];
      const got = { first: names[0], last: names.at(-1), count: names.length,
        tokens: tok.digest('hex'), ids: ids.digest('hex'), spans: spans.digest('hex') };
      if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`${got.first}..${got.last}`);
      tok = createHash('sha256'); ids = createHash('sha256'); spans = createHash('sha256'); names = [];
    };
    for await (const { name, text } of labelledReviews()) {
      const found = tokenizeWithOffsets(text);
      tok.update(found.tokens.join(' ') + '\n');
      spans.update(codePointSpans(text, found.spans).map(([a, b]) => `${a}:${b}`).join(',') + '\n');
      ids.update(t.ids(text).join(',') + '\n');
      names.push(name);
      total++;
      if (names.length === corpus.chunk) flush();
    }
    if (names.length) flush();
    assert.equal(total, 50000);
    assert.equal(k, corpus.chunks.length);
    assert.deepEqual(bad, [], `chunks whose tokens, spans or ids differ from Python's`);
  });
