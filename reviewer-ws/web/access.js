// Access requests on the reviewer page (docs/reviewer-protocol.md, "Access requests"): an
// agent asks for a time-boxed grant on a target marked requires_grant. Shown apart from
// commands — an approval here lets the agent use the whole target until the grant expires —
// and decided with the same keys: A approves (no typed confirmation: it is not a high-risk
// command), D denies with a reason; nothing can be remembered. The agent's reason is shown
// only in its display form `shown.reason`, inserted as text.
'use strict';

// Whether r asks for access rather than to run a command.
const isAccess = (r) => Boolean(r) && r.kind === 'access';

// 3600 → `1h`, 5400 → `1h30m`, 90 → `1m30s`.
function accessDuration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const parts = [[Math.floor(s / 3600), 'h'], [Math.floor(s / 60) % 60, 'm'], [s % 60, 's']];
  return parts.filter(([n]) => n > 0).map(([n, u]) => `${n}${u}`).join('') || '0s';
}

// `ACCESS: deploy-bot asks for prod for 1h`.
function accessTitle(r) {
  return `ACCESS: ${r.agent} asks for ${r.access_target || r.target} for ${accessDuration(r.access_duration_s)}`;
}

// The card of an access request; `button(cls, label, fn)` makes a card button (app.js).
function accessCard(r, selected, barred, button) {
  const top = el('div', { class: 'top' },
    el('span', { class: 'tier tier-access' }, 'access'),
    el('strong', {}, accessTitle(r)),
    ...Object.entries(r.target_labels || {}).map(([k, v]) =>
      el('span', { class: `label${/^(prod|production|live)$/i.test(v) ? ' label-prod' : ''}` }, `${k}=${v}`)),
    progressView(r),
    el('span', { class: 'countdown', 'data-expires': r.expires_at_ms }, `denies in ${left(r.expires_at_ms)}`));
  const reason = el('p', { class: 'stated' }, el('span', { class: 'muted' }, 'reason: '),
    usable(r.shown?.reason) ? renderInto(el('span', {}), r.shown.reason) : el('em', {}, '(no reason that can be displayed safely)'));
  const what = el('p', { class: 'muted' },
    `Approving grants ${r.agent} access to ${r.access_target || r.target} for ${accessDuration(r.access_duration_s)} from the approval: `
    + 'every command there is still judged, and anything above low still asks reviewers.');
  const actions = el('div', { class: 'actions' },
    button('approve', '✓ Grant access (A)', approve),
    button('deny', '✕ Deny… (D)', openDeny));
  return el('article', { class: `card access${selected ? ' selected' : ''}${barred ? ' barred' : ''}`, role: 'listitem', 'data-id': r.id, onclick: () => select(r.id) },
    top, ...needsView(r, barred), reason, flagList(r.shown?.reason, 'reason-flags'), what, actions,
    el('div', { class: 'muted' }, `request ${r.id} · node ${r.node} · asked ${when(r.created_at_ms)}`));
}
