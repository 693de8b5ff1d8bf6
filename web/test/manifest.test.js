// The model folder as the loader reads it: the shared bad-manifest vectors (tests/bad_manifests.json, also run by
// tests/test_bad_manifests.py) and files that are not regular files or are larger than the manifest says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync,
  writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SentimentClassifier, ModelError } from '../src/index.js';
import { platform } from '../src/node.js';
import { fetchCapped } from '../src/browser.js';
import { serve } from './server.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODELS = path.join(REPO, 'models');
const VECTORS = JSON.parse(readFileSync(path.join(REPO, 'tests', 'bad_manifests.json'), 'utf8'));

function walk(doc, dotted) {
  const keys = dotted.split('.');
  const last = keys.pop();
  for (const key of keys) doc = doc[key];
  return [doc, last];
}

/** The manifest text of `c` built from `raw` as tests/bad_manifests.json's "about" describes. */
function manifestText(raw, c) {
  let doc = structuredClone(raw);
  for (const dotted of c.delete ?? []) { const [node, last] = walk(doc, dotted); delete node[last]; }
  for (const [dotted, source] of Object.entries(c.copy ?? {})) {
    const [node, last] = walk(doc, dotted);
    const [from, key] = walk(doc, source);
    node[last] = structuredClone(from[key]);
  }
  for (const [dotted, value] of Object.entries(c.set ?? {})) {
    if (dotted === '') doc = value;
    else { const [node, last] = walk(doc, dotted); node[last] = value; }
  }
  let text = JSON.stringify(doc, null, 2);
  if (c.replace) {
    assert.ok(text.includes(c.replace[0]), `${c.name}: ${c.replace[0]} is not in the manifest`);
    text = text.replace(c.replace[0], c.replace[1]);
  }
  text = (c.prefix ?? '') + text + ' '.repeat(c.append_spaces ?? 0);
  return c.text ?? text;
}

const rawManifest = (model) => JSON.parse(readFileSync(path.join(MODELS, model, 'manifest.json'), 'utf8'));

/** A temporary folder with `text` as its manifest and links to the other files of models/<model>. */
function modelFolder(t, model, text) {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-infer-web-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of readdirSync(path.join(MODELS, model))) {
    if (name !== 'manifest.json') symlinkSync(path.join(MODELS, model, name), path.join(dir, name));
  }
  writeFileSync(path.join(dir, 'manifest.json'), text);
  return dir;
}

for (const model of [...new Set(VECTORS.cases.map((c) => c.model))].sort()) {
  test(`the unchanged ${model} manifest loads from a folder of links`, async (t) => {
    const clf = await SentimentClassifier.load(modelFolder(t, model, manifestText(rawManifest(model), {})), { threads: 1 });
    assert.equal(clf.manifest.name, rawManifest(model).name);
    await clf.dispose();
  });
}

test('a manifest listing the int8 file only (a packaged second model) loads it, as Python does', async (t) => {
  const raw = rawManifest('seed');
  delete raw.files.fp32;
  const clf = await SentimentClassifier.load(modelFolder(t, 'seed', JSON.stringify(raw)), { threads: 1 });
  assert.equal(clf.quantized, true);
  assert.equal((await clf.predict(['A wonderful film.']))[0].label.length > 0, true);
  await clf.dispose();
});

test(`each of the ${VECTORS.cases.length} shared bad manifests is refused as Python refuses it`, async (t) => {
  const wrong = [];
  for (const c of VECTORS.cases) {
    const dir = modelFolder(t, c.model, manifestText(rawManifest(c.model), c));
    try {
      const clf = await SentimentClassifier.load(dir, { threads: 1 });
      await clf.dispose();
      wrong.push(`${c.name}: loaded`);
    } catch (err) {
      if (!(err instanceof ModelError) || err.name !== c.refused || !err.reason.includes(c.mentions ?? '')) {
        wrong.push(`${c.name}: ${err.name}: ${err.message}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  assert.deepEqual(wrong, []);
});

/** A copy of the seed model's manifest, vocabulary and fp32 file in a temporary folder. */
function seedCopy(t) {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-infer-web-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const m = rawManifest('seed');
  for (const name of ['manifest.json', m.files.vocab.path, m.files.fp32.path]) {
    copyFileSync(path.join(MODELS, 'seed', name), path.join(dir, name));
  }
  return { dir, m };
}

function replaceWith(file, kind) {
  rmSync(file);
  if (kind === 'a FIFO') execFileSync('mkfifo', [file]);
  else if (kind === 'a link to /dev/zero') symlinkSync('/dev/zero', file);
  else mkdirSync(file);
}

for (const kind of ['a link to /dev/zero', 'a FIFO', 'a folder']) {
  test(`a vocabulary, model or manifest that is ${kind} is refused at once`, { timeout: 20000 }, async (t) => {
    for (const key of ['vocab', 'fp32', 'manifest']) {
      const { dir, m } = seedCopy(t);
      replaceWith(path.join(dir, key === 'manifest' ? 'manifest.json' : m.files[key].path), kind);
      await assert.rejects(SentimentClassifier.load(dir), (err) => err instanceof ModelError
        && /not a regular file \(a (character device|FIFO|directory)\)/.test(err.reason), `${key} ${kind}`);
    }
  });
}

test('a model file larger than the manifest says is read no further than its declared size', async (t) => {
  const { dir, m } = seedCopy(t);
  const vocab = path.join(dir, m.files.vocab.path);
  assert.equal((await platform.read(vocab, 100)).length, 101);
  appendFileSync(vocab, Buffer.alloc(1 << 20, 'x'));
  await assert.rejects(SentimentClassifier.load(dir), (err) => err.name === 'IntegrityError'
    && err.reason.includes(`the manifest says ${m.files.vocab.size}`));
  // a link to a regular file is read as the file (as Python does)
  const link = seedCopy(t);
  rmSync(path.join(link.dir, m.files.vocab.path));
  symlinkSync(path.join(MODELS, 'seed', m.files.vocab.path), path.join(link.dir, m.files.vocab.path));
  await (await SentimentClassifier.load(link.dir)).dispose();
});

test('the browser reads a URL no further than the declared size, and a 404 as missing', async (t) => {
  const server = await serve(path.join(MODELS, 'seed'));
  t.after(() => server.close());
  const { files } = rawManifest('seed');
  assert.equal((await fetchCapped(`${server.url}${files.fp32.path}`, 1000)).length, 1001);
  const vocab = await fetchCapped(`${server.url}${files.vocab.path}`, files.vocab.size);
  assert.deepEqual(vocab, new Uint8Array(readFileSync(path.join(MODELS, 'seed', files.vocab.path))));
  await assert.rejects(fetchCapped(`${server.url}missing.txt`, 10), (err) => err.code === 'ENOENT');
});
