/**
 * Node entry point: the classifier on onnxruntime-node, files from disk, sha256 from node:crypto.
 * @module node
 */
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { SentimentClassifier as Core } from './classifier.js';

/** @type {import('./classifier.js').Platform} */
export const platform = {
  ort,
  read: async (file) => new Uint8Array(await readFile(file)),
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

export { ModelError, IntegrityError } from './manifest.js';
export * from './tokenizer.js';
