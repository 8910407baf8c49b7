// The "Agents" tab (issue 21): each agent's blast radius at a glance — its targets with
// labels, which need a grant and which grants are live, its whitelist by target with tiers
// and expiries, what it ran in the last 7 days by tier, and one line saying the largest
// thing it can do without a human. Read only: GET /api/agents and /api/agents/{name}
// (docs/reviewer-protocol.md, "Agents"); the gateway leaves out targets outside the
// reviewer's scope. Every server string is inserted as text, never HTML; whitelist commands
// only in their display form `shown`, other free text (grant reasons) marked.
'use strict';

const AirlockAgents = (() => {
  const $ = (id) => document.getElementById(id);
  let open = false;
  let current = null; // the agent whose report is on screen (or being fetched)

  async function get(path) {
    const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store', headers: { ...AirlockSso.headers(state.token) } });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) throw new Error(body?.error || `HTTP ${res.status}`);
    return body;
  }

  const stamp = (iso) => (iso ? new Date(iso).toLocaleString() : 'never');
  const labels = (t) => Object.entries(t.labels || {}).map(([k, v]) =>
    el('span', { class: `label${/^(prod|production|live)$/i.test(v) ? ' label-prod' : ''}` }, `${k}=${v}`));

  function access(t) {
    if (!t.requires_grant) return el('span', { class: 'muted grant' }, 'standing access');
    if (!t.grant) return el('span', { class: 'grant grant-none' }, 'needs a grant: none live');
    const g = t.grant;
    return el('span', { class: 'grant grant-live' },
      `grant ${g.id} live until ${stamp(g.expires_at)} (by ${marked(g.by)}${g.reason ? `: ${marked(g.reason)}` : ''})`);
  }

  function entry(w) {
    const cmd = el('pre', { class: 'command' });
    if (usable(w.shown)) renderForm(cmd, w.shown, [], false);
    else { cmd.className = 'command undisplayable'; cmd.textContent = '(cannot display this entry safely)'; }
    const scope = [w.glob ? 'glob over the argv' : 'exact command', w.any_target ? 'any target' : '', w.any_agent ? 'any agent' : '']
      .filter(Boolean).join(' · ');
    return el('li', { class: 'wl-entry', 'data-id': w.id },
      el('span', { class: `tier tier-${w.tier}` }, w.tier), ' ',
      el('span', { class: 'muted' }, `${scope}; ${w.expires_at ? `expires ${stamp(w.expires_at)}` : 'never expires'}; by ${marked(w.by)}`),
      cmd);
  }

  function target(t) {
    const list = t.whitelist || [];
    return el('div', { class: 'card agent-target', role: 'listitem', 'data-target': t.name },
      el('div', { class: 'top' }, el('strong', { class: 'target-name mono' }, t.name), ...labels(t), access(t),
        el('span', { class: 'muted' }, t.usable_now ? 'usable now' : 'not usable now')),
      list.length
        ? el('ul', { class: 'whitelist' }, ...list.map(entry))
        : el('p', { class: 'muted' }, 'nothing whitelisted: every command above low waits for a reviewer'));
  }

  function recent(r) {
    const rows = Object.entries(r.last_7_days || {}).map(([tier, d]) => el('tr', {},
      el('td', {}, el('span', { class: `tier tier-${tier}` }, tier)),
      el('td', {}, Object.entries(d).map(([k, n]) => `${k} ${fmt(n)}`).join(', '))));
    if (!rows.length) return el('p', { class: 'muted' }, 'nothing in the last 7 days');
    return el('table', { id: 'agent-recent' }, el('thead', {}, el('tr', {}, el('th', {}, 'tier'), el('th', {}, 'decisions'))),
      el('tbody', {}, ...rows));
  }

  function report(r) {
    const targets = r.targets || [];
    return [
      el('h2', {}, `${r.agent} `, el('span', { class: 'muted' }, `max tier ${r.max_tier}${r.owner ? ` · owner ${r.owner}` : ''}`)),
      el('p', { id: 'agent-summary', class: 'agent-summary' }, r.summary || ''),
      r.targets_withheld ? el('p', { class: 'muted', id: 'agent-withheld' }, 'Some of its targets are outside your reviewer groups’ scope and are not shown.') : '',
      el('h3', {}, 'Targets and whitelist'),
      targets.length ? el('div', { role: 'list' }, ...targets.map(target)) : el('p', { class: 'muted' }, 'no targets you may see'),
      el('h3', {}, 'Last 7 days, by tier'),
      recent(r),
      r.last_7_days_cut ? el('p', { class: 'muted' }, 'only the first entries of the week were counted') : '',
    ];
  }

  async function pick(name) {
    current = name;
    for (const b of $('agents-list').querySelectorAll('button')) b.classList.toggle('active', b.dataset.agent === name);
    $('agent-report').replaceChildren(el('p', { class: 'muted' }, `loading ${name}…`));
    try {
      const r = await get(`/api/agents/${encodeURIComponent(name)}`);
      if (current === name && open) $('agent-report').replaceChildren(...report(r));
    } catch (e) {
      if (current === name) $('agent-report').replaceChildren(el('p', { class: 'error' }, `${name}: ${e.message}`));
    }
  }

  async function load() {
    if (!state.token || $('tabs').hidden || !open) return;
    try {
      const { agents } = await get('/api/agents');
      $('agents-empty').hidden = agents.length > 0;
      $('agents-list').replaceChildren(...agents.map((n) =>
        el('button', { type: 'button', class: `tab${n === current ? ' active' : ''}`, 'data-agent': n, onclick: () => pick(n) }, n)));
      if (current && agents.includes(current)) pick(current);
    } catch (e) {
      status(`agents: ${e.message}`);
    }
  }

  function clear() {
    current = null;
    $('agents-list').replaceChildren();
    $('agent-report').replaceChildren();
  }

  function show(on) {
    open = on;
    $('agents-view').hidden = !on;
    $('tab-agents').classList.toggle('active', on);
    if (on) {
      // app.js's decision keys act only in its queue view: none may reach a card not on screen.
      state.view = 'agents';
      for (const id of ['queue-view', 'history-view', 'proposed-view']) $(id).hidden = true;
      for (const id of ['tab-queue', 'tab-history', 'tab-proposed']) $(id).classList.remove('active');
      load();
    }
  }

  function init() {
    $('tab-agents').addEventListener('click', () => show(true));
    // The other tabs belong to app.js and proposed.js; leaving for one of them closes this view.
    for (const id of ['tab-queue', 'tab-history', 'tab-proposed']) $(id).addEventListener('click', () => show(false));
    document.addEventListener('keydown', (e) => { if (open && e.key.toLowerCase() === 'h' && !document.querySelector('dialog[open]')) show(false); }, true);
    $('agents-refresh').addEventListener('click', load);
    // Signed out (the sign-in form is back): nothing of this view may stay on screen.
    new MutationObserver(() => { if (!$('signin-view').hidden) { show(false); clear(); } })
      .observe($('signin-view'), { attributes: true, attributeFilter: ['hidden'] });
  }

  init();
  return { load };
})();
