// Airlock reviewer page. Speaks the documented WebSocket protocol (docs/reviewer-protocol.md)
// and the read-only /api endpoints. The agent's text (command, stated reason) is shown only
// in the gateway's display form `shown`, never raw, and always inserted as text, never HTML:
// the reviewer must see exactly what will run.
'use strict';

const TOKEN_KEY = 'airlock-reviewer-token';
const SOUND_KEY = 'airlock-sound';
// Button clicks this soon after cards appeared or left are ignored: the card under the
// pointer may have moved, and the reviewer would act on one they did not read.
const CLICK_GUARD_MS = 600;
const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  me: '',
  groups: [],             // the reviewer groups the gateway put me in (hello)
  refused: new Map(),     // id -> why the gateway refused my vote on it (it outranks notCounted's guess)
  ws: null,
  queue: [],              // pending requests, newest first
  selectedId: null,       // only J/K/arrows/click change it, never the gateway
  expanded: new Set(),    // request ids whose whole command the reviewer opened
  known: new Map(),       // id -> request, kept after it leaves the queue (acks, results)
  scopes: new Map(),      // id -> the remember scope sent, for the ack's sentence
  history: null,          // last /api/history answer
  view: 'queue',
  retry: 0,               // reconnect attempts since the last good connection
  screens: new Map(),     // request id -> last screen text
  player: null,
  lastIds: '',
  changedAt: 0,           // when cards last appeared or left
  audio: null,
};

// The last few events, newest first (its own span), so an ack is not hidden by the broadcast
// after it.
const recent = [];
function status(msg) {
  recent.unshift(`${new Date().toLocaleTimeString()} ${msg}`);
  recent.length = Math.min(recent.length, 3);
  $('status').replaceChildren(...recent.map((m, i) => el('span', { class: i ? 'older' : 'latest' }, m)));
}

function when(ms) { return ms ? new Date(ms).toLocaleString() : ''; }
const names = (list) => (list.length > 1 ? `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}` : list[0] || 'nobody');

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
  for (const id of ['tabs', 'signout', 'notify', 'sound']) $(id).hidden = true;
  $('signin-error').textContent = error || '';
  $('who').textContent = '';
  $('groups').textContent = '';
}

function signOut(error) {
  AirlockSso.signOut(state.token);
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
  // A signed-in (single sign-on) page sends no auth frame: the upgrade carried the cookie.
  ws.onopen = () => { if (typeof state.token === 'string') ws.send(JSON.stringify({ type: 'auth', token: state.token })); };
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { status('unreadable message from the gateway'); return; }
    onMessage(m);
  };
  ws.onclose = () => {
    if (!state.token) return;
    if (state.token === AirlockSso.SESSION) AirlockSso.check(() => signOut('Your session ended; sign in again.'));
    const wait = Math.min(30, 2 ** state.retry);
    state.retry += 1;
    $('conn').textContent = `disconnected — retrying in ${wait}s`;
    $('conn').classList.add('down');
    setTimeout(() => { if (state.token) connect(); }, wait * 1000);
  };
}

// Kept for the sentences about it after it leaves the queue (bounded).
function keep(r) {
  state.known.set(r.id, r);
  if (state.known.size > 500) state.known.delete(state.known.keys().next().value);
}

