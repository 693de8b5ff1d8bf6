// The task's rules (src/task.js) against the shared vectors tests/task_vectors.json, which Python checks too
// (tests/test_task.py), and the classifier's predictions through them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Task, blankError, isBlank, isModelThreshold, isThreshold } from '../src/task.js';
import { SentimentClassifier } from '../src/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const VECTORS = JSON.parse(readFileSync(path.join(REPO, 'tests', 'task_vectors.json'), 'utf8'));

test('the empty-text rule', () => {
  for (const c of VECTORS.blank) {
    assert.equal(isBlank(c.text), c.blank, JSON.stringify(c.text));
    assert.equal(blankError(c.text), c.reason, JSON.stringify(c.text));
  }
});

test('the threshold range', () => {
  const task = new Task(['negative', 'positive'], 0.5);
  for (const c of VECTORS.threshold) {
    assert.equal(isThreshold(c.value), c.ok, JSON.stringify(c.value));
    if (c.ok) assert.equal(task.checkThreshold(c.value), c.value);
    else assert.throws(() => task.checkThreshold(c.value), /threshold must be a number from 0 to 1/);
  }
  for (const v of [NaN, Infinity, -Infinity]) assert.equal(isThreshold(v), false);
  for (const c of VECTORS.model_threshold) assert.equal(isModelThreshold(c.value), c.ok, JSON.stringify(c.value));
});

test('labels, width, description and decisions of 2-, 3- and 4-label tasks', () => {
  for (const spec of VECTORS.tasks) {
    const task = new Task(spec.labels, spec.threshold);
    assert.deepEqual([task.binary, task.width, task.describe()], [spec.binary, spec.width, spec.describe]);
    assert.equal(task.checkThreshold(undefined), spec.threshold);
    for (const c of spec.decide) {
      if (c.error) {
        assert.throws(() => task.checkThreshold(c.threshold), new RegExp(c.error));
        continue;
      }
      const { index, score } = task.decide(c.row, task.checkThreshold(c.threshold));
      assert.equal(task.labels[index], c.label, JSON.stringify(c));
      assert.ok(Math.abs(score - c.score) <= 1e-12);
    }
  }
});

test('the classifier refuses what the task refuses', async () => {
  const clf = await SentimentClassifier.load(path.join(REPO, 'models', 'seed'));
  try {
    for (const c of VECTORS.threshold) {
      if (c.ok) await clf.predict('fine', { threshold: c.value });
      else await assert.rejects(clf.predict('fine', { threshold: c.value }), /threshold must be a number from 0 to 1/);
    }
    for (const c of VECTORS.blank) {
      if (c.blank) await assert.rejects(clf.predict(c.text), /empty or whitespace-only/);
    }
    assert.equal(clf.task.describe(), 'negative / positive  (score = P(positive), threshold 0.5)');
  } finally {
    await clf.dispose();
  }
});
