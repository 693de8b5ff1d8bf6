/**
 * Length-sorted, token-budget batching: edge_infer/inference.py `length_batches`, same constants.
 * @module batching
 */
export const BATCH_TOKENS = 32768;
export const MAX_BATCH_ROWS = 256;

/**
 * Indices grouped into batches: ascending length (stable), each within `batchTokens` padded tokens.
 * @param {number[]} lengths
 * @param {number} [batchTokens]
 * @param {number} [maxRows]
 * @returns {number[][]}
 */
export function lengthBatches(lengths, batchTokens = BATCH_TOKENS, maxRows = MAX_BATCH_ROWS) {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b]);
  const batches = [];
  let rows = [];
  for (const i of order) {
    if (rows.length && ((rows.length + 1) * Math.max(1, lengths[i]) > batchTokens || rows.length === maxRows)) {
      batches.push(rows);
      rows = [];
    }
    rows.push(i);
  }
  if (rows.length) batches.push(rows);
  return batches;
}
