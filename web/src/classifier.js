/**
 * The classifier, independent of where it runs: src/node.js and src/browser.js give it an ONNX Runtime,
 * a file reader and a sha256. Mirrors edge_infer/classifier.py.
 * @module classifier
 */
import { Tokenizer, Vocabulary, padBatch, truncate } from './tokenizer.js';
import { tokenizeWithOffsets } from './offsets.js';
import { lengthBatches } from './batching.js';
import {
  checkGraph, checkManifest, IntegrityError, ManifestError, MANIFEST_NAME, MAX_MANIFEST_BYTES, ModelError,
} from './manifest.js';
import { Task, isBlank } from './task.js';

/**
 * @typedef {object} Prediction
 * @property {string} label the predicted label
 * @property {number} score two labels: P(labels[1]) whichever won; three or more: the winner's probability
 * @property {Object<string, number>} scores every label's probability, in label order
 */

/**
 * @typedef {object} Word
 * @property {number} start where the word starts in the text (UTF-16 index: `text.slice(start, end)`)
 * @property {number} end where it ends (exclusive)
 * @property {string} text `text.slice(start, end)`
 * @property {string} token the normalized token
 * @property {number} contribution the drop in the explained label's probability when the word is left out
 * @property {boolean} seen false for a token cut by max_len (contribution 0)
 */

/**
 * @typedef {object} Explanation Python's `Explanation.to_dict()`, unrounded, offsets in UTF-16 units
 * @property {string} label the predicted label
 * @property {number} score as in a Prediction
 * @property {Object<string, number>} scores as in a Prediction
 * @property {string} explained_label the label whose probability is explained
 * @property {number} probability its probability
 * @property {string} method 'occlusion'
 * @property {number} window words left out at a time
 * @property {string} offsets 'utf-16'
 * @property {Word[]} words one per token of the text, in order
 */

/**
 * @typedef {object} Platform
 * @property {any} ort onnxruntime-node or onnxruntime-web
 * @property {(location: string, limit: number) => Promise<Uint8Array>} read the bytes of a regular file or a URL,
 *   at most `limit + 1` of them; throws an Error with `code` 'ENOENT' (missing) or 'ENOTREGULAR' (a FIFO, device,
 *   folder ...: its message says which)
 * @property {(bytes: Uint8Array) => Promise<string>} sha256 hex digest
 * @property {(base: string, name: string) => string} join a file name beside the manifest
 * @property {object} sessionOptions
 */

/** Python's `read_error`: the one-line reason a file could not be read. */
function readError(err, missing) {
  if (err.code === 'ENOENT') return missing;
  if (err.code === 'ENOTREGULAR') return err.message;
  return `cannot read: ${err.message}`;
}

/** The bytes of `files[key]`, read no further than its listed size, after checking that size and its sha256. */
async function verified(platform, manifest, key, where) {
  const entry = manifest.files[key];
  const location = platform.join(where, entry.path);
  let bytes;
  try {
    bytes = await platform.read(location, entry.size);
  } catch (err) {
    throw new IntegrityError(location, readError(err, 'missing (listed in the manifest)'));
  }
  if (bytes.length !== entry.size) {
    const size = bytes.length > entry.size ? `over ${entry.size}` : bytes.length;
    throw new IntegrityError(location, `size is ${size} bytes, the manifest says ${entry.size} (truncated or replaced?)`);
  }
  const digest = await platform.sha256(bytes);
  if (digest !== entry.sha256) {
    throw new IntegrityError(location, `sha256 ${digest.slice(0, 12)}... does not match the manifest's ${entry.sha256.slice(0, 12)}...`);
  }
  return { bytes, location };
}