function onMessage(m) {
  switch (m.type) {
    case 'hello':
      state.me = m.reviewer;
      state.groups = m.groups || [];
      state.retry = 0;
      $('who').textContent = `signed in as ${m.reviewer}`;
      $('groups').textContent = state.groups.length ? `groups: ${state.groups.join(', ')}` : '';
      $('conn').textContent = 'live';
      $('conn').classList.remove('down');
      $('signin-view').hidden = true;
      for (const id of ['tabs', 'signout', 'sound']) $(id).hidden = false;
      updateNotifyButton();
      setView(state.view);
      break;
    case 'snapshot':
      state.queue = m.requests.slice().reverse();
      state.queue.forEach(keep);
      render();
      break;
    case 'request':
      // Never selected by itself: the reviewer's selection stays where they put it.
      keep(m);
      state.queue.unshift(m);
      render();
      status(`new ${m.tier} request from ${m.agent} on ${m.target}: ${quoted(m)} — select it with J/K`);
      announce(m);
      break;
    case 'vote': onVote(m); break;
    case 'resolved': onResolved(m); break;
    case 'ack': onAck(m); break;
    case 'error':
      if (m.code === 'bad_token' || m.code === 'unauthorized') { signOut('That token was refused.'); return; }
      if (REFUSALS.includes(m.code)) {
        // Who I am makes my vote not count here: the card says so from now on.
        if (m.id && pending(m.id)) { state.refused.set(m.id, m.message); render(); }
        status(`your vote was refused${m.id ? ` (${quoted(state.known.get(m.id))})` : ''}: ${m.message}`);
        return;
      }
      status(`the gateway refused that${m.id ? ` (${quoted(state.known.get(m.id))})` : ''}: ${m.message}`);
      break;
    default:
      break;
  }
}

function onVote(m) {
  const r = state.queue.find((q) => q.id === m.id);
  if (!r) return;
  progressed(r, m);
  render();
  if (m.reviewer !== state.me) {
    const where = r.progress_text || `${m.approvals.length} of ${r.approvals_needed} approvals`;
    status(`${m.reviewer} ${m.decision === 'approve' ? 'approved' : 'voted to deny'} ${quoted(r)} — ${where}${m.comment ? ` (${m.reviewer}: ${m.comment})` : ''}`);
  }
}

function onResolved(m) {
  state.queue = state.queue.filter((q) => q.id !== m.id);
  for (const id of ['confirm-high', 'deny-dialog', 'remember']) {
    if ($(id).open && $(id).dataset.id === m.id) $(id).close();
  }
  render();
  const what = quoted(state.known.get(m.id));
  const by = m.by === 'airlock' ? 'the gateway' : m.by;
  const note = m.comment ? ` — ${m.by}: ${m.comment}` : '';
  if (m.outcome === 'approved') status(`approved by ${names(m.approvers?.length ? m.approvers : [by])}: ${what}${note}`);
  else if (m.outcome === 'denied') status(`denied by ${by}: ${m.comment ? `${m.comment} — ` : ''}${what}${m.by === 'airlock' && m.why ? ` (${m.why})` : ''}`);
  else if (m.outcome === 'expired') status(`expired, nobody decided in time: ${what}`);
  else if (m.outcome === 'withdrawn') status(`withdrawn, the agent disconnected: ${what}`);
  else status(`${m.outcome}: ${what}`);
}

function onAck(m) {
  const what = quoted(state.known.get(m.id));
  if (pending(m.id)) { progressed(pending(m.id), m); render(); }
  if (m.whitelisted) {
    status(`you approved ${what} and remembered it ${state.scopes.get(m.id) || ''} (whitelist entry ${m.whitelisted})`);
  } else if (m.result === 'counted' && m.progress_text) {
    status(`you approved ${what} — counted; still waiting: ${m.progress_text}`);
  } else if (m.result === 'counted') {
    const more = m.approvals_needed - m.approvals.length;
    status(`you approved ${what} — ${m.approvals.length} of ${m.approvals_needed} approvals; waiting for ${more === 1 ? 'another reviewer' : `${more} more reviewers`}`);
  } else if (m.result === 'approved') status(`you approved ${what} — that was the last approval needed`);
  else if (m.result === 'denied') status(`you denied ${what}`);
}

// A new request: a desktop notification (if allowed) and a beep (if switched on).
function announce(r) {
  if ('Notification' in window && Notification.permission === 'granted') {
    try {
      const n = new Notification(`Airlock: ${String(r.tier).toUpperCase()} request`,
        { body: `${r.agent} → ${r.target}: ${excerpt(r.shown?.command)}`, tag: r.id });
      n.onclick = () => window.focus();
    } catch { /* some browsers only notify from a service worker */ }
  }
  if (localStorage.getItem(SOUND_KEY) === 'on') beep(r.tier === 'high' ? 2 : 1);
}

