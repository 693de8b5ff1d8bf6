/**
 * The parts of the model-folder contract (docs/artifacts.md, edge_infer/model_folder.py) the web runtime reads.
 * @module manifest
 */
import { NORMALIZATION } from './normalize.js';

export const FORMAT = 'edge-infer-model';
export const FORMAT_VERSION = 1;

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

/** A file that does not match the manifest (size, sha256, graph signature, vocabulary). */
export class IntegrityError extends ModelError {
  constructor(path, reason) { super(path, reason); this.name = 'IntegrityError'; }
}

const SIDES = ['pre', 'post'];
const SAFE_NAME = /^[^/\\]+$/;

/**
 * Check a parsed manifest.json enough to run it safely; returns it.
 * @param {any} m
 * @param {string} where
 */
export function checkManifest(m, where) {
  const fail = (why) => { throw new ModelError(where, why); };
  if (!m || typeof m !== 'object') fail('not a JSON object');
  if (m.format !== FORMAT) fail(`format is ${JSON.stringify(m.format)}, not ${FORMAT}`);
  if (m.format_version !== FORMAT_VERSION) fail(`format_version ${m.format_version} is not supported`);
  if (!Array.isArray(m.labels) || m.labels.length < 2) fail('labels: at least two');
  const t = m.tokenizer ?? {};
  if (t.normalization !== NORMALIZATION) fail(`tokenizer.normalization ${JSON.stringify(t.normalization)} is not ${NORMALIZATION}`);
  if (!Number.isInteger(t.max_len) || t.max_len < 1) fail('tokenizer.max_len must be a positive integer');
  if (!SIDES.includes(t.padding) || !SIDES.includes(t.truncating)) fail('tokenizer.padding/truncating: pre or post');
  for (const [key, f] of Object.entries(m.files ?? {})) {
    if (!f || typeof f.path !== 'string' || !SAFE_NAME.test(f.path) || f.path === '.' || f.path === '..') {
      fail(`files.${key}.path must be a file name inside the model folder`);
    }
    if (!/^[0-9a-f]{64}$/.test(f.sha256 ?? '')) fail(`files.${key}.sha256 is not a sha256`);
  }
  if (!m.files?.fp32 || !m.files?.vocab) fail('files: fp32 and vocab are required');
  return m;
}
