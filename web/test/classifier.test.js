import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SentimentClassifier, ModelError, IntegrityError } from '../src/index.js';
import { lengthBatches } from '../src/batching.js';
import { vectors, scoredTexts, MODELS } from './vectors.js';

const ATOL = 1e-5;

for (const [name, kinds] of Object.entries(vectors.scores)) {
  for (const [kind, expected] of Object.entries(kinds)) {
    test(`${name} ${kind}: probabilities of ${expected.length} texts within ${ATOL} of Python's`, async () => {
      const clf = await SentimentClassifier.load(path.join(MODELS, name), { quantized: kind === 'int8', threads: 1 });
      const got = await clf.probabilities(scoredTexts);
      let worst = 0;
      got.forEach((row, i) => row.forEach((p, j) => { worst = Math.max(worst, Math.abs(p - expected[i][j])); }));
      assert.equal(got.length, expected.length);
      assert.ok(worst <= ATOL, `max |diff| ${worst}`);
      // predict(): labels and scores of the first texts, one batch and one by one (the single-text path)
      const want = vectors.predictions[name][kind];
      const batch = await clf.predict(scoredTexts.slice(0, want.length));
      for (const [i, p] of batch.entries()) {
        assert.equal(p.label, want[i].label, `text ${i}`);
        assert.ok(Math.abs(p.score - want[i].score) <= ATOL);
        assert.deepEqual(Object.keys(p.scores), vectors.models[name].labels);
      }
      // one text alone (for int8 the dynamic quantization then sees that text only)
      for (const s of vectors.singles[name][kind]) {
        const one = await clf.predict(scoredTexts[s.index]);
        assert.equal(one.label, s.label, `single ${s.index}`);
        for (const l of clf.labels) assert.ok(Math.abs(one.scores[l] - s.scores[l]) <= ATOL, `single ${s.index} ${l}`);
      }
      await clf.dispose();
    });
  }
}

test('predict refuses exactly the texts Python refuses (empty or str.isspace())', async () => {
  const clf = await SentimentClassifier.load(path.join(MODELS, vectors.main_model), { quantized: true, threads: 1 });
  for (const c of vectors.cases) {
    if (c.refused) await assert.rejects(clf.predict(c.text), /empty or whitespace-only/, c.name);
    else await clf.predict(c.text);
  }
  await assert.rejects(clf.predict([42]), TypeError);
  await assert.rejects(clf.predict('good', { threshold: 2 }), /threshold/);
  assert.equal((await clf.predict('fine', { threshold: 0 })).label, clf.labels[1]);
  assert.deepEqual(await clf.predict([]), []);
});

test('predict takes a string or an iterable of strings; anything else is a TypeError naming both', async () => {
  const clf = await SentimentClassifier.load(path.join(MODELS, 'seed'), { threads: 1 });
  const named = (e) => e instanceof TypeError && /a string or an array \(or other iterable\) of strings/.test(e.message);
  for (const bad of [42, {}, true, null, undefined, new String('A fine film.'), () => 'x', Symbol('x')]) {
    await assert.rejects(clf.predict(bad), named, String(typeof bad));
  }
  await assert.rejects(clf.probabilities('A fine film.'), (e) => e instanceof TypeError && /array/.test(e.message));
  await assert.rejects(clf.predict(['fine', new String('fine')]), /text 1 is a String object, not a string/);
  const texts = ['A fine film.', 'Dull and far too long.'];
  const listed = await clf.predict(texts);
  assert.deepEqual(await clf.predict(new Set(texts)), listed);
  assert.deepEqual(await clf.predict(texts.values()), listed);
  await clf.dispose();
});

test('three-plus labels: argmax label, its probability as score', async () => {
  const clf = await SentimentClassifier.load(path.join(MODELS, 'stars'), { threads: 1 });
  assert.equal(clf.labels.length, 4);
  const p = await clf.predict('An utter waste of time, the worst film I have seen.');
  assert.equal(p.score, Math.max(...Object.values(p.scores)));
  assert.equal(p.label, Object.entries(p.scores).find(([, v]) => v === p.score)[0]);
  await assert.rejects(clf.predict('x', { threshold: 0.5 }), /two-label/);
});

test('lengthBatches groups like Python: ascending, stable, token budget and row cap', () => {
  assert.deepEqual(lengthBatches([3, 1, 2, 1], 4), [[1, 3], [2], [0]]);
  assert.deepEqual(lengthBatches([0, 0, 0], 2), [[0, 1], [2]]);
  assert.equal(lengthBatches(Array(600).fill(1)).length, 3);
});

function copyModel(name) {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-infer-web-'));
  cpSync(path.join(MODELS, name), dir, { recursive: true });
  return dir;
}

test('load verifies the vocabulary and the ONNX file against the manifest first', async (t) => {
  const dir = copyModel('seed');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const vocab = path.join(dir, manifest.files.vocab.path);
  const text = readFileSync(vocab, 'utf8');
  writeFileSync(vocab, text.replace('the\n', 'teh\n'));
  await assert.rejects(SentimentClassifier.load(dir), (e) => e instanceof IntegrityError && /sha256/.test(e.message));
  writeFileSync(vocab, text);
  const model = path.join(dir, manifest.files.int8.path);
  const bytes = readFileSync(model);
  bytes[bytes.length - 10] ^= 1;
  writeFileSync(model, bytes);
  await assert.rejects(SentimentClassifier.load(dir, { quantized: true }), /sha256/);
  await SentimentClassifier.load(path.join(dir, 'manifest.json')); // fp32 intact
  writeFileSync(path.join(dir, 'manifest.json'), '{"format": "other"}');
  await assert.rejects(SentimentClassifier.load(dir), ModelError);
  rmSync(path.join(dir, 'manifest.json'));
  await assert.rejects(SentimentClassifier.load(dir), (e) => e.name === 'ManifestError' && /no manifest.json/.test(e.reason));
});

test('model files are named by the manifest (stars uses content-addressed names)', async () => {
  const clf = await SentimentClassifier.load(path.join(MODELS, 'stars', 'manifest.json'), { quantized: true });
  assert.equal(clf.tokenizer.vocabulary.size, 30000);
});