function updateNotifyButton() {
  const b = $('notify');
  b.hidden = !('Notification' in window);
  if (b.hidden) return;
  const p = Notification.permission;
  b.textContent = p === 'granted' ? 'Notifications on' : p === 'denied' ? 'Notifications blocked' : 'Enable notifications';
  b.disabled = p !== 'default';
}

function updateSoundButton() {
  const on = localStorage.getItem(SOUND_KEY) === 'on';
  $('sound').textContent = on ? 'Sound on' : 'Sound off';
  $('sound').setAttribute('aria-pressed', String(on));
}

function beep(times) {
  try {
    state.audio ??= new AudioContext(); // first made from the toggle's click: allowed to play
    const ctx = state.audio;
    for (let i = 0; i < times; i++) {
      const t = ctx.currentTime + i * 0.25;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, t);
      gain.gain.exponentialRampToValueAtTime(0.001, t + 0.18);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.2);
    }
  } catch { /* no audio here */ }
}

// --- queue -------------------------------------------------------------------------------

// Why my vote cannot count on r (quorum.js), or ''.
const barredBy = (r) => notCounted(r, state.me, state.groups, state.refused.get(r.id));

// Says why and returns true when my vote cannot count on r (nothing is sent).
function refusedHere(r) {
  const why = barredBy(r);
  if (why) status(`your vote does not count here, nothing was sent: ${why}`);
  return Boolean(why);
}

function card(r) {
  const selected = r.id === state.selectedId;
  const high = r.tier === 'high';
  const barred = barredBy(r);
  const top = el('div', { class: 'top' },
    el('span', { class: `tier tier-${r.tier}` }, r.tier),
    el('span', {}, `score ${r.score}`),
    el('strong', {}, `${r.agent} → ${r.target}`),
    ...Object.entries(r.target_labels || {}).map(([k, v]) =>
      el('span', { class: `label${/^(prod|production|live)$/i.test(v) ? ' label-prod' : ''}` }, `${k}=${v}`)),
    progressView(r),
    el('span', { class: 'countdown', 'data-expires': r.expires_at_ms }, `denies in ${left(r.expires_at_ms)}`));
  const stated = r.reason == null ? '' : el('p', { class: 'stated' }, el('span', { class: 'muted' }, 'agent says: '),
    usable(r.shown?.reason) ? renderInto(el('span', {}), r.shown.reason) : el('em', {}, '(cannot display the stated reason safely)'));
  const reasons = el('ul', { class: 'reasons' }, ...r.reasons.map((x) => el('li', {}, `[${x.tier}] ${marked(x.text)}`)));
  const button = (cls, label, fn) => el('button', { type: 'button', class: cls, onclick: (e) => clicked(e, r, fn) }, label);
  if (isAccess(r)) return accessCard(r, selected, barred, button); // access.js
  const actions = el('div', { class: 'actions' },
    button('approve', high ? '✓ Approve… (A)' : '✓ Approve (A)', approve),
    high ? '' : button('remember', 'Approve & remember… (R)', openRemember),
    button('deny', '✕ Deny… (D)', openDeny));
  const screen = el('details', selected ? { open: '' } : {},
    el('summary', {}, 'terminal context (what the agent sees)'),
    el('div', { class: 'screen', 'data-session': r.session_id || '' }, state.screens.get(r.id) ?? '…'));
  return el('article', { class: `card${selected ? ' selected' : ''}${barred ? ' barred' : ''}`, role: 'listitem', 'data-id': r.id, onclick: () => select(r.id) },
    top, ...needsView(r, barred), commandView(r, () => expand(r)), flagList(r.shown?.command, 'command-flags'),
    stated, flagList(r.shown?.reason, 'reason-flags'),
    reasons, scriptsView(r), screen, actions,
    el('div', { class: 'muted' }, `request ${r.id} · node ${r.node} · asked ${when(r.created_at_ms)}`));
}

