// Airlock reviewer page. Speaks the documented WebSocket protocol (docs/reviewer-protocol.md)
// and the read-only /api endpoints. Everything shown that came from an agent is inserted as
// text, never as HTML.
'use strict';

const TOKEN_KEY = 'airlock-reviewer-token';
const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  me: '',
  ws: null,
  queue: [],          // newest first
  selected: 0,
  view: 'queue',
  retry: 0,           // reconnect attempts since the last good connection
  screens: new Map(), // request id -> last screen text
  player: null,
};

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

// The last few events, newest first, so an ack is not hidden by the broadcast after it.
const recent = [];
function status(msg) {
  recent.unshift(`${new Date().toLocaleTimeString()} ${msg}`);
  recent.length = Math.min(recent.length, 3);
  $('status').textContent = recent.join('  ·  ');
}

function when(ms) { return ms ? new Date(ms).toLocaleString() : ''; }

function left(ms) {
  const s = Math.max(0, Math.round((ms - Date.now()) / 1000));
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

// --- sign-in and connection --------------------------------------------------------------

function showSignin(error) {
  $('signin-view').hidden = false;
  $('queue-view').hidden = true;
  $('history-view').hidden = true;
  $('tabs').hidden = true;
  $('signout').hidden = true;
  $('signin-error').textContent = error || '';
  $('who').textContent = '';
}

function signOut(error) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  showSignin(error);
}

function connect() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const ws = new WebSocket(url);
  state.ws = ws;
  $('conn').textContent = 'connecting…';
  ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: state.token }));
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { status('unreadable message from the gateway'); return; }
    onMessage(m);
  };
  ws.onclose = () => {
    if (!state.token) return;
    const wait = Math.min(30, 2 ** state.retry);
    state.retry += 1;
    $('conn').textContent = `disconnected — retrying in ${wait}s`;
    $('conn').classList.add('down');
    setTimeout(() => { if (state.token) connect(); }, wait * 1000);
  };
}

function onMessage(m) {
  switch (m.type) {
    case 'hello':
      state.me = m.reviewer;
      state.retry = 0;
      $('who').textContent = `signed in as ${m.reviewer}`;
      $('conn').textContent = 'live';
      $('conn').classList.remove('down');
      $('signin-view').hidden = true;
      $('tabs').hidden = false;
      $('signout').hidden = false;
      setView(state.view);
      break;
    case 'snapshot':
      state.queue = m.requests.slice().reverse();
      state.selected = Math.min(state.selected, Math.max(0, state.queue.length - 1));
      render();
      break;
    case 'request':
      state.queue.unshift(m);
      state.selected = 0;
      render();
      status(`new request from ${m.agent} on ${m.target}`);
      break;
    case 'vote': {
      const r = state.queue.find((q) => q.id === m.id);
      if (r) { r.approvals = m.approvals; render(); }
      break;
    }
    case 'resolved':
      state.queue = state.queue.filter((q) => q.id !== m.id);
      state.selected = Math.min(state.selected, Math.max(0, state.queue.length - 1));
      render();
      status(`${m.id} ${m.outcome} by ${m.by}`);
      break;
    case 'ack':
      status(`${m.id}: ${m.result}${m.whitelisted ? ` — remembered as whitelist entry ${m.whitelisted}` : ''}`);
      break;
    case 'error':
      if (m.code === 'bad_token' || m.code === 'unauthorized') { signOut('That token was refused.'); return; }
      status(`error${m.id ? ` on ${m.id}` : ''}: ${m.message}`);
      break;
    default:
      break;
  }
}

// --- queue -------------------------------------------------------------------------------

// The command with the classifier's spans marked (spans are character offsets).
function highlighted(command, reasons) {
  const chars = Array.from(command);
  const rank = { low: 1, medium: 2, high: 3 };
  const level = new Array(chars.length).fill(0);
  for (const r of reasons) {
    if (!r.span) continue;
    const [s, e] = r.span;
    for (let i = Math.max(0, s); i < Math.min(e, chars.length); i++) level[i] = Math.max(level[i], rank[r.tier] || 0);
  }
  const pre = el('pre', { class: 'command' });
  let i = 0;
  while (i < chars.length) {
    let j = i;
    while (j < chars.length && level[j] === level[i]) j++;
    const text = chars.slice(i, j).join('');
    const name = ['', 'low', 'medium', 'high'][level[i]];
    pre.append(name ? el('mark', { class: `risk-${name}` }, text) : document.createTextNode(text));
    i = j;
  }
  return pre;
}

