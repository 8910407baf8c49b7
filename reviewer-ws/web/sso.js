// Single sign-on for the reviewer page (docs/sso.md). When the gateway has [reviewer.oidc],
// the sign-in form offers "Sign in with <provider>" (a plain link to /auth/login, which goes
// to the identity provider and comes back with an HttpOnly session cookie this script never
// sees). A signed-in page is marked by AirlockSso.SESSION in place of a token: the socket and
// the read API then rely on the cookie, which the browser sends on same-origin requests only.
'use strict';

const AirlockSso = (() => {
  const SESSION = Symbol('sso-session');
  const $ = (id) => document.getElementById(id);

  async function json(path, init) {
    const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store', ...init });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    return { status: res.status, body };
  }

  // Offer the provider's button if sign-on is configured; whether it is.
  async function offer() {
    try {
      const { body } = await json('/auth/config');
      if (body && body.sso) {
        $('sso-login').textContent = `Sign in with ${body.provider}`;
        $('sso-box').hidden = false;
        return true;
      }
    } catch { /* the token form still works */ }
    return false;
  }

  return {
    SESSION,
    // Headers for the read API: a token's bearer header, or none (the cookie goes by itself).
    headers(token) {
      return typeof token === 'string' ? { Authorization: `Bearer ${token}` } : {};
    },
    // At load, without a token: a live session goes on at once (onSession(SESSION)); else
    // the sign-in form is shown (onNone), with the provider's button when there is one.
    async resume(onSession, onNone) {
      // Without single sign-on there is no session to ask about.
      if (!(await offer())) { onNone(); return; }
      try {
        const { status } = await json('/auth/me');
        if (status === 200) { onSession(SESSION); return; }
      } catch { /* not signed in */ }
      onNone();
    },
    // After the socket closed: if the session is gone (logged out elsewhere, expired), say so.
    async check(onGone) {
      try {
        const { status } = await json('/auth/me');
        if (status === 401) onGone();
      } catch { /* the gateway is down; the page keeps retrying */ }
    },
    // Sign-out: a session is ended at the gateway (on every node), not just forgotten here.
    signOut(token) {
      if (token !== SESSION) return;
      json('/auth/logout', { method: 'POST' }).catch(() => { /* best effort; the cookie expires */ });
    },
  };
})();