function renderInto(box, form) { renderForm(box, form, [], false); return box; }

function render() {
  // The selection only ever names a pending request; once it leaves, nothing is selected.
  if (!state.queue.some((q) => q.id === state.selectedId)) state.selectedId = null;
  for (const id of state.refused.keys()) if (!pending(id)) state.refused.delete(id);
  const ids = state.queue.map((q) => q.id).join(',');
  if (ids !== state.lastIds) { state.lastIds = ids; state.changedAt = Date.now(); }
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

function select(id) {
  if (state.selectedId === id) return;
  state.selectedId = id;
  render();
  document.querySelector('.card.selected')?.scrollIntoView({ block: 'nearest' });
  refreshScreen();
}

function move(delta) {
  if (!state.queue.length) return;
  const i = state.queue.findIndex((q) => q.id === state.selectedId);
  select(state.queue[i < 0 ? 0 : Math.min(Math.max(i + delta, 0), state.queue.length - 1)].id);
}

const pending = (id) => state.queue.find((q) => q.id === id) || null;

// A card's button: acts on that card (and selects it), unless the queue just moved under
// the pointer.
function clicked(e, r, fn) {
  e.stopPropagation();
  if (Date.now() - state.changedAt < CLICK_GUARD_MS) { status('the queue just changed — check the card and click again'); return; }
  select(r.id);
  fn(r);
}

function send(msg) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) { status('not connected; try again in a moment'); return false; }
  state.ws.send(JSON.stringify(msg));
  return true;
}

function decide(r, decision, comment, rest) {
  if (!send({ type: 'decide', id: r.id, decision, ...(comment ? { comment } : {}), ...rest })) return;
  status(`sending your ${decision === 'approve' ? 'approval' : 'denial'} of ${quoted(r)}…`);
}

// Why r cannot be approved as it is on screen, or '' when it can.
function approvalBlocker(r) {
  if (!displayable(r) || !scriptsDisplayable(r)) return 'this request cannot be displayed safely, so it cannot be approved here; deny it or use airlock review';
  const hidden = hiddenChars(r);
  return hidden ? `expand the whole command first (E): ${fmt(hidden)} characters not shown` : '';
}

function approve(r) {
  if (refusedHere(r)) return;
  const why = approvalBlocker(r);
  if (why) status(why);
  else if (r.tier === 'high') openConfirmHigh(r);
  else decide(r, 'approve');
}

function expand(r) {
  state.expanded.add(r.id);
  render();
}

// The whole command, for a dialog (it can only open once the card shows all of it).
function fillCommand(box, r) {
  box.replaceChildren();
  renderForm(box, r.shown.command, r.reasons, false);
}

function openConfirmHigh(r) {
  $('confirm-high-target').textContent = r.target;
  $('confirm-high-agent').textContent = r.agent;
  fillCommand($('confirm-high-cmd'), r);
  $('confirm-high-flags').replaceChildren(...(r.shown.command.flags || []).map((f) => el('li', {}, f.text)));
  $('confirm-high-progress').replaceChildren(progressView(r), r.needs ? ` — needs ${r.needs}` : '');
  $('confirm-target').value = '';
  $('approve-note').value = '';
  $('confirm-error').textContent = '';
  $('confirm-high').dataset.id = r.id;
  $('confirm-high').showModal();
}

// Typing the target's name makes the reviewer read where it runs; anything else sends nothing.
function confirmHigh() {
  const dlg = $('confirm-high');
  const r = pending(dlg.dataset.id);
  if (!r) { dlg.close(); status('that request is no longer pending'); return; }
  if ($('confirm-target').value !== r.target) {
    $('confirm-error').textContent = 'That is not the target\'s name: type it exactly as shown above. Nothing was sent.';
    return;
  }
  dlg.close();
  decide(r, 'approve', $('approve-note').value.trim());
}

