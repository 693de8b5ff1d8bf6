/**
 * Node entry point: the classifier on onnxruntime-node, files from disk, sha256 from node:crypto.
 * @module node
 */
import { constants, open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { SentimentClassifier as Core } from './classifier.js';

function kind(info) {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a plain file';
}

/**
 * The first `limit + 1` bytes (at most) of `file`, if it is a regular file (a link to one is fine), as Python's
 * `open_regular`: opened non-blocking, so a FIFO never blocks, and checked with fstat on the open handle, so the
 * file checked is the file read. A FIFO, a device or a folder throws an Error with code 'ENOTREGULAR'.
 * @param {string} file
 * @param {number} limit
 * @returns {Promise<Uint8Array>}
 */
export async function readRegular(file, limit) {
  const handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw Object.assign(new Error(`not a regular file (${kind(info)})`), { code: 'ENOTREGULAR' });
    // one byte more than expected shows a longer file; a file that grew since fstat reads short, also a mismatch
    const bytes = new Uint8Array(Math.min(limit, info.size) + 1);
    let filled = 0;
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return bytes.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/** @type {import('./classifier.js').Platform} */
export const platform = {
  ort,
  read: readRegular,
  sha256: async (bytes) => createHash('sha256').update(bytes).digest('hex'),
  join: (base, name) => path.join(base.endsWith('manifest.json') ? path.dirname(base) : base, name),
  sessionOptions: { executionMode: 'sequential', graphOptimizationLevel: 'all', interOpNumThreads: 1, logSeverityLevel: 3 },
};

/** The classifier under Node. */
export class SentimentClassifier extends Core {
  /**
   * Load and verify a model folder (or its manifest.json): sha256 of the vocabulary and the ONNX file first.
   * @param {string} location a folder or manifest.json path
   * @param {{quantized?: boolean, threads?: number}} [options] quantized: the int8 model; threads: intra-op threads
   * @returns {Promise<Core>}
   */
  static async load(location, { quantized = false, threads } = {}) {
    const p = threads ? { ...platform, sessionOptions: { ...platform.sessionOptions, intraOpNumThreads: threads } } : platform;
    return Core.loadWith(p, String(location), { quantized });
  }
}

export { ModelError, ManifestError, IntegrityError } from './manifest.js';
export * from './tokenizer.js';
export { tokenizeWithOffsets } from './offsets.js';
