/**
 * The text normalization of edge_infer/tokenizer.py (`edge-infer-v1`): tags removed, HTML decoded, NFKC,
 * apostrophes unified, casefolded, contractions expanded.
 * @module normalize
 */
import { CASEFOLD, UNASSIGNED_CLASS, WORD_CLASS } from './tables.js';
import { unescapeHtml } from './unescape.js';

export const NORMALIZATION = 'edge-infer-v1';

// Python: r"</?[a-zA-Z][^<>]{0,100}>" ({0,100} counts code points: 'u' flag).
export const HTML_TAG = /<\/?[a-zA-Z][^<>]{0,100}>/gu;
export const APOSTROPHES = /[\u2019\u2018\u02bc`\u00b4]/g;
const APOSTROPHE_SUFFIX = /'(?:re|ve|ll|m|d|s|t)/g; // Python adds \b; checked by hand (Python's \w is Unicode)
const SUFFIXES = { "'re": ' are', "'ve": ' have', "'ll": ' will', "'m": ' am', "'d": ' would', "'s": '' };
const WHOLE_WORDS = { won: 'will', can: 'can', ain: 'is' }; // + ' not' for the "'t"
const WORD_CHAR = new RegExp(`^[${WORD_CLASS}_]$`, 'u');
const UNASSIGNED = new RegExp(`[${UNASSIGNED_CLASS}]`, 'u');
const UNASSIGNED_SPLIT = new RegExp(`([${UNASSIGNED_CLASS}])`, 'u');
const FOLD = new Map(CASEFOLD);
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** @param {string} text @returns {boolean} Python's str.isascii() */
export function isAscii(text) {
  return !NON_ASCII.test(text);
}

/**
 * Python's `str.casefold()` (full case folding, this Python's Unicode version).
 * @param {string} text
 * @returns {string}
 */
export function casefold(text) {
  if (isAscii(text)) return text.toLowerCase();
  let out = '';
  for (const ch of text) {
    const folded = FOLD.get(ch.codePointAt(0));
    out += folded === undefined ? ch : folded;
  }
  return out;
}

/**
 * Python's `unicodedata.normalize("NFKC", text)`. Code points that Python's Unicode version does not
 * assign are starters without decompositions there, so they are kept as they are and the text between
 * them is normalized on its own: a newer engine (Node 20 knows Unicode 15+) then gives Python's result.
 * @param {string} text
 * @returns {string}
 */
export function nfkc(text) {
  if (!UNASSIGNED.test(text)) return text.normalize('NFKC');
  // split() with a capture group: odd positions are the unassigned code points themselves.
  return text.split(UNASSIGNED_SPLIT).map((part, i) => (i % 2 ? part : part.normalize('NFKC'))).join('');
}

/** @param {string} text @param {number} end UTF-16 index @returns {boolean} the code point ending at `end` is a \w char */
function wordCharBefore(text, end) {
  const cp = text.codePointAt(end - 1);
  const start = cp >= 0xdc00 && cp <= 0xdfff && end >= 2 && /[\ud800-\udbff]/.test(text[end - 2]) ? end - 2 : end - 1;
  return WORD_CHAR.test(String.fromCodePoint(text.codePointAt(start)));
}

/** @param {string} text @param {number} at UTF-16 index @returns {boolean} */
function wordCharAt(text, at) {
  if (at >= text.length) return false;
  return WORD_CHAR.test(String.fromCodePoint(text.codePointAt(at)));
}

/**
 * The contractions of casefolded `text` as sorted, non-overlapping edits [start, end, replacement] (UTF-16
 * indices), as Python's `_contraction_edits`: "won't" is "won" -> "will" and "'t" -> " not".
 * @param {string} text casefolded text
 * @returns {Array<[number, number, string]>}
 */
export function contractionEdits(text) {
  const edits = [];
  APOSTROPHE_SUFFIX.lastIndex = 0;
  for (let m; (m = APOSTROPHE_SUFFIX.exec(text)) !== null;) {
    const start = m.index;
    const suffix = m[0];
    const end = start + suffix.length;
    if (wordCharAt(text, end)) { // no \b after the suffix: Python's finditer moves on one character
      APOSTROPHE_SUFFIX.lastIndex = start + 1;
      continue;
    }
    if (suffix !== "'t") {
      edits.push([start, end, SUFFIXES[suffix]]);
    } else if (start >= 1 && text[start - 1] === 'n') {
      const stem = start >= 3 ? text.slice(start - 3, start) : '';
      if (Object.hasOwn(WHOLE_WORDS, stem) && (start === 3 || !wordCharBefore(text, start - 3))) {
        edits.push([start - 3, start, WHOLE_WORDS[stem]], [start, end, ' not']);
      } else {
        edits.push([start - 1, end, ' not']);
      }
    }
  }
  return edits;
}

/** @param {string} text @param {Array<[number, number, string]>} edits @returns {string} */
export function applyEdits(text, edits) {
  const pieces = [];
  let last = 0;
  for (const [start, end, replacement] of edits) {
    pieces.push(text.slice(last, start), replacement);
    last = end;
  }
  pieces.push(text.slice(last));
  return pieces.join('');
}

/**
 * Contractions, expanded in one pass (see edge_infer/tokenizer.py `_expand_contractions`).
 * @param {string} text casefolded text
 * @returns {string}
 */
export function expandContractions(text) {
  return applyEdits(text, contractionEdits(text));
}

/**
 * Canonical form of raw review text, as Python's `edge_infer.tokenizer.normalize`.
 * @param {string} text
 * @returns {string}
 */
export function normalize(text) {
  if (text.includes('<')) text = text.replace(HTML_TAG, ' ');
  if (text.includes('&')) text = unescapeHtml(text);
  if (!isAscii(text)) text = nfkc(text);
  text = text.replace(APOSTROPHES, "'");
  text = casefold(text);
  if (text.includes("'")) text = expandContractions(text);
  return text;
}
