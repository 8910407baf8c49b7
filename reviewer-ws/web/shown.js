// Airlock reviewer page, part 1: how agent text is drawn. The gateway sends every agent text
// (command, stated reason) in its display form `shown` (docs/reviewer-protocol.md, "Showing
// what will run"); this file draws only that form, marks what arrives without one, and decides
// when a command is too long to show whole. Loaded before app.js, which uses these functions.
'use strict';

// Longer commands are collapsed, and cannot be approved until the reviewer expands them.
const MAX_CHARS = 1000;
const MAX_LINES = 20;
const RANK = { low: 1, medium: 2, high: 3 };
const RISK = ['', 'low', 'medium', 'high'];

// Builds DOM from agent-free structure: children are always text nodes, never HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return e;
}

const fmt = (n) => n.toLocaleString('en-US');

// --- the display form (`shown`) ---------------------------------------------------------

// Characters that must never reach the screen unmarked. The gateway marks them; a text part
// still holding one means the form cannot be trusted (defence in depth), and is not shown.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Zs}]/u;
function usable(form) {
  return !!form && Array.isArray(form.parts) && form.parts.every((p) => Array.isArray(p.at) && (
    typeof p.mark === 'string' || (typeof p.text === 'string' && !INVISIBLE.test(p.text.replace(/[ \n]/g, '')))));
}

// A request can be shown only if its command, and its stated reason when it has one, are.
function displayable(r) {
  return usable(r.shown?.command) && (r.reason == null || usable(r.shown.reason));
}

// The risk level (0–3) of every original character, from the classifier's spans.
function riskLevels(form, reasons) {
  const n = form.parts.reduce((m, p) => Math.max(m, p.at[1]), form.chars || 0);
  const level = new Uint8Array(n);
  for (const r of reasons || []) {
    if (!Array.isArray(r.span)) continue;
    for (let i = Math.max(0, r.span[0]); i < Math.min(r.span[1], n); i++) level[i] = Math.max(level[i], RANK[r.tier] || 0);
  }
  return level;
}

// What fits in maxChars shown characters (a mark counts as its own length, and is never cut)
// and maxLines lines: [part, its characters shown] pairs, and how many characters are left out.
function fit(form, maxChars, maxLines) {
  const pieces = [];
  let used = 0; let total = 0; let lines = 1; let full = true;
  for (const p of form.parts) {
    const chars = Array.from(p.mark ?? p.text);
    total += chars.length;
    if (!full) continue;
    let k = 0;
    if (p.mark !== undefined) k = used + chars.length <= maxChars ? chars.length : 0;
    else {
      while (k < chars.length && used + k < maxChars) {
        if (chars[k] === '\n' && ++lines > maxLines) break;
        k++;
      }
    }
    if (k) pieces.push([p, chars.slice(0, k)]);
    used += k;
    full = k === chars.length;
  }
  return { pieces, hidden: total - used };
}

// Appends the form to `box`: text as text (risky spans in <mark>), each mark as a loud,
// labelled chip that cannot pass for command text. Returns the characters left out.
function renderForm(box, form, reasons, collapsed) {
  const level = riskLevels(form, reasons);
  const maxOver = (a, b) => level.subarray(a, Math.max(b, a + 1)).reduce((m, x) => Math.max(m, x), 0);
  const { pieces, hidden } = collapsed ? fit(form, MAX_CHARS, MAX_LINES) : fit(form, Infinity, Infinity);
  for (const [p, chars] of pieces) {
    if (p.mark !== undefined) {
      const l = maxOver(p.at[0], p.at[1]);
      box.append(el('span', { class: `mark${l ? ` risk-${RISK[l]}` : ''}`, title: p.why || 'not shown as typed' }, p.mark));
      continue;
    }
    for (let i = 0; i < chars.length;) {
      const l = level[p.at[0] + i] || 0;
      let j = i + 1;
      while (j < chars.length && (level[p.at[0] + j] || 0) === l) j++;
      const s = chars.slice(i, j).join('');
      box.append(l ? el('mark', { class: `risk-${RISK[l]}` }, s) : document.createTextNode(s));
      i = j;
    }
  }
  return hidden;
}

function flagList(form, extra) {
  const flags = form?.flags || [];
  return flags.length ? el('ul', { class: `flags ${extra}` }, ...flags.map((f) => el('li', {}, f.text))) : '';
}

// One line of at most `max` characters (marks kept whole), for status lines, notifications
// and dialogs.
function excerpt(form, max = 60) {
  if (!usable(form)) return '(not displayable)';
  let out = '';
  for (const p of form.parts) {
    const piece = p.mark ?? p.text.replace(/\n/g, ' ⏎ ');
    const room = max - Array.from(out).length;
    if (Array.from(piece).length <= room) { out += piece; continue; }
    if (p.mark === undefined) out += Array.from(piece).slice(0, room).join('');
    return `${out}…`;
  }
  return out;
}
const quoted = (r) => (r ? `"${excerpt(r.shown?.command)}"` : 'a request');

// How many characters of r's command are not on screen (0: all of it is).
function hiddenChars(r) {
  return displayable(r) && !state.expanded.has(r.id) ? fit(r.shown.command, MAX_CHARS, MAX_LINES).hidden : 0;
}

// The command block, collapsed unless short or expanded, followed by the "more" line.
function commandView(r, onExpand) {
  const pre = el('pre', { class: 'command' });
  if (!usable(r.shown?.command)) return el('pre', { class: 'command undisplayable' }, '(cannot display this request safely)');
  const hidden = renderForm(pre, r.shown.command, r.reasons, !state.expanded.has(r.id));
  if (!hidden) return pre;
  const more = el('div', { class: 'more', role: 'button', tabindex: '0', onclick: (e) => { e.stopPropagation(); onExpand(); } },
    `… ${fmt(hidden)} more characters — press E or click to expand`);
  const box = document.createDocumentFragment();
  box.append(pre, more);
  return box;
}

// Server text that can quote the agent but comes without a display form (classifier
// reasons, session commands, recording markers): marked here the same way — runs of spaces,
// non-Latin letters inside Latin words, and every invisible, control or unusual space
// character — so nothing reaches the screen unmarked.
const codePoint = (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`;
const invisibleMarked = (text) => text.replace(/[^\S \n]|[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => (c === '\n' ? c : codePoint(c)));
function marked(text) {
  return invisibleMarked(String(text ?? '')
    .replace(/ {5,}/g, (run) => `⟨${fmt(run.length)} spaces⟩`)
    .replace(/[\p{L}\p{M}\p{N}_]+/gu, (w) => (/\p{Script=Latin}/u.test(w) ? w.replace(/(?!\p{Script=Latin})\p{L}/gu, codePoint) : w)));
}

// A session's command, marked and cut (a record: nothing is approved from it).
function plainSafe(text) {
  const chars = Array.from(marked(text));
  return chars.length > 300 ? `${chars.slice(0, 300).join('')}… (${fmt(chars.length - 300)} more characters)` : chars.join('');
}
