/**
 * The model-folder contract (docs/artifacts.md) as edge_infer/model_folder.py checks it: the manifest's fields,
 * then the loaded graph's signature against them. Every check of the Python loader is here, with its message;
 * tests/bad_manifests.json holds both runtimes to the same refusals.
 * @module manifest
 */
import { NORMALIZATION } from './normalize.js';
import { Task, isModelThreshold } from './task.js';

export const FORMAT = 'edge-infer-model';
export const FORMAT_VERSION = 1;
export const MANIFEST_NAME = 'manifest.json';
export const MAX_MANIFEST_BYTES = 1 << 20;
export const INPUT_DTYPE = 'int32';
export const PAD_ID = 0;
export const OOV_ID = 1;
export const MIN_OPSET = 13;
export const FILE_KEYS = ['fp32', 'int8', 'vocab'];
const SIDES = ['pre', 'post'];
const PACKAGES = ['tensorflow', 'tf2onnx', 'onnx', 'onnxruntime'];

/** A model folder that cannot be used; `path` names the file at fault. */
export class ModelError extends Error {
  /** @param {string} path @param {string} reason */
  constructor(path, reason) {
    super(`${path}: ${reason}`);
    this.name = 'ModelError';
    this.path = path;
    this.reason = reason;
  }
}

/** manifest.json is missing, not JSON, or does not follow the contract. */
export class ManifestError extends ModelError {
  constructor(path, reason) { super(path, reason); this.name = 'ManifestError'; }
}

/** A file that does not match the manifest (size, sha256, graph signature, vocabulary). */
export class IntegrityError extends ModelError {
  constructor(path, reason) { super(path, reason); this.name = 'IntegrityError'; }
}

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (obj, key) => (Object.hasOwn(obj, key) ? obj[key] : undefined);
// JSON.parse cannot tell 200.0 from 200 (Python's json can): an integer is a safe integer here.
const KINDS = {
  object: [isObject, 'an object'],
  list: [Array.isArray, 'a list'],
  string: [(v) => typeof v === 'string', 'a string'],
  boolean: [(v) => typeof v === 'boolean', 'a boolean'],
  integer: [Number.isSafeInteger, 'an integer'],
  number: [(v) => typeof v === 'number' && Number.isFinite(v), 'a number'],
};

/** Python's `_Reader`: a missing or mistyped field becomes a ManifestError naming it. */
function reader(where) {
  const check = (ok, why) => { if (!ok) throw new ManifestError(where, why); };
  const get = (obj, key, kind, prefix = '') => {
    const value = own(obj, key);
    const [test, name] = KINDS[kind];
    check(test(value), `${prefix}${key} is missing or not ${name}`);
    return value;
  };
  return { check, get };
}

/**
 * Check a parsed manifest.json field by field as Python's `Manifest.from_dict` does; returns it.
 * @param {any} m
 * @param {string} where the manifest's path or URL, for the error
 * @throws {ManifestError}
 */
export function checkManifest(m, where) {
  const { check, get } = reader(where);
  check(isObject(m), 'the manifest is not a JSON object');
  check(own(m, 'format') === FORMAT, `format is not '${FORMAT}'`);
  check(own(m, 'format_version') === FORMAT_VERSION,
    `format_version ${JSON.stringify(own(m, 'format_version'))} is not supported (this runtime reads ${FORMAT_VERSION})`);
  check(get(m, 'name', 'string') !== '', 'name must not be empty');
  const labels = get(m, 'labels', 'list');
  check(labels.length >= 2 && labels.every((l) => typeof l === 'string' && l !== '') && new Set(labels).size === labels.length,
    'labels must be two or more different non-empty strings');
  const threshold = get(m, 'threshold', 'number');
  check(isModelThreshold(threshold), 'threshold must be within (0, 1)');
  checkTokenizer(get(m, 'tokenizer', 'object'), check, get);
  const input = get(m, 'input', 'object');
  const output = get(m, 'output', 'object');
  check(get(input, 'dtype', 'string', 'input.') === INPUT_DTYPE, `input.dtype must be '${INPUT_DTYPE}'`);
  get(input, 'dynamic_length', 'boolean', 'input.');
  checkFiles(get(m, 'files', 'object'), check, get);
  check(get(m, 'opset', 'integer') >= MIN_OPSET, `opset must be at least ${MIN_OPSET}`);
  const versions = get(m, 'versions', 'object');
  check(Object.values(versions).every((v) => typeof v === 'string'), 'versions must map names to strings');
  for (const name of PACKAGES) check(Object.hasOwn(versions, name), `versions.${name} is missing`);
  const training = get(m, 'training', 'object');
  get(training, 'preset', 'string', 'training.');
  get(training, 'settings', 'object', 'training.');
  const accuracy = get(training, 'test_accuracy', 'number', 'training.');
  check(accuracy >= 0 && accuracy <= 1, 'training.test_accuracy must be within [0, 1]');
  const parity = get(m, 'parity', 'object');
  check(get(parity, 'reviews', 'integer', 'parity.') >= 1, 'parity.reviews must be positive');
  check(get(parity, 'max_abs_diff', 'number', 'parity.') >= 0, 'parity.max_abs_diff must not be negative');
  const agreement = get(parity, 'label_agreement', 'number', 'parity.');
  check(agreement >= 0 && agreement <= 1, 'parity.label_agreement must be in [0, 1]');
  check(Object.hasOwn(get(parity, 'int8', 'object', 'parity.'), 'refused'), 'parity.int8.refused is missing');
  check(!Object.hasOwn(m, 'structure') || isObject(m.structure), 'structure must be an object');
  get(input, 'name', 'string', 'input.');
  get(output, 'name', 'string', 'output.');
  return m;
}

