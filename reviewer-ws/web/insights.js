// The "Insights" tab (issue 23): what the gateway did, as pictures — commands per day by
// outcome (filter by tier), median and p90 time to a reviewer's decision, the share of
// commands that ran without a human, and the whitelist's size over time. Read only: GET
// /api/insights?days=N (docs/metrics.md, "Insights"); the gateway leaves out targets outside
// the reviewer's scope. Charts are SVG drawn here by hand: nothing is fetched from elsewhere.
// Every number is inserted as text or an attribute, never as HTML.
'use strict';

const AirlockInsights = (() => {
  const $ = (id) => document.getElementById(id);
  const NS = 'http://www.w3.org/2000/svg';
  // Outcome, legend text, colour: the order bars stack in, from the ground up.
  const OUTCOMES = [
    ['auto', 'ran at once (low)', '#38a169'],
    ['whitelist', 'whitelisted', '#2bb5a4'],
    ['approved', 'approved', '#4c8df6'],
    ['denied', 'denied', '#e5534b'],
    ['expired', 'timed out', '#dd8a36'],
    ['withdrawn', 'withdrawn', '#8b93a1'],
    ['refused', 'refused by the gateway', '#a57ee8'],
    ['pending', 'waiting now', '#ecc94b'],
  ];
  const TIERS = [['all', 'all tiers'], ['low', 'low'], ['medium', 'medium'], ['high', 'high'], ['none', 'unclassified']];
  const TIER_ORDER = ['low', 'medium', 'high', 'none'];
  // viewBox widths: a full-width chart and a half-width one, so text keeps its size when the
  // chart scales to its box.
  const WIDE = 1000;
  const HALF = 520;

  let open = false;
  let days = 30;
  let tier = 'all';
  let data = null;
  let seq = 0; // only the newest answer is drawn

  function svg(tag, attrs, ...kids) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) n.setAttribute(k, String(v));
    for (const k of kids) n.append(typeof k === 'string' ? document.createTextNode(k) : k);
    return n;
  }

  async function get(path) {
    const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store', headers: { ...AirlockSso.headers(state.token) } });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) throw new Error(body?.error || `HTTP ${res.status}`);
    return body;
  }

  const int = (n) => Number(n || 0).toLocaleString('en-US');
  function dur(ms) {
    if (ms === null || ms === undefined) return '—';
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
    const h = Math.floor(m / 60);
    return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  }
  const pct = (x) => `${Math.round(x * 100)}%`;
  const short = (day) => day.slice(5); // MM-DD

  // The smallest "round" number ≥ v (1, 2, 2.5, 5 × 10ⁿ), so gridlines fall on readable values.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // For counts: four gridline steps of a whole, round size (1, 2, 5 × 10ⁿ) reaching v.
  function countMax(v) {
    const step = Math.max(1, v / 4);
    const p = 10 ** Math.floor(Math.log10(step));
    for (const m of [1, 2, 5, 10]) if (m * p >= step) return 4 * m * p;
    return 40 * p;
  }

  // A chart's frame: gridlines with labels on the left, day labels under the plot.
  function frame(W, h, max, label, dayList) {
    const pad = { l: 60, r: 14, t: 14, b: 30 };
    const s = svg('svg', { viewBox: `0 0 ${W} ${h}`, class: 'chart', role: 'img' });
    const iw = W - pad.l - pad.r;
    const ih = h - pad.t - pad.b;
    const y = (v) => pad.t + ih - (v / max) * ih;
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      s.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: i ? 'grid' : 'axis' }));
      s.append(svg('text', { x: pad.l - 8, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, label(v)));
    }
    const bw = iw / dayList.length;
    const every = Math.max(1, Math.ceil(dayList.length / (W >= WIDE ? 12 : 7)));
    dayList.forEach((d, i) => {
      if ((dayList.length - 1 - i) % every) return;
      s.append(svg('text', { x: pad.l + bw * (i + 0.5), y: h - 8, class: 'tick', 'text-anchor': 'middle' }, short(d.day)));
    });
    return { s, y, bw, x: (i) => pad.l + bw * (i + 0.5), left: pad.l, ih, top: pad.t };
  }

  function countsOf(d) {
    const out = {};
    const tiers = tier === 'all' ? Object.values(d.outcomes || {}) : [d.outcomes?.[tier] || {}];
    for (const t of tiers) for (const [k, n] of Object.entries(t)) out[k] = (out[k] || 0) + n;
    return out;
  }

  function barChart(list) {
    const totals = list.map((d) => Object.values(countsOf(d)).reduce((a, b) => a + b, 0));
    const max = countMax(Math.max(...totals, 1));
    const f = frame(WIDE, 300, max, (v) => int(v), list);
    const gap = Math.min(8, f.bw * 0.25);
    list.forEach((d, i) => {
      const c = countsOf(d);
      let top = f.y(0);
      for (const [k, label, colour] of OUTCOMES) {
        const n = c[k] || 0;
        if (!n) continue;
        const hgt = f.y(0) - f.y(n);
        top -= hgt;
        f.s.append(svg('rect', {
          x: f.x(i) - f.bw / 2 + gap / 2, y: top, width: Math.max(1, f.bw - gap), height: Math.max(0.5, hgt), rx: 2,
          fill: colour, class: 'bar', 'data-day': d.day, 'data-outcome': k, 'data-count': n,
        }, svg('title', {}, `${d.day}: ${int(n)} ${label}`)));
      }
      if (totals[i] && f.bw >= 22) {
        f.s.append(svg('text', { x: f.x(i), y: top - 5, class: 'value', 'text-anchor': 'middle', 'data-day': d.day, 'data-total': totals[i] }, int(totals[i])));
      }
    });
    return f.s;
  }

  // Series of [day, value|null]: a line through runs of values, a dot on each, an area under
  // it when `area`.
  function lineChart(list, series, { max, label, area, w = HALF, h = 250 }) {
    const f = frame(w, h, max, label, list);
    for (const sr of series) {
      let run = [];
      const flush = () => {
        if (!run.length) return;
        const pts = run.map(([x, y]) => `${x},${y}`).join(' ');
        if (area) {
          const base = f.y(0);
          f.s.append(svg('polygon', { points: `${run[0][0]},${base} ${pts} ${run[run.length - 1][0]},${base}`, fill: sr.colour, class: 'area' }));
        }
        f.s.append(svg('polyline', { points: pts, fill: 'none', stroke: sr.colour, class: `line${sr.dashed ? ' dashed' : ''}` }));
        run = [];
      };
      list.forEach((d, i) => {
        const v = sr.value(d);
        if (v === null || v === undefined) { flush(); return; }
        run.push([f.x(i), f.y(v)]);
      });
      flush();
      list.forEach((d, i) => {
        const v = sr.value(d);
        if (v === null || v === undefined) return;
        f.s.append(svg('circle', {
          cx: f.x(i), cy: f.y(v), r: list.length > 45 ? 2.5 : 4, fill: sr.colour, class: 'dot',
          'data-series': sr.name, 'data-day': d.day, 'data-value': sr.raw ? sr.raw(d) : v,
        }, svg('title', {}, `${d.day}: ${sr.title(d)}`)));
      });
    }
    return f.s;
  }

  function kpi(id, value, label, sub, raw) {
    return el('div', { class: 'kpi', id, 'data-value': raw },
      el('div', { class: 'kpi-value' }, value), el('div', { class: 'kpi-label' }, label),
      sub ? el('div', { class: 'kpi-sub muted' }, sub) : '');
  }

  function panel(id, title, sub, chart, legend) {
    return el('section', { class: 'panel', id },
      el('div', { class: 'panel-head' }, el('h3', {}, title), sub ? el('span', { class: 'muted' }, sub) : ''),
      legend || '', chart);
  }

  function legend(items) {
    return el('div', { class: 'legend' }, ...items.map(([k, label, colour, dashed]) =>
      el('span', { class: 'legend-item', 'data-key': k },
        el('span', { class: `swatch${dashed ? ' dashed' : ''}`, style: `--c:${colour}` }), label)));
  }

  function draw() {
    if (!data) return;
    const t = data.totals;
    const list = data.days;
    const share = t.commands ? t.unattended / t.commands : null;
    const grown = t.whitelist_now - t.whitelist_start;
    const used = new Set(list.flatMap((d) => Object.values(d.outcomes || {}).flatMap((o) => Object.keys(o))));
    const chips = el('div', { class: 'chips', role: 'group', 'aria-label': 'tier' }, ...TIERS.map(([k, label]) =>
      el('button', { type: 'button', class: `chip${k === tier ? ' active' : ''}${k !== 'all' ? ` chip-${k}` : ''}`, 'data-tier': k,
        onclick: () => { tier = k; draw(); } }, label)));
    // Seconds, on round minutes once the slowest day took more than a minute and a half.
    const slowest = Math.max(1, ...list.map((d) => (d.decision.p90_ms || 0) / 1000));
    const maxWait = slowest > 90 ? niceMax(slowest / 60) * 60 : niceMax(slowest);
    const maxWl = countMax(Math.max(1, ...list.map((d) => d.whitelist)));
    $('insights').replaceChildren(
      el('div', { class: 'kpis' },
        kpi('kpi-commands', int(t.commands), `commands in ${data.period_days} days`,
          TIER_ORDER.filter((k) => t.tiers[k]).map((k) => `${k === 'none' ? 'unclassified' : k} ${int(t.tiers[k])}`).join(' · '), t.commands),
        kpi('kpi-unattended', share === null ? '—' : pct(share), 'ran without a human',
          `${int(t.unattended)} at once or whitelisted`, share === null ? '' : Math.round(share * 100)),
        kpi('kpi-median', dur(t.decision.median_ms), 'median time to decision',
          `${int(t.decision.count)} decided by reviewers`, t.decision.median_ms ?? ''),
        kpi('kpi-p90', dur(t.decision.p90_ms), '90% decided within', '', t.decision.p90_ms ?? ''),
        kpi('kpi-whitelist', int(t.whitelist_now), 'whitelist entries in force',
          `${grown >= 0 ? '+' : '−'}${int(Math.abs(grown))} in ${data.period_days} days`, t.whitelist_now)),
      panel('chart-requests', 'Commands per day', 'by outcome', barChart(list),
        el('div', {}, chips, legend(OUTCOMES.filter(([k]) => used.has(k))))),
      el('div', { class: 'panels-2' },
        panel('chart-decision', 'Time to decision', 'reviewers’ approvals and denials, per day',
          lineChart(list, [
            { name: 'p90', colour: '#b794f4', dashed: true, value: (d) => (d.decision.p90_ms ?? null) === null ? null : d.decision.p90_ms / 1000,
              raw: (d) => d.decision.p90_ms, title: (d) => `p90 ${dur(d.decision.p90_ms)}` },
            { name: 'median', colour: '#4c8df6', value: (d) => (d.decision.median_ms ?? null) === null ? null : d.decision.median_ms / 1000,
              raw: (d) => d.decision.median_ms, title: (d) => `median ${dur(d.decision.median_ms)} of ${d.decision.count}` },
          ], { max: maxWait, label: (v) => dur(v * 1000) }),
          legend([['median', 'median', '#4c8df6'], ['p90', '90th percentile', '#b794f4', true]])),
        panel('chart-unattended', 'Ran without a human', 'share of the day’s commands',
          lineChart(list, [{ name: 'share', colour: '#38a169', value: (d) => (d.commands ? (100 * d.unattended) / d.commands : null),
            raw: (d) => (d.commands ? Math.round((100 * d.unattended) / d.commands) : ''),
            title: (d) => `${pct(d.unattended / d.commands)} (${int(d.unattended)} of ${int(d.commands)})` }],
          { max: 100, label: (v) => `${Math.round(v)}%`, area: true }))),
      panel('chart-whitelist', 'The whitelist', 'entries in force at each day’s end — what the team taught Airlock',
        lineChart(list, [{ name: 'whitelist', colour: '#2bb5a4', value: (d) => d.whitelist, title: (d) => `${int(d.whitelist)} entries` }],
          { max: maxWl, label: (v) => int(v), area: true, w: WIDE, h: 200 })),
    );
    const notes = [];
    if (data.withheld) notes.push('targets outside your reviewer groups’ scope are left out');
    if (data.truncated) notes.push('only the first commands of the period were counted');
    notes.push('days are UTC');
    $('insights-note').textContent = notes.join(' · ');
  }

  async function load() {
    if (!state.token || $('tabs').hidden || !open) return;
    const mine = ++seq;
    try {
      const d = await get(`/api/insights?days=${days}`);
      if (mine !== seq || !open) return;
      data = d;
      draw();
    } catch (e) {
      if (mine === seq) $('insights').replaceChildren(el('p', { class: 'error' }, `insights: ${e.message}`));
    }
  }

  function show(on) {
    open = on;
    $('insights-view').hidden = !on;
    $('tab-insights').classList.toggle('active', on);
    if (on) {
      // app.js's decision keys act only in its queue view: none may reach a card not on screen.
      state.view = 'insights';
      for (const id of ['queue-view', 'history-view', 'proposed-view', 'agents-view']) $(id).hidden = true;
      for (const id of ['tab-queue', 'tab-history', 'tab-proposed', 'tab-agents']) $(id).classList.remove('active');
      load();
    }
  }

  function init() {
    $('tab-insights').addEventListener('click', () => show(true));
    // The other tabs belong to other scripts; leaving for one of them closes this view.
    for (const id of ['tab-queue', 'tab-history', 'tab-proposed', 'tab-agents']) $(id).addEventListener('click', () => show(false));
    document.addEventListener('keydown', (e) => { if (open && e.key.toLowerCase() === 'h' && !document.querySelector('dialog[open]')) show(false); }, true);
    for (const b of $('insights-period').querySelectorAll('button')) {
      b.addEventListener('click', () => {
        days = Number(b.dataset.days);
        for (const o of $('insights-period').querySelectorAll('button')) o.classList.toggle('active', o === b);
        load();
      });
    }
    // Signed out (the sign-in form is back): nothing of this view may stay on screen.
    new MutationObserver(() => { if (!$('signin-view').hidden) { show(false); data = null; $('insights').replaceChildren(); } })
      .observe($('signin-view'), { attributes: true, attributeFilter: ['hidden'] });
  }

  init();
  return { load };
})();