function openDeny(r) {
  if (refusedHere(r)) return;
  $('deny-cmd').textContent = `${r.agent} → ${r.target}: ${excerpt(r.shown?.command, 200)}`;
  $('deny-reason').value = '';
  $('deny-dialog').dataset.id = r.id;
  $('deny-dialog').showModal();
}

function confirmDeny() {
  const dlg = $('deny-dialog');
  const r = pending(dlg.dataset.id);
  dlg.close();
  if (!r) { status('that request is no longer pending'); return; }
  decide(r, 'deny', $('deny-reason').value.trim());
}

function openRemember(r) {
  if (r.tier === 'high' || isAccess(r)) { status(isAccess(r) ? 'an access request is not a command: it cannot be remembered' : 'high-risk commands can never be remembered'); return; }
  if (refusedHere(r)) return;
  const why = approvalBlocker(r);
  if (why) { status(why); return; }
  fillCommand($('remember-cmd'), r);
  $('remember-agent').textContent = `only ${r.agent}`;
  $('remember-target').textContent = `only ${r.target}`;
  $('remember').dataset.id = r.id;
  $('remember').showModal();
}

function confirmRemember() {
  const dlg = $('remember');
  const f = $('remember-form');
  const r = pending(dlg.dataset.id);
  dlg.close();
  if (!r) { status('that request is no longer pending'); return; }
  const scope = { any_agent: f.agent.value === 'any', any_target: f.target.value === 'any', ttl: f.ttl.value };
  state.scopes.set(r.id, `for ${scope.any_agent ? 'any agent' : r.agent} on ${scope.any_target ? 'any target' : r.target}, ${scope.ttl === 'never' ? 'with no expiry' : `for ${scope.ttl}`}`);
  decide(r, 'approve', '', { remember: scope });
}

async function refreshScreen() {
  const r = pending(state.selectedId);
  if (!r || !r.session_id || state.view !== 'queue') return;
  try {
    const res = await api(`/api/sessions/${encodeURIComponent(r.session_id)}/screen`);
    // A terminal's screen keeps its spacing; only what would not show is marked.
    const text = invisibleMarked(res.text.replace(/\n+$/, ''));
    state.screens.set(r.id, text || '(blank screen)');
  } catch (e) {
    state.screens.set(r.id, `(${e.message})`);
  }
  const box = document.querySelector(`.card[data-id="${r.id}"] .screen`);
  if (box) box.textContent = state.screens.get(r.id);
}

// --- history -----------------------------------------------------------------------------

