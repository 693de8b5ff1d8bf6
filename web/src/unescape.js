/**
 * Python's html.unescape(), ported rule for rule (HTML5 named references, with and without ';',
 * the longest-prefix rule for unterminated names, numeric references and their invalid-code-point table).
 * @module unescape
 */
import { HTML5, INVALID_CHARREFS, INVALID_CODEPOINTS } from './tables.js';

const NAMED = new Map(Object.entries(HTML5));
const INVALID_REFS = new Map(Object.entries(INVALID_CHARREFS).map(([k, v]) => [Number(k), v]));
const INVALID_CPS = new Set(INVALID_CODEPOINTS);
// Python: r'&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)' (repetition counts code points: 'u' flag)
export const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function numeric(digits, radix) {
  const text = digits.endsWith(';') ? digits.slice(0, -1) : digits;
  // Python's int() is exact; anything past 0x10FFFF is out of range whatever its precision here.
  const num = text.length > 12 ? Infinity : parseInt(text, radix);
  if (INVALID_REFS.has(num)) return INVALID_REFS.get(num);
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\uFFFD';
  if (INVALID_CPS.has(num)) return '';
  return String.fromCodePoint(num);
}

function replace(_match, s) {
  if (s[0] === '#') {
    return s[1] === 'x' || s[1] === 'X' ? numeric(s.slice(2), 16) : numeric(s.slice(1), 10);
  }
  const whole = NAMED.get(s);
  if (whole !== undefined) return whole;
  // Longest matching prefix of at least 2 code points, as Python does (s[:x] for x = len-1 .. 2).
  const cps = Array.from(s);
  for (let x = cps.length - 1; x > 1; x--) {
    const head = cps.slice(0, x).join('');
    const value = NAMED.get(head);
    if (value !== undefined) return value + cps.slice(x).join('');
  }
  return '&' + s;
}

/**
 * Decode HTML character references exactly as Python's `html.unescape`.
 * @param {string} text
 * @returns {string}
 */
export function unescapeHtml(text) {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, replace);
}