/** Read and check manifest.json at `where`, as Python's `Manifest.load`. */
async function readManifest(platform, where) {
  let bytes;
  try {
    bytes = await platform.read(where, MAX_MANIFEST_BYTES);
  } catch (err) {
    throw new ManifestError(where, readError(err, 'no manifest.json (not a model folder?)'));
  }
  if (bytes.length > MAX_MANIFEST_BYTES) throw new ManifestError(where, 'too large to be a manifest');
  let manifest;
  try {
    // ignoreBOM keeps a byte order mark in the text, so JSON.parse refuses it as Python's json.loads does
    manifest = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch (err) {
    throw new ManifestError(where, `not valid JSON: ${err.message}`);
  }
  return checkManifest(manifest, where);
}

/**
 * The texts of `predict(text)`: one string, or an array or other iterable of them (not a String object).
 * @returns {{single: boolean, texts: any[]}}
 */
function textsOf(text) {
  if (typeof text === 'string') return { single: true, texts: [text] };
  if (Array.isArray(text)) return { single: false, texts: text };
  if (typeof text === 'object' && text !== null && !(text instanceof String) && typeof text[Symbol.iterator] === 'function') {
    return { single: false, texts: Array.from(text) };
  }
  throw new TypeError(`predict: text must be a string or an array (or other iterable) of strings, not ${typeName(text)}`);
}

function typeName(value) {
  if (value === null) return 'null';
  if (typeof value !== 'object') return `a ${typeof value}`;
  return `a ${value.constructor?.name ?? 'Object'} object`;
}

/** Classify movie reviews with an exported model folder. Create it with `SentimentClassifier.load`. */
export class SentimentClassifier {
  /** @private */
  constructor(manifest, tokenizer, session, names, quantized, where) {
    /** The parsed manifest.json. */
    this.manifest = manifest;
    /** @type {Tokenizer} */
    this.tokenizer = tokenizer;
    /** Whether the int8 model runs. */
    this.quantized = quantized;
    /** Where the manifest was read from. */
    this.source = where;
    /** What the output means: labels, binary or N, threshold, decision rule (src/task.js). */
    this.task = Task.of(manifest);
    this._session = session;
    this._names = names;
  }

  /**
   * Load and verify a model: read manifest.json, check the vocabulary's and the ONNX file's size and sha256
   * against it, and only then create the session (platform-specific entry points wrap this).
   * @param {Platform} platform
   * @param {string} location manifest.json, or the folder (URL) holding it
   * @param {{quantized?: boolean}} [options] quantized: the int8 ONNX file
   * @returns {Promise<SentimentClassifier>}
   */
  static async loadWith(platform, location, { quantized = false } = {}) {
    const where = location.endsWith(MANIFEST_NAME) ? location : platform.join(location, MANIFEST_NAME);
    const manifest = await readManifest(platform, where);
    // As Python: a folder shipped with int8 only (a packaged second model) loads its int8 file.
    const key = quantized || !manifest.files.fp32 ? 'int8' : 'fp32';
    if (!manifest.files[key]) throw new ModelError(where, 'this model has no int8 variant');
    const vocab = await verified(platform, manifest, 'vocab', where);
    let vocabulary;
    try {
      vocabulary = Vocabulary.fromText(new TextDecoder('utf-8', { fatal: true }).decode(vocab.bytes));
    } catch (err) {
      throw new IntegrityError(vocab.location, `not a vocabulary: ${err.message}`);
    }
    const spec = manifest.tokenizer;
    if (vocabulary.size > spec.vocab_size) {
      throw new IntegrityError(vocab.location, `${vocabulary.size} tokens, more than tokenizer.vocab_size ${spec.vocab_size}`);
    }
    const model = await verified(platform, manifest, key, where);
    let session;
    try {
      session = await platform.ort.InferenceSession.create(model.bytes, platform.sessionOptions);
    } catch (err) {
      throw new IntegrityError(model.location, `ONNX Runtime cannot load it: ${String(err.message).split('\n')[0]}`);
    }
    let names;
    try {
      names = checkGraph(session, manifest, model.location);
    } catch (err) {
      await session.release?.();
      throw err;
    }
    const tokenizer = new Tokenizer(vocabulary, spec.max_len, spec.padding, spec.truncating);
    const clf = new SentimentClassifier(manifest, tokenizer, session, names, key === 'int8', where);
    clf._ort = platform.ort;
    return clf;
  }

  /** @returns {string[]} the labels in class order */
  get labels() { return this.manifest.labels; }

  /** @returns {boolean} two labels: score = P(labels[1]) against the threshold */
  get binary() { return this.task.binary; }

  /** @returns {number} the manifest's decision threshold */
  get threshold() { return this.task.threshold; }

  /**
   * Classify one text (a Prediction) or an array of texts (an array, same order), as Python's `predict`.
   * @param {string | Iterable<string>} text a string, or an array (or other iterable) of strings
   * @param {{threshold?: number}} [options] overrides the manifest's threshold (two-label models)
   * @returns {Promise<Prediction | Prediction[]>}
   * @throws {TypeError} for anything else (a number, a plain object, a String object ...) or a text that is not a string
   */
  async predict(text, { threshold } = {}) {
    const { single, texts } = textsOf(text);
    const preds = this.predictions(await this.probabilities(texts), { threshold });
    return single ? preds[0] : preds;
  }

  /**
   * Class probabilities `[texts.length][labels.length]` in input order.
   * @param {string[]} texts
   * @returns {Promise<number[][]>}
   */
  async probabilities(texts) {
    if (!Array.isArray(texts)) throw new TypeError(`probabilities: texts must be an array of strings, not ${typeName(texts)}`);
    texts.forEach((t, i) => {
      if (typeof t !== 'string') throw new TypeError(`text ${i} is ${typeName(t)}, not a string`);
      if (isBlank(t)) throw new RangeError(`text ${i} is empty or whitespace-only`);
    });
    return this.probabilitiesForIds(texts.map((t) => this.tokenizer.ids(t)));
  }

  /**
   * Class probabilities for already-tokenized (and truncated) id sequences, batched by length as in Python.
   * @param {number[][]} sequences
   * @returns {Promise<number[][]>}
   */
  async probabilitiesForIds(sequences) {
    const out = await this._outputs(sequences);
    return this.task.probabilities(out);
  }

  /**
   * Turn probability rows into predictions.
   * @param {number[][]} probabilities
   * @param {{threshold?: number}} [options]
   * @returns {Prediction[]}
   */
  predictions(probabilities, { threshold } = {}) {
    const cut = this.task.checkThreshold(threshold);
    return probabilities.map((row) => {
      const scores = Object.fromEntries(this.labels.map((l, i) => [l, row[i]]));
      const { index, score } = this.task.decide(row, cut);
      return { label: this.labels[index], score, scores };
    });
  }

  /**
   * Why `text` got its prediction, as Python's `SentimentClassifier.explain`: each word is left out in turn
   * (`window` 2 or 3: that many consecutive words), all variants in ONE session run, and its contribution is
   * the drop in `label`'s probability (default: the predicted label). Same numbers as Python (shared vectors).
   * @param {string} text
   * @param {{label?: string, maxTokens?: number, window?: number}} [options] maxTokens: refuse (RangeError) a
   *   text of which the model reads more tokens
   * @returns {Promise<Explanation>}
   */
  async explain(text, { label, maxTokens, window = 1 } = {}) {
    if (typeof text !== 'string') throw new TypeError(`explain: text must be a string, not ${typeName(text)}`);
    if (isBlank(text)) throw new RangeError('the text is empty or whitespace-only');
    if (label !== undefined && label !== null && !this.labels.includes(label)) {
      throw new RangeError(`label must be one of ${this.labels.map((l) => `'${l}'`).join(', ')}, not '${label}'`);
    }
    if (!Number.isInteger(window) || window < 1 || window > 3) throw new RangeError('window must be an integer from 1 to 3');
    if (maxTokens !== undefined && maxTokens !== null && !(Number.isInteger(maxTokens) && maxTokens >= 1)) {
      throw new RangeError('maxTokens must be a positive integer');
    }
    const { tokens, spans } = tokenizeWithOffsets(text);
    const tok = this.tokenizer;
    const ids = tok.vocabulary.ids(tokens);
    const seen = truncate(ids, tok.maxLen, tok.truncating);
    const first = tok.truncating === 'pre' ? ids.length - seen.length : 0;
    const m = seen.length;
    if (maxTokens && m > maxTokens) {
      throw new RangeError(`the model reads ${m} tokens of this text; explanations are capped at ${maxTokens}`);
    }
    const width = Math.min(window, m);
    const rows = [seen];
    for (let j = 0; m && j <= m - width; j++) rows.push([...seen.slice(0, j), ...seen.slice(j + width)]);
    const out = await this._run(rows);
    const probabilities = this.task.probabilities(out);
    const prediction = this.predictions([probabilities[0]])[0];
    const chosen = label ?? prediction.label;
    const column = this.labels.indexOf(chosen);
    const full = probabilities[0][column];
    const drops = probabilities.slice(1).map((row) => full - row[column]);
    const words = tokens.map((token, i) => {
      const k = i - first;
      const isSeen = k >= 0 && k < m;
      let contribution = 0;
      if (isSeen) {
        const lo = Math.max(0, k - width + 1);
        const hi = Math.min(k, m - width);
        let sum = 0;
        for (let j = lo; j <= hi; j++) sum += drops[j];
        contribution = sum / (hi - lo + 1);
      }
      const [start, end] = spans[i];
      return { start, end, text: text.slice(start, end), token, contribution, seen: isSeen };
    });
    return { ...prediction, explained_label: chosen, probability: full, method: 'occlusion', window, offsets: 'utf-16', words };
  }

  /** Release the ONNX Runtime session. */
  async dispose() { await this._session.release?.(); }

  async _outputs(sequences) {
    if (sequences.length === 0) return [];
    if (sequences.length === 1) return this._run(sequences);
    const dynamic = this.manifest.input.dynamic_length;
    const maxLen = this.tokenizer.maxLen;
    const lengths = sequences.map((s) => (dynamic ? s.length : maxLen));
    const out = new Array(sequences.length);
    for (const rows of lengthBatches(lengths)) {
      const values = await this._run(rows.map((i) => sequences[i]));
      rows.forEach((i, k) => { out[i] = values[k]; });
    }
    return out;
  }

  async _run(batch) {
    const dynamic = this.manifest.input.dynamic_length;
    const length = dynamic ? Math.max(1, ...batch.map((s) => s.length)) : this.tokenizer.maxLen;
    const pad = this.manifest.tokenizer.pad_id;
    const ids = padBatch(batch, length, this.tokenizer.padding, pad);
    const feeds = { [this._names.input]: new this._ort.Tensor('int32', ids, [batch.length, length]) };
    const result = (await this._session.run(feeds, [this._names.output]))[this._names.output];
    const data = result.data;
    const width = data.length / batch.length;
    const rows = [];
    for (let r = 0; r < batch.length; r++) rows.push(Array.from(data.subarray(r * width, (r + 1) * width)));
    result.dispose?.();
    return rows;
  }
}