async function api(path) {
  const res = await fetch(path, { headers: AirlockSso.headers(state.token), credentials: 'same-origin', cache: 'no-store' });
  if (res.status === 401) { signOut('That token was refused.'); throw new Error('signed out'); }
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

function historyCommand(r) {
  const form = r.shown?.command ?? (r.shown?.parts ? r.shown : null);
  const td = el('td', { class: 'mono' });
  if (!usable(form)) { td.append(el('em', {}, '(not displayable)')); return td; }
  const key = `h:${r.id}`;
  const hidden = renderForm(td, form, r.reasons, !state.expanded.has(key));
  if (hidden) {
    td.append(el('div', { class: 'more', role: 'button', tabindex: '0', onclick: () => { state.expanded.add(key); renderHistory(); } },
      `… ${fmt(hidden)} more characters — click to expand`));
  }
  return td;
}

function outcome(r) {
  if (r.outcome_text) return r.outcome_text;
  if (r.status === 'approved' && r.approvers?.length) return `approved by ${names(r.approvers)}`;
  return `${r.status}${r.resolved_by ? ` by ${r.resolved_by}` : ''}`;
}

function renderHistory() {
  const h = state.history;
  if (!h) return;
  $('history').tBodies[0].replaceChildren(...h.requests.map((r) => el('tr', {},
    el('td', {}, when(r.created_at)),
    el('td', {}, `${r.agent} → ${r.target}`),
    historyCommand(r),
    el('td', {}, el('span', { class: `tier tier-${r.tier}` }, r.tier)),
    el('td', {}, outcome(r)),
    el('td', {}, r.votes.map((v) => `${v.reviewer} ${v.decision}${v.comment ? ` (“${v.comment}”)` : ''} ${new Date(v.at).toLocaleTimeString()}`).join('; ')))));
}

async function loadHistory() {
  try {
    const [h, s] = await Promise.all([api('/api/history?limit=100'), api('/api/sessions?limit=100')]);
    state.history = h;
    renderHistory();
    $('sessions').tBodies[0].replaceChildren(...s.sessions.map((x) => el('tr', {},
      el('td', {}, when(x.started_at)),
      el('td', {}, `${x.agent} → ${x.target}`),
      el('td', {}, x.kind),
      el('td', { class: 'mono' }, x.command == null ? '(interactive)' : plainSafe(x.command)),
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
  $('player-title').textContent = `${session.agent} → ${session.target}: ${session.command == null ? 'interactive session' : plainSafe(session.command)}`;
  const markers = [];
  for (const line of cast.split('\n').slice(1)) {
    try { const ev = JSON.parse(line); if (ev[1] === 'm') markers.push([ev[0], ev[2]]); } catch { /* partial line */ }
  }
  if (state.player) state.player.dispose();
  $('player').replaceChildren();
  state.player = window.AsciinemaPlayer.create({ data: cast }, $('player'), { fit: 'width', idleTimeLimit: 2 });
  $('markers').replaceChildren(...markers.map(([t, label]) =>
    el('button', { type: 'button', onclick: () => { state.player.seek(t); state.player.play(); } }, `${t.toFixed(1)}s ${marked(label)}`)));
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

// A decision key acts on the selected card only; with none selected it only says so.
function act(fn) {
  if (state.view !== 'queue') return;
  const r = pending(state.selectedId);
  if (r) fn(r); else status('select a request first (J/K)');
}

function onKey(e) {
  if (!state.token || !$('signin-view').hidden) return;
  if (document.querySelector('dialog[open]')) return; // dialogs handle their own keys
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (e.repeat && 'ader'.includes(key)) { e.preventDefault(); return; } // a held key decides nothing
  switch (key) {
    case 'j': case 'ArrowDown': move(1); break;
    case 'k': case 'ArrowUp': move(-1); break;
    case 'Escape': select(null); break;
    case 'a': act(approve); break;
    case 'd': act(openDeny); break;
    case 'r': act(openRemember); break;
    case 'e': act(expand); break;
    case 'h': setView(state.view === 'queue' ? 'history' : 'queue'); break;
    case '?': $('help').showModal(); break;
    default: return;
  }
  e.preventDefault();
}

// A dialog's form: Enter submits (handled here, the dialog stays open on a mistake), Esc
// and Cancel close it without sending anything.
function dialogForm(dialog, form, cancel, onSubmit) {
  $(form).addEventListener('submit', (e) => { e.preventDefault(); onSubmit(); });
  $(cancel).addEventListener('click', () => $(dialog).close());
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
  $('notify').addEventListener('click', () => Notification.requestPermission().then(updateNotifyButton, updateNotifyButton));
  $('sound').addEventListener('click', () => {
    const on = localStorage.getItem(SOUND_KEY) !== 'on';
    localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
    updateSoundButton();
    if (on) beep(1);
  });
  // Browsers start audio suspended until the page is used.
  document.addEventListener('pointerdown', () => state.audio?.resume());
  dialogForm('remember', 'remember-form', 'remember-cancel', confirmRemember);
  dialogForm('confirm-high', 'confirm-high-form', 'confirm-cancel', confirmHigh);
  dialogForm('deny-dialog', 'deny-form', 'deny-cancel', confirmDeny);
  document.addEventListener('keydown', onKey);
  setInterval(tick, 1000);
  setInterval(refreshScreen, 2000);
  updateSoundButton();
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (state.token) connect();
  else AirlockSso.resume((session) => { state.token = session; connect(); }, () => showSignin(''));
}

init();
