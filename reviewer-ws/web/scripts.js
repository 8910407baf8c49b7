// Airlock reviewer page: the files a command runs (`bash deploy.sh`, `python3 x.py`, `make`),
// as the gateway read them from the target (docs/reviewer-protocol.md, "Scripts"). For each:
// path, kind, size, SHA-256 (short; the whole hash on hover, a click copies it), why it was not
// read if it was not, its content with line numbers and the risky lines in their tier's
// colour with the classifier's words under them, and the diff against the version a
// whitelist entry approved. The agent wrote these files: every line is drawn from the
// gateway's display form (`shown`) through shown.js, as text, never HTML.
'use strict';

const SHA_HEX = /^[0-9a-f]{64}$/;
const SHORT_SHA = 12;

// A script line arrives as a string (nothing to mark) or as a one-line display form. A string
// holding a character that needs a mark, or a form holding a line feed, is not trusted.
function lineUsable(l) {
  if (typeof l === 'string') return !INVISIBLE.test(l.replace(/ /g, ''));
  return usable(l) && l.parts.every((p) => typeof p.mark === 'string' || !p.text.includes('\n'));
}

// A request with scripts can be shown (and approved here) only if every line of each can.
function scriptsDisplayable(r) {
  return (r.scripts || []).every((s) => s.shown && Array.isArray(s.shown.content)
    && [...s.shown.content, ...(s.shown.diff || [])].every(lineUsable));
}

function lineInto(box, l) {
  if (typeof l === 'string') box.append(l);
  else renderForm(box, l, [], false);
  return box;
}

// The first character of a diff line (`+`, `-`, `@`, ` `), from its display form.
function diffSign(l) {
  const first = typeof l === 'string' ? l : l.parts[0]?.text ?? '';
  return first.startsWith('+++') || first.startsWith('---') ? 'head' : ({ '+': 'add', '-': 'del', '@': 'hunk' })[first[0]] || 'ctx';
}

// `sha256 ab12cd34ef56…`: the whole hash on hover, copied on click.
function shaView(label, hash) {
  if (!SHA_HEX.test(hash || '')) return el('span', { class: 'sha muted' }, `${label} (none)`);
  const copy = (e) => {
    e.stopPropagation();
    navigator.clipboard?.writeText(hash).then(() => status(`copied ${label} ${hash}`), () => status(`${label} ${hash}`));
  };
  return el('button', { type: 'button', class: 'sha', title: `${label} ${hash} (click to copy)`, 'data-sha': hash, onclick: copy },
    `${label} ${hash.slice(0, SHORT_SHA)}…`);
}

// The diff against the approved version, added and removed lines coloured.
function diffView(s) {
  const box = el('div', { class: 'script-diff' },
    el('p', { class: 'script-changed' }, '⚠ changed since the approved version ', shaView('sha256', s.previous.sha256),
      ' — the diff from it:'));
  const lines = s.shown.diff || [];
  if (!lines.length) box.append(el('p', { class: 'muted' }, '(the approved text is no longer stored)'));
  else box.append(el('div', { class: 'diff' }, ...lines.map((l) => lineInto(el('div', { class: `dl ${diffSign(l)}` }), l))));
  return box;
}

// The content, numbered; risky lines highlighted by tier, each with what the classifier said.
function contentView(s) {
  const content = s.shown.content || [];
  const risky = new Map();
  for (const l of s.lines || []) risky.set(l.line, [...(risky.get(l.line) || []), l]);
  const rows = [];
  content.forEach((l, i) => {
    const why = risky.get(i + 1) || [];
    const top = why.reduce((m, w) => Math.max(m, RANK[w.tier] || 0), 0);
    rows.push(el('div', { class: `sl${top ? ` risky risk-${RISK[top]}` : ''}`, 'data-line': String(i + 1) },
      el('span', { class: 'ln' }, String(i + 1)), lineInto(el('span', { class: 'code' }), l)));
    for (const w of why) rows.push(el('div', { class: `why risk-${w.tier}` }, `↳ [${w.tier}] ${marked(w.rule)}: ${marked(w.text)}`));
  });
  // Risky lines past the end of the text (should not happen): said, not dropped.
  const past = [...risky.keys()].filter((n) => n > content.length || n < 1).flatMap((n) => risky.get(n));
  const notes = past.map((w) => el('div', { class: `why risk-${w.tier}` }, `line ${w.line} [${w.tier}] ${marked(w.rule)}: ${marked(w.text)}`));
  if (!content.length) return el('p', { class: 'muted' }, s.content == null ? '(no content to show)' : '(empty file)', ...notes);
  const box = el('div', { class: 'script-code', tabindex: '0' }, ...rows);
  box.addEventListener('scroll', () => { box.dataset.top = String(box.scrollTop); });
  const head = el('p', { class: 'muted script-lines' },
    `${fmt(content.length)} line${content.length === 1 ? '' : 's'}${risky.size ? `, risky: ${[...risky.keys()].sort((a, b) => a - b).map((n) => `line ${n}`).join(', ')}` : ''}`);
  return el('div', {}, head, box, ...notes);
}

function scriptView(s) {
  if (!s.shown || !scriptsDisplayable({ scripts: [s] })) {
    return el('section', { class: 'script' }, el('p', { class: 'script-problem' }, `⚠ ${marked(s.shown?.path ?? s.path)}: cannot display this file safely`));
  }
  const head = el('div', { class: 'script-head' },
    el('span', { class: 'script-kind' }, marked(s.kind)),
    el('code', { class: 'script-path' }, marked(s.shown.path)),
    s.shown.resolved !== s.shown.path ? el('span', { class: 'muted script-resolved' }, `at ${marked(s.shown.resolved)}`) : '',
    el('span', { class: 'muted script-size' }, `${fmt(Number(s.size) || 0)} bytes`),
    shaView('sha256', s.sha256));
  return el('section', { class: 'script', 'data-path': s.shown.path }, head,
    s.shown.problem ? el('p', { class: 'script-problem' }, `⚠ ${marked(s.shown.path)}: ${marked(s.shown.problem)}`) : '',
    flagList(s.shown, 'script-flags'),
    s.previous ? diffView(s) : '',
    contentView(s));
}

// Built once per request (a 256 KiB script is thousands of rows; the queue redraws often), and
// each box's scroll position kept when the card is drawn again.
const scriptViews = new Map();
function scriptsView(r) {
  if (!r.scripts?.length) return '';
  for (const id of scriptViews.keys()) if (!pending(id)) scriptViews.delete(id);
  let box = scriptViews.get(r.id);
  if (!box) {
    box = el('div', { class: 'scripts' },
      el('p', { class: 'scripts-title' }, `runs ${r.scripts.length === 1 ? 'this file' : `these ${r.scripts.length} files`} (as read from ${r.target}):`),
      ...r.scripts.map(scriptView));
    scriptViews.set(r.id, box);
  }
  queueMicrotask(() => {
    for (const c of box.querySelectorAll('.script-code')) c.scrollTop = Number(c.dataset.top || 0);
  });
  return box;
}