function card(r, index) {
  const selected = index === state.selected;
  const top = el('div', { class: 'top' },
    el('span', { class: `tier tier-${r.tier}` }, r.tier),
    el('span', {}, `score ${r.score}`),
    el('strong', {}, `${r.agent} → ${r.target}`),
    ...Object.entries(r.target_labels || {}).map(([k, v]) =>
      el('span', { class: `label${/^(prod|production|live)$/i.test(v) ? ' label-prod' : ''}` }, `${k}=${v}`)),
    el('span', { class: 'muted' }, `${r.approvals.length}/${r.approvals_needed} approvals${r.approvals.length ? ': ' + r.approvals.join(', ') : ''}`),
    el('span', { class: 'countdown', 'data-expires': r.expires_at_ms }, `denies in ${left(r.expires_at_ms)}`));
  const reasons = el('ul', { class: 'reasons' }, ...r.reasons.map((x) => el('li', {}, `[${x.tier}] ${x.text}`)));
  const actions = el('div', { class: 'actions' },
    el('button', { type: 'button', class: 'approve', onclick: () => decide(r, 'approve') }, 'Approve (A)'),
    el('button', { type: 'button', class: 'remember', onclick: () => remember(r) }, 'Approve & remember… (R)'),
    el('button', { type: 'button', class: 'deny', onclick: () => decide(r, 'deny') }, 'Deny (D)'));
  const screen = el('details', selected ? { open: '' } : {},
    el('summary', {}, 'terminal context (what the agent sees)'),
    el('div', { class: 'screen', 'data-session': r.session_id || '' }, state.screens.get(r.id) ?? '…'));
  const c = el('article', { class: `card${selected ? ' selected' : ''}`, role: 'listitem', 'data-id': r.id, onclick: () => { state.selected = index; render(); } },
    top, highlighted(r.command, r.reasons),
    r.reason ? el('p', { class: 'stated' }, el('span', { class: 'muted' }, 'agent says: '), r.reason) : '',
    reasons, screen, actions,
    el('div', { class: 'muted' }, `request ${r.id} · node ${r.node} · asked ${when(r.created_at_ms)}`));
  return c;
}

function render() {
  $('count').textContent = String(state.queue.length);
  document.title = state.queue.length ? `(${state.queue.length}) Airlock review` : 'Airlock review';
  $('empty').hidden = state.queue.length > 0;
  $('queue').replaceChildren(...state.queue.map(card));
}

function tick() {
  for (const c of document.querySelectorAll('.countdown')) {
    const ms = Number(c.dataset.expires);
    c.textContent = `denies in ${left(ms)}`;
    c.classList.toggle('soon', ms - Date.now() < 30000);
  }
}

function send(msg) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) { status('not connected; try again in a moment'); return; }
  state.ws.send(JSON.stringify(msg));
}

function decide(r, decision) {
  send({ type: 'decide', id: r.id, decision });
  status(`sent ${decision} for ${r.id}…`);
}

function remember(r) {
  if (r.tier === 'high') { status('high-risk commands can never be remembered'); return; }
  $('remember-cmd').textContent = r.command;
  $('remember-agent').textContent = `only ${r.agent}`;
  $('remember-target').textContent = `only ${r.target}`;
  const dlg = $('remember');
  dlg.dataset.id = r.id;
  dlg.showModal();
}

function confirmRemember() {
  const dlg = $('remember');
  const f = $('remember-form');
  const r = state.queue.find((q) => q.id === dlg.dataset.id);
  dlg.close();
  if (!r) { status('that request is no longer pending'); return; }
  send({
    type: 'decide', id: r.id, decision: 'approve',
    remember: { any_agent: f.agent.value === 'any', any_target: f.target.value === 'any', ttl: f.ttl.value },
  });
}

async function refreshScreen() {
  const r = state.queue[state.selected];
  if (!r || !r.session_id || state.view !== 'queue') return;
  try {
    const res = await api(`/api/sessions/${encodeURIComponent(r.session_id)}/screen`);
    const text = res.text.replace(/\n+$/, '');
    state.screens.set(r.id, text || '(blank screen)');
  } catch (e) {
    state.screens.set(r.id, `(${e.message})`);
  }
  const box = document.querySelector(`.card[data-id="${r.id}"] .screen`);
  if (box) box.textContent = state.screens.get(r.id);
}

