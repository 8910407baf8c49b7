// Who must approve a request, as the reviewer page shows it: progress per need, the rule, and
// whether this reviewer's vote can count at all (docs/reviewer-protocol.md, "Reviewer groups
// and approval rules"). Pure functions of a request message; names reach the page as text only.
'use strict';

// Error codes that refuse a vote because of who the reviewer is.
const REFUSALS = ['out_of_scope', 'agent_owner', 'not_required'];

// Why `me` (in `groups`) cannot count on r, or '' when they can: the gateway refused their
// vote before (`refused`, its words), they own its agent (`excluded`), or every need names a
// group they are not in. Only spares a click the gateway would refuse; the gateway decides.
function notCounted(r, me, groups, refused) {
  if (refused) return refused;
  if (me && (r.excluded || []).includes(me)) return `you own agent ${r.agent}: your vote does not count on its requests`;
  // `any` is reserved for a need anyone may fill; no entries: a gateway from before groups.
  const labels = (r.progress?.entries || []).map((e) => e.label);
  if (!labels.length || labels.includes('any') || groups.some((g) => labels.includes(g))) return '';
  return `it needs ${r.needs || labels.join(', ')}; you are in none of those groups`;
}

// Who fills which need, one span per require entry (filled ones marked), reading as the
// gateway's progress_text: `approvals dba 0/1 · sre 1/1 (bob)`.
function progressView(r) {
  const entries = r.progress?.entries || [];
  if (!entries.length) {
    return el('span', { class: 'muted progress' }, `${r.approvals.length}/${r.approvals_needed} approvals${r.approvals.length ? `: ${r.approvals.join(', ')}` : ''}`);
  }
  const parts = entries.flatMap((e, i) => [i ? ' · ' : '',
    el('span', { class: `need${e.approvers.length >= e.count ? ' met' : ''}` },
      `${e.label} ${e.approvers.length}/${e.count}${e.approvers.length ? ` (${e.approvers.join(', ')})` : ''}`)]);
  return el('span', { class: 'muted progress' }, 'approvals ', ...parts);
}

// `needs 1 from dba and 1 from sre · rule prod-db` when a rule or a group sets the quorum,
// and `why` (from notCounted) as a warning when the reviewer's vote cannot count here.
function needsView(r, why) {
  const named = (r.progress?.entries || []).some((e) => e.label !== 'any');
  return [
    r.rule || named ? el('p', { class: 'needs muted' }, `needs ${r.needs}`, r.rule ? ` · rule ${r.rule}` : '') : '',
    why ? el('p', { class: 'not-counted', role: 'note' }, `⊘ your vote does not count here: ${why}`) : '',
  ];
}

// A vote or an ack (m) moved request r on: its approvals and who fills which need now. A
// gateway from before groups sends no progress; then the last one stays.
function progressed(r, m) {
  r.approvals = m.approvals;
  if (m.progress?.entries?.length) { r.progress = m.progress; r.progress_text = m.progress_text; }
}
