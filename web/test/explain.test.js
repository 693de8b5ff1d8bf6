// classifier.explain(text) against Python's SentimentClassifier.explain on the shared vectors: the same words,
// spans (Python's code points as UTF-16 here), seen flags, and numbers within 1e-5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { SentimentClassifier } from '../src/index.js';
import { vectors, MODELS, unitSpans } from './vectors.js';

const ATOL = 1e-5;
const groups = new Map();
for (const v of vectors.explanations) {
  const key = `${v.model} ${v.kind}`;
  if (!groups.has(key)) groups.set(key, []);
  groups.get(key).push(v);
}

for (const [key, cases] of groups) {
  test(`${key}: ${cases.length} explanations equal Python's`, { timeout: 600000 }, async () => {
    const [name, kind] = key.split(' ');
    const clf = await SentimentClassifier.load(path.join(MODELS, name), { quantized: kind === 'int8', threads: 1 });
    let worst = 0;
    for (const { text, options, result: want } of cases) {
      const got = await clf.explain(text, { label: options.label, window: options.window });
      const where = `${JSON.stringify(text.slice(0, 60))} ${JSON.stringify(options)}`;
      assert.equal(got.label, want.label, where);
      assert.equal(got.explained_label, want.explained_label, where);
      assert.equal(got.window, want.window);
      assert.equal(got.words.length, want.words.length, where);
      const spans = unitSpans(text, want.words.map((w) => [w.start, w.end]));
      got.words.forEach((w, i) => {
        const exp = want.words[i];
        assert.deepEqual([w.token, w.start, w.end, w.text, w.seen], [exp.token, ...spans[i], exp.text, exp.seen], where);
        worst = Math.max(worst, Math.abs(w.contribution - exp.contribution));
      });
      worst = Math.max(worst, Math.abs(got.probability - want.probability), Math.abs(got.score - want.score));
    }
    console.log(`# ${key}: max |diff| ${worst.toExponential(2)}`);
    assert.ok(worst <= ATOL, `max |diff| ${worst}`);
    await clf.dispose();
  });
}

test('explain refuses what Python refuses', async () => {
  const clf = await SentimentClassifier.load(path.join(MODELS, 'seed'), { threads: 1 });
  await assert.rejects(clf.explain(''), /empty or whitespace-only/);
  await assert.rejects(clf.explain(' \n'), /empty or whitespace-only/);
  await assert.rejects(clf.explain(42), TypeError);
  await assert.rejects(clf.explain('fine', { label: 'neutral' }), /label must be one of 'negative', 'positive'/);
  await assert.rejects(clf.explain('fine', { window: 4 }), /window/);
  await assert.rejects(clf.explain('one two three four', { maxTokens: 3 }), /capped at 3/);
  const none = await clf.explain('...');
  assert.deepEqual(none.words, []);
  assert.equal(none.offsets, 'utf-16');
  await clf.dispose();
});