// --- history -----------------------------------------------------------------------------

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` }, cache: 'no-store' });
  if (res.status === 401) { signOut('That token was refused.'); throw new Error('signed out'); }
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

async function loadHistory() {
  try {
    const [h, s] = await Promise.all([api('/api/history?limit=100'), api('/api/sessions?limit=100')]);
    $('history').tBodies[0].replaceChildren(...h.requests.map((r) => el('tr', {},
      el('td', {}, when(r.created_at)),
      el('td', {}, `${r.agent} → ${r.target}`),
      el('td', { class: 'mono' }, r.command),
      el('td', {}, el('span', { class: `tier tier-${r.tier}` }, r.tier)),
      el('td', {}, `${r.status}${r.resolved_by ? ` by ${r.resolved_by}` : ''}`),
      el('td', {}, r.votes.map((v) => `${v.reviewer} ${v.decision} ${new Date(v.at).toLocaleTimeString()}`).join('; ')))));
    $('sessions').tBodies[0].replaceChildren(...s.sessions.map((x) => el('tr', {},
      el('td', {}, when(x.started_at)),
      el('td', {}, `${x.agent} → ${x.target}`),
      el('td', {}, x.kind),
      el('td', { class: 'mono' }, x.command ?? '(interactive)'),
      el('td', {}, `${x.outcome ?? 'running'}${x.exit_status != null ? ` (exit ${x.exit_status})` : ''}`),
      el('td', {}, el('button', { type: 'button', class: 'play', onclick: () => play(x) }, 'Play')))));
  } catch (e) {
    status(`history: ${e.message}`);
  }
}

async function play(session) {
  let cast;
  try { cast = await api(`/api/sessions/${encodeURIComponent(session.id)}/recording`); } catch (e) { status(`recording: ${e.message}`); return; }
  $('player-box').hidden = false;
  $('player-title').textContent = `${session.agent} → ${session.target}: ${session.command ?? 'interactive session'}`;
  const markers = [];
  for (const line of cast.split('\n').slice(1)) {
    try { const ev = JSON.parse(line); if (ev[1] === 'm') markers.push([ev[0], ev[2]]); } catch { /* partial line */ }
  }
  if (state.player) state.player.dispose();
  $('player').replaceChildren();
  state.player = window.AsciinemaPlayer.create({ data: cast }, $('player'), { fit: 'width', idleTimeLimit: 2 });
  $('markers').replaceChildren(...markers.map(([t, label]) =>
    el('button', { type: 'button', onclick: () => { state.player.seek(t); state.player.play(); } }, `${t.toFixed(1)}s ${label}`)));
}

function setView(v) {
  state.view = v;
  $('queue-view').hidden = v !== 'queue';
  $('history-view').hidden = v !== 'history';
  $('tab-queue').classList.toggle('active', v === 'queue');
  $('tab-history').classList.toggle('active', v === 'history');
  if (v === 'history') loadHistory();
  render();
}

// --- keys --------------------------------------------------------------------------------

function onKey(e) {
  if (!state.token || $('signin-view').hidden === false) return;
  if ($('remember').open || $('help').open) return; // dialogs handle their own keys
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const r = state.queue[state.selected];
  switch (e.key) {
    case 'j': case 'ArrowDown': state.selected = Math.min(state.selected + 1, Math.max(0, state.queue.length - 1)); render(); refreshScreen(); break;
    case 'k': case 'ArrowUp': state.selected = Math.max(0, state.selected - 1); render(); refreshScreen(); break;
    case 'a': case 'A': if (r && state.view === 'queue') decide(r, 'approve'); break;
    case 'd': case 'D': if (r && state.view === 'queue') decide(r, 'deny'); break;
    case 'r': case 'R': if (r && state.view === 'queue') remember(r); break;
    case 'h': case 'H': setView(state.view === 'queue' ? 'history' : 'queue'); break;
    case '?': $('help').showModal(); break;
    default: return;
  }
  e.preventDefault();
}

function init() {
  $('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    state.token = t;
    $('token').value = '';
    connect();
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('tab-queue').addEventListener('click', () => setView('queue'));
  $('tab-history').addEventListener('click', () => setView('history'));
  $('remember-form').addEventListener('submit', (e) => { e.preventDefault(); confirmRemember(); });
  $('remember-cancel').addEventListener('click', () => $('remember').close());
  document.addEventListener('keydown', onKey);
  setInterval(tick, 1000);
  setInterval(refreshScreen, 2000);
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (state.token) connect(); else showSignin('');
}

init();
