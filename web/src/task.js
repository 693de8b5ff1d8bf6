/**
 * THE task of a model, as Python's edge_infer/task.py: labels, binary or N classes, the output width, the
 * threshold and its range, the decision rule and the empty-text rule. Shared vectors: tests/task_vectors.json.
 * @module task
 */
import { SPACE_CLASS } from './tables.js';

const BLANK = new RegExp(`^[${SPACE_CLASS}]*$`, 'u');

/** The empty-text rule (Python's `not t or t.isspace()`): an empty or whitespace-only text cannot be classified. */
export function isBlank(text) { return BLANK.test(text); }

/** Why `text` cannot be classified under the empty-text rule, or null. */
export function blankError(text) {
  if (text === '') return 'empty text';
  return isBlank(text) ? 'no text (only whitespace)' : null;
}

/** The threshold range check: a number (not a string or a bool) from 0 to 1, both included (not NaN). */
export function isThreshold(value) { return typeof value === 'number' && value >= 0 && value <= 1; }

/** A manifest's own threshold: as isThreshold, but strictly between 0 and 1. */
export function isModelThreshold(value) { return isThreshold(value) && value > 0 && value < 1; }

/** What a model's output means: `labels` in class order and, for two labels, the `threshold`. */
export class Task {
  /**
   * @param {string[]} labels
   * @param {number} threshold
   */
  constructor(labels, threshold) {
    this.labels = labels;
    this.threshold = threshold;
  }

  /** The task of a checked manifest. */
  static of(manifest) { return new Task(manifest.labels, manifest.threshold); }

  /** Two labels: the score is P(labels[1]) and the threshold decides; else the most probable label wins. */
  get binary() { return this.labels.length === 2; }

  /** Columns of the ONNX output: 1 for two labels (P(labels[1])), else one per label. */
  get width() { return this.binary ? 1 : this.labels.length; }

  /**
   * The threshold to decide with: the model's for undefined/null, else `value` after the range check.
   * @throws {RangeError} for a model of three or more labels, or a value that is not a number from 0 to 1
   */
  checkThreshold(value) {
    if (value === undefined || value === null) return this.threshold;
    if (!this.binary) throw new RangeError('threshold applies to two-label models only');
    if (!isThreshold(value)) throw new RangeError('threshold must be a number from 0 to 1');
    return value;
  }

  /** The model's output rows as class-probability rows. */
  probabilities(outputs) { return this.binary ? outputs.map(([p]) => [1 - p, p]) : outputs; }

  /**
   * The decision rule on one row of class probabilities: `{index, score}` (see Python's Task.decide).
   * @param {number[]} row
   * @param {number} [cut] a threshold already returned by checkThreshold (two labels)
   */
  decide(row, cut = this.threshold) {
    if (this.binary) return { index: row[1] >= cut ? 1 : 0, score: row[1] };
    let best = 0;
    row.forEach((p, i) => { if (p > row[best]) best = i; });
    return { index: best, score: row[best] };
  }

  /** One line, as `edge-infer info` prints it. */
  describe() {
    if (this.binary) {
      return `${this.labels[0]} / ${this.labels[1]}  (score = P(${this.labels[1]}), threshold ${formatG(this.threshold)})`;
    }
    return `${this.labels.join(' / ')}  (${this.labels.length} classes: the most probable wins)`;
  }
}

/** Python's `f"{x:g}"` for a threshold in (0, 1): 6 significant digits, no trailing zeros. */
function formatG(x) {
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4) return x.toExponential(5).replace(/\.?0+e/, 'e').replace(/e([+-])(\d)$/, 'e$10$2');
  return String(Number(x.toPrecision(6)));
}