function checkTokenizer(t, check, get) {
  const p = 'tokenizer.';
  const normalization = get(t, 'normalization', 'string', p);
  const maxLen = get(t, 'max_len', 'integer', p);
  const padding = get(t, 'padding', 'string', p);
  const truncating = get(t, 'truncating', 'string', p);
  const vocabSize = get(t, 'vocab_size', 'integer', p);
  const padId = get(t, 'pad_id', 'integer', p);
  const oovId = get(t, 'oov_id', 'integer', p);
  check(normalization === NORMALIZATION,
    `tokenizer.normalization is ${JSON.stringify(normalization)}; this runtime implements '${NORMALIZATION}'`);
  check(maxLen >= 1, 'tokenizer.max_len must be positive');
  check(SIDES.includes(padding), "tokenizer.padding must be 'pre' or 'post'");
  check(SIDES.includes(truncating), "tokenizer.truncating must be 'pre' or 'post'");
  check(padId === PAD_ID && oovId === OOV_ID, `tokenizer.pad_id/oov_id must be ${PAD_ID}/${OOV_ID}`);
  check(vocabSize >= 3, 'tokenizer.vocab_size must be at least 3');
}

function checkFiles(files, check, get) {
  for (const [key, entry] of Object.entries(files)) {
    const p = `files.${key}.`;
    check(FILE_KEYS.includes(key), `files.${key} is not one of ${FILE_KEYS.join(', ')}`);
    check(isObject(entry), `files.${key} is not an object`);
    check(Object.keys(entry).every((k) => ['path', 'sha256', 'size'].includes(k)), `files.${key} has unknown fields`);
    const name = get(entry, 'path', 'string', p);
    check(name !== '' && !/[/\\\0]/.test(name) && name !== '.' && name !== '..',
      `files.${key}.path must be a file name inside the model folder`);
    check(/^[0-9a-f]{64}$/.test(get(entry, 'sha256', 'string', p)), `files.${key}.sha256 is not a lowercase sha256 hex digest`);
    check(get(entry, 'size', 'integer', p) >= 1, `files.${key}.size must be positive`);
  }
  check(Object.hasOwn(files, 'vocab'), 'files.vocab is missing');
  check(Object.hasOwn(files, 'fp32') || Object.hasOwn(files, 'int8'), 'files lists no ONNX model (fp32 or int8)');
}

/**
 * The loaded graph against the manifest, as Python's `check_signature`: one int32 `[batch, length]` input named
 * `input.name` (length symbolic when `dynamic_length`, else `max_len`), a float `[batch, classes]` output named
 * `output.name` (classes: 1 for two labels, else the number of labels). Returns the input and output names.
 * @param {{inputNames: string[], outputNames: string[], inputMetadata?: any[], outputMetadata?: any[]}} session
 * @param {any} manifest a checked manifest
 * @param {string} location the ONNX file, for the error
 * @throws {IntegrityError}
 */
export function checkGraph(session, manifest, location) {
  const fail = (why) => { throw new IntegrityError(location, why); };
  const input = manifest.input.name;
  const output = manifest.output.name;
  const names = (list) => JSON.stringify([...list].sort()).replaceAll('"', "'").replaceAll(',', ', ');
  if (session.inputNames.length !== 1 || session.inputNames[0] !== input) {
    fail(`expected one input named '${input}', the graph has ${names(session.inputNames)}`);
  }
  const out = session.outputNames.indexOf(output);
  if (out < 0) fail(`has no output named '${output}' (the graph has ${names(session.outputNames)})`);
  const inMeta = session.inputMetadata?.[0];
  const outMeta = session.outputMetadata?.[out];
  if (!inMeta?.isTensor || !outMeta?.isTensor) fail('ONNX Runtime gives no tensor shapes for its input and output');
  const shape = (dims) => `[${dims.map((d) => (typeof d === 'number' ? d : `'${d}'`)).join(', ')}]`;
  if (inMeta.type !== INPUT_DTYPE) fail(`input '${input}' is ${inMeta.type}, not ${INPUT_DTYPE}`);
  if (inMeta.shape.length !== 2) fail(`input '${input}' has shape ${shape(inMeta.shape)}, not [batch, length]`);
  const length = inMeta.shape[1];
  const maxLen = manifest.tokenizer.max_len;
  if (manifest.input.dynamic_length && typeof length === 'number') {
    fail(`input '${input}' has a fixed length ${length}; the manifest says any length`);
  }
  if (!manifest.input.dynamic_length && length !== maxLen) {
    fail(`input '${input}' has length ${length}; the manifest says max_len ${maxLen}`);
  }
  if (!['float32', 'float64'].includes(outMeta.type)) fail(`output '${output}' is ${outMeta.type}, not a float tensor`);
  const classes = Task.of(manifest).width;
  if (outMeta.shape.length !== 2 || outMeta.shape[1] !== classes) {
    fail(`output '${output}' has shape ${shape(outMeta.shape)}, not [batch, ${classes}]`);
  }
  return { input, output };
}
