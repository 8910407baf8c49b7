// The "Proposed" tab: whitelist entries promoted from staging or copied from another agent
// (docs/whitelist-promotion.md). They allow nothing until enough people accept them: one at
// low, two distinct people at medium. Accept, reject and accept-all are POSTs to
// /api/proposals (docs/reviewer-protocol.md); the gateway decides who may, this page only
// spares clicks it would refuse. Every server string is inserted as text, never HTML; the
// command only in its display form `shown`.
'use strict';

const AirlockProposed = (() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 15000;
  let open = false;
  let list = [];

  async function call(path, method) {
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { ...AirlockSso.headers(state.token) } };
    if (method === 'POST') {
      init.headers['Content-Type'] = 'application/json';
      init.body = '{}';
    }
    const res = await fetch(path, init);
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) throw new Error(body?.error || `HTTP ${res.status}`);
    return body;
  }

  function commandBox(p) {
    if (!usable(p.shown)) return el('pre', { class: 'command undisplayable' }, '(cannot display this entry safely)');
    const pre = el('pre', { class: 'command' });
    renderForm(pre, p.shown, [], false);
    return pre;
  }

  function scope(p) {
    return `${p.agent ? `agent ${p.agent}` : 'every agent'} on ${p.target ? `target ${p.target}` : 'every target'}`;
  }

  function card(p) {
    const needed = p.needed ?? '–';
    const acc = p.accepted_by || [];
    const progress = `${acc.length}/${needed} accepted${acc.length ? ` (${acc.join(', ')})` : ''}`;
    const accept = el('button', { type: 'button', class: 'approve', 'data-act': 'accept', onclick: () => decide(p, 'accept') }, '✓ Accept');
    const reject = el('button', { type: 'button', class: 'deny', 'data-act': 'reject', onclick: () => decide(p, 'reject') }, '✕ Reject');
    if (!p.may_decide) {
      accept.disabled = true;
      reject.disabled = true;
    }
    return el('div', { class: 'card proposal', role: 'listitem', 'data-id': p.id },
      el('div', { class: 'top' },
        el('span', { class: `tier tier-${p.tier}` }, p.tier), ' ',
        el('span', { class: 'mono' }, marked(scope(p))), ' ',
        el('span', { class: 'muted' }, p.glob ? 'glob over the argv' : 'exact command')),
      commandBox(p),
      el('p', { class: 'muted' }, `${marked(p.source || 'proposed')} by ${marked(p.proposed_by || '?')}; ${p.expires_at ? `expires ${when(p.expires_at)}` : 'never expires'}`),
      el('p', { class: 'progress' }, progress),
      p.why_not ? el('p', { class: 'muted why-not' }, p.why_not) : '',
      el('div', { class: 'actions' }, accept, reject));
  }

  function render() {
    $('proposed-count').textContent = String(list.length);
    $('proposed-empty').hidden = list.length > 0;
    $('proposed-all').disabled = !list.some((p) => p.may_decide);
    $('proposed').replaceChildren(...list.map(card));
  }

  async function load() {
    if (!state.token || $('tabs').hidden) return;
    try {
      list = (await call('/api/proposals', 'GET')).proposals || [];
      render();
    } catch (e) {
      if (open) status(`proposals: ${e.message}`);
    }
  }

  // The list is reloaded before the outcome is said, so what the status line says is on screen.
  async function decide(p, verb) {
    let said;
    try {
      const r = await call(`/api/proposals/${encodeURIComponent(p.id)}/${verb}`, 'POST');
      if (verb === 'reject') said = `rejected ${excerpt(p.shown)}`;
      else if (r.live) said = `accepted ${excerpt(p.shown)}: live now`;
      else said = `accepted ${excerpt(p.shown)}: ${r.accepted_by.length}/${r.needed}, needs another person`;
    } catch (e) {
      said = `could not ${verb}: ${e.message}`;
    }
    await load();
    status(said);
  }

  async function acceptAll() {
    try {
      const { results } = await call('/api/proposals/accept-all', 'POST');
      const ok = results.filter((r) => r.ok).length;
      const live = results.filter((r) => r.live).length;
      await load();
      status(`accepted ${ok} of ${results.length}; ${live} live now`);
    } catch (e) {
      await load();
      status(`could not accept all: ${e.message}`);
    }
  }

  function show(on) {
    open = on;
    $('proposed-view').hidden = !on;
    $('tab-proposed').classList.toggle('active', on);
    if (on) {
      // app.js's decision keys act only in its queue view: none may reach a card not on screen.
      state.view = 'proposed';
      $('queue-view').hidden = true;
      $('history-view').hidden = true;
      $('tab-queue').classList.remove('active');
      $('tab-history').classList.remove('active');
      load();
    }
  }

  function init() {
    $('tab-proposed').addEventListener('click', () => show(true));
    // app.js owns the other tabs; leaving for one of them closes this view.
    for (const id of ['tab-queue', 'tab-history', 'tab-agents']) $(id).addEventListener('click', () => show(false));
    document.addEventListener('keydown', (e) => { if (open && e.key.toLowerCase() === 'h' && !document.querySelector('dialog[open]')) show(false); }, true);
    $('proposed-all').addEventListener('click', acceptAll);
    $('proposed-refresh').addEventListener('click', load);
    // Signed out (the sign-in form is back): nothing of this view may stay on screen.
    new MutationObserver(() => { if (!$('signin-view').hidden) { show(false); list = []; render(); } })
      .observe($('signin-view'), { attributes: true, attributeFilter: ['hidden'] });
    new MutationObserver(() => load()).observe($('tabs'), { attributes: true, attributeFilter: ['hidden'] });
    setInterval(load, POLL_MS);
  }

  init();
  return { load };
})();
