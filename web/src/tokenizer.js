/**
 * The JavaScript port of edge_infer/tokenizer.py: text -> normalize() -> tokenize() -> ids -> truncate -> pad.
 * Same ids as Python on every text (see test/tokenizer.test.js).
 * @module tokenizer
 */
import { normalize, isAscii } from './normalize.js';
import { WORD_CLASS } from './tables.js';

export { normalize, NORMALIZATION } from './normalize.js';

export const PAD_ID = 0;
export const OOV_ID = 1;
export const PAD_TOKEN = '[PAD]';
export const OOV_TOKEN = '[UNK]';

// Python: r"[^\W_]+|[!?]" with Unicode \w (= str.isalnum(), from this Python's tables).
const TOKEN = new RegExp(`[${WORD_CLASS}]+|[!?]`, 'gu');
const ASCII_TOKEN = /[a-z0-9]+|[!?]/g;

/**
 * Split raw text into normalized word tokens, as Python's `tokenize`.
 * @param {string} text
 * @returns {string[]}
 */
export function tokenize(text) {
  const norm = normalize(text);
  return norm.match(isAscii(norm) ? ASCII_TOKEN : TOKEN) ?? [];
}

/** Token list where the position is the id: 0 is padding, 1 is out-of-vocabulary. */
export class Vocabulary {
  /** @param {string[]} tokens */
  constructor(tokens) {
    if (tokens.length < 2 || tokens[PAD_ID] !== PAD_TOKEN || tokens[OOV_ID] !== OOV_TOKEN) {
      throw new Error(`a vocabulary starts with '${PAD_TOKEN}' and '${OOV_TOKEN}'`);
    }
    this.tokens = tokens;
    /** @type {Map<string, number>} */
    this.index = new Map(tokens.map((t, i) => [t, i]));
  }

  /** @returns {number} */
  get size() { return this.tokens.length; }

  /**
   * The vocabulary file's text (UTF-8, one token a line, '\n' after each).
   * @param {string} text
   * @returns {Vocabulary}
   */
  static fromText(text) {
    const lines = text.split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    return new Vocabulary(lines);
  }

  /** @param {string[]} tokens @returns {number[]} */
  ids(tokens) {
    return tokens.map((t) => this.index.get(t) ?? OOV_ID);
  }
}

/**
 * Keep at most `maxLen` ids: the last ones for "pre", the first ones for "post".
 * @param {number[]} ids @param {number} maxLen @param {'pre'|'post'} truncating
 * @returns {number[]}
 */
export function truncate(ids, maxLen, truncating) {
  if (ids.length <= maxLen) return ids;
  return truncating === 'pre' ? ids.slice(ids.length - maxLen) : ids.slice(0, maxLen);
}

/**
 * Already-truncated sequences as one row-major Int32Array `[sequences.length, length]`.
 * @param {number[][]} sequences @param {number} length @param {'pre'|'post'} padding @param {number} [padId]
 * @returns {Int32Array}
 */
export function padBatch(sequences, length, padding, padId = PAD_ID) {
  const out = new Int32Array(sequences.length * length).fill(padId);
  sequences.forEach((seq, row) => {
    if (seq.length > length) throw new Error(`sequence of ${seq.length} ids does not fit length ${length}`);
    out.set(seq, row * length + (padding === 'post' ? 0 : length - seq.length));
  });
  return out;
}

/** Vocabulary plus the sequence settings of the manifest's `tokenizer`. */
export class Tokenizer {
  /**
   * @param {Vocabulary} vocabulary
   * @param {number} maxLen
   * @param {'pre'|'post'} [padding]
   * @param {'pre'|'post'} [truncating]
   */
  constructor(vocabulary, maxLen, padding = 'post', truncating = 'pre') {
    if (!(maxLen >= 1)) throw new Error('max_len must be positive');
    for (const [name, v] of [['padding', padding], ['truncating', truncating]]) {
      if (v !== 'pre' && v !== 'post') throw new Error(`${name} must be 'pre' or 'post'`);
    }
    Object.assign(this, { vocabulary, maxLen, padding, truncating });
  }

  /** Token ids of one text, truncated to maxLen, not padded. @param {string} text @returns {number[]} */
  ids(text) {
    return truncate(this.vocabulary.ids(tokenize(text)), this.maxLen, this.truncating);
  }

  /** The model's input for texts: Int32Array `[texts.length, length ?? maxLen]`. @param {string[]} texts @param {number} [length] */
  encode(texts, length) {
    return padBatch(texts.map((t) => this.ids(t)), length ?? this.maxLen, this.padding);
  }
}
