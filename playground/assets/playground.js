// Scoville Playground: GraphiQL whose requests carry the signed-in admin's access
// token. Sign-in is the OAuth 2.0 authorization code flow with PKCE (RFC 7636, S256)
// for a public client: state and code_verifier wait in sessionStorage while the
// browser is at the issuer; the token is kept in this tab only (memory and
// sessionStorage), never in a cookie. No inline script: the page's policy forbids it.
(function () {
  'use strict';

  var PENDING_KEY = 'scoville.playground.pending';
  var TOKEN_KEY = 'scoville.playground.token';

  var bar = document.getElementById('playground');
  var statusEl = document.getElementById('playground-status');
  var signInButton = document.getElementById('playground-sign-in');
  var signOutButton = document.getElementById('playground-sign-out');
  var cfg = {
    path: bar.dataset.path,
    endpoint: bar.dataset.endpoint,
    issuer: bar.dataset.issuer,
    clientId: bar.dataset.clientId,
    scope: bar.dataset.scope
  };
  var redirectUri = window.location.origin + cfg.path;
  var session = null; // {accessToken, expiresAt, label}
  var root = null;
  var generation = 0;

  function showStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle('error', Boolean(isError));
  }

  function base64url(bytes) {
    var s = '';
    for (var i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomString(byteCount) {
    var b = new Uint8Array(byteCount);
    window.crypto.getRandomValues(b);
    return base64url(b);
  }

  function s256(text) {
    return window.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)).then(function (d) {
      return base64url(new Uint8Array(d));
    });
  }

  function readJSON(storageKey) {
    try {
      return JSON.parse(window.sessionStorage.getItem(storageKey) || 'null');
    } catch (e) {
      return null;
    }
  }

  // describeToken returns who the token is for, for the status line only: the
  // server verifies the token, this never decides anything.
  function describeToken(token) {
    try {
      var part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      var claims = JSON.parse(atob(part));
      var who = claims.name || claims.sub || 'unknown';
      var roles = Array.isArray(claims.roles) ? claims.roles.join(', ') : '';
      return roles ? who + ' (' + roles + ')' : who;
    } catch (e) {
      return 'an opaque token';
    }
  }

  function loadSession() {
    var s = readJSON(TOKEN_KEY);
    if (!s || typeof s.accessToken !== 'string') {
      return null;
    }
    if (typeof s.expiresAt === 'number' && s.expiresAt <= Date.now()) {
      window.sessionStorage.removeItem(TOKEN_KEY);
      showStatus('Your sign-in expired: sign in again.', true);
      return null;
    }
    return s;
  }

  function setSession(s) {
    session = s;
    if (s) {
      window.sessionStorage.setItem(TOKEN_KEY, JSON.stringify(s));
    } else {
      window.sessionStorage.removeItem(TOKEN_KEY);
    }
    updateBar();
    render();
  }

  function updateBar() {
    var canSignIn = Boolean(cfg.clientId && cfg.issuer);
    signInButton.hidden = !canSignIn || Boolean(session);
    signOutButton.hidden = !session;
    if (session) {
      showStatus('Signed in as ' + session.label + '.', false);
    }
  }

  // discover reads the issuer's OpenID Connect discovery document and checks that
  // it is the configured issuer and that the page's policy lets it reach the
  // token endpoint.
  function discover() {
    var base = cfg.issuer.replace(/\/+$/, '');
    return fetch(base + '/.well-known/openid-configuration', { credentials: 'omit' })
      .then(function (res) {
        if (!res.ok) {
          throw new Error('the issuer\'s discovery document answered HTTP ' + res.status);
        }
        return res.json();
      })
      .then(function (d) {
        if (d.issuer !== cfg.issuer) {
          throw new Error('the discovery document names another issuer');
        }
        if (!d.authorization_endpoint || !d.token_endpoint) {
          throw new Error('the issuer offers no authorization code flow');
        }
        var methods = d.code_challenge_methods_supported;
        if (Array.isArray(methods) && methods.indexOf('S256') < 0) {
          throw new Error('the issuer does not support PKCE with S256');
        }
        var tokenOrigin = new URL(d.token_endpoint).origin;
        if (tokenOrigin !== new URL(cfg.issuer).origin && tokenOrigin !== window.location.origin) {
          throw new Error('the token endpoint is on ' + tokenOrigin +
            ', which the Playground\'s Content-Security-Policy does not allow (only the issuer\'s origin)');
        }
        return d;
      });
  }

  function signIn() {
    signInButton.disabled = true;
    showStatus('Signing in…', false);
    var verifier = randomString(32);
    var state = randomString(16);
    discover()
      .then(function (d) {
        return s256(verifier).then(function (challenge) {
          window.sessionStorage.setItem(PENDING_KEY, JSON.stringify({
            state: state, verifier: verifier, tokenEndpoint: d.token_endpoint, startedAt: Date.now()
          }));
          var u = new URL(d.authorization_endpoint);
          u.searchParams.set('response_type', 'code');
          u.searchParams.set('client_id', cfg.clientId);
          u.searchParams.set('redirect_uri', redirectUri);
          u.searchParams.set('scope', cfg.scope);
          u.searchParams.set('state', state);
          u.searchParams.set('code_challenge', challenge);
          u.searchParams.set('code_challenge_method', 'S256');
          window.location.assign(u.toString());
        });
      })
      .catch(function (err) {
        signInButton.disabled = false;
        showStatus('Sign-in failed: ' + err.message, true);
      });
  }

  // finishSignIn handles the issuer's redirect back: it checks state, then
  // exchanges the code, with the verifier, for an access token.
  function finishSignIn(params) {
    var pending = readJSON(PENDING_KEY);
    window.sessionStorage.removeItem(PENDING_KEY);
    window.history.replaceState(null, '', cfg.path); // the code must not linger in the URL or history
    if (!pending || pending.state !== params.get('state')) {
      return Promise.reject(new Error('the answer does not match a sign-in started in this tab; sign in again'));
    }
    if (params.get('iss') && params.get('iss') !== cfg.issuer) {
      return Promise.reject(new Error('the answer came from another issuer'));
    }
    if (params.get('error')) {
      return Promise.reject(new Error('the issuer refused: ' +
        (params.get('error_description') || params.get('error'))));
    }
    var body = new URLSearchParams();
    body.set('grant_type', 'authorization_code');
    body.set('code', params.get('code') || '');
    body.set('redirect_uri', redirectUri);
    body.set('client_id', cfg.clientId);
    body.set('code_verifier', pending.verifier);
    return fetch(pending.tokenEndpoint, {
      method: 'POST',
      credentials: 'omit',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Accept': 'application/json' },
      body: body.toString()
    })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (t) {
          if (!res.ok || typeof t.access_token !== 'string') {
            throw new Error('the token exchange failed: ' + (t.error_description || t.error || 'HTTP ' + res.status));
          }
          var expiresAt = typeof t.expires_in === 'number' ? Date.now() + t.expires_in * 1000 : null;
          return { accessToken: t.access_token, expiresAt: expiresAt, label: describeToken(t.access_token) };
        });
      });
  }

  function signOut() {
    setSession(null);
    showStatus('Signed out: requests go without a token.', false);
  }

  // fetcher sends GraphiQL's request with the admin's bearer token; a header set in
  // GraphiQL's Headers tab takes precedence.
  function fetcher(graphQLParams, opts) {
    var headers = { 'Content-Type': 'application/json', 'Accept': 'application/json' };
    if (session && typeof session.expiresAt === 'number' && session.expiresAt <= Date.now()) {
      setSession(null);
      showStatus('Your sign-in expired: sign in again.', true);
    }
    if (session) {
      headers.Authorization = 'Bearer ' + session.accessToken;
    }
    var extra = (opts && opts.headers) || {};
    Object.keys(extra).forEach(function (k) {
      if (k.toLowerCase() === 'authorization') {
        delete headers.Authorization;
      }
      headers[k] = extra[k];
    });
    return fetch(cfg.endpoint, {
      method: 'POST',
      credentials: 'omit',
      headers: headers,
      body: JSON.stringify(graphQLParams)
    }).then(function (res) {
      return res.text().then(function (text) {
        try {
          return JSON.parse(text);
        } catch (e) {
          return { errors: [{ message: 'HTTP ' + res.status + ': ' + text.slice(0, 200) }] };
        }
      });
    });
  }

  // What a new tab opens on: Scoville's own queries, not GraphiQL's welcome text.
  var SAMPLE_QUERY = [
    '# Scoville admin Playground. Sign in (top right) or paste a token in Headers:',
    '#   {"Authorization": "Bearer <token>"}',
    '# The Docs panel lists every operation; staff-only ones need the support or',
    '# admin role (adminSubscriptions, webhookEvents, auditLog, ...).',
    '',
    'query Start {',
    '  plans { id name interval price { amount currency } trialDays }',
    '  me { id email subscriptions { id status plan { name } currentPeriodEnd } }',
    '}',
    ''
  ].join('\n');

  function render() {
    if (!root) {
      root = ReactDOM.createRoot(document.getElementById('graphiql'));
    }
    generation++;
    // A new key mounts a fresh GraphiQL, so the schema is fetched again with the
    // new token (or without one).
    root.render(React.createElement(GraphiQL, {
      key: 'g' + generation,
      fetcher: fetcher,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: false,
      defaultQuery: SAMPLE_QUERY,
      visiblePlugin: 'Documentation Explorer',
      isHeadersEditorEnabled: true
    }));
  }

  signInButton.addEventListener('click', signIn);
  signOutButton.addEventListener('click', signOut);

  var params = new URLSearchParams(window.location.search);
  session = loadSession();
  updateBar();
  render();
  if (params.has('code') || params.has('error')) {
    showStatus('Signing in…', false);
    finishSignIn(params)
      .then(setSession)
      .catch(function (err) {
        showStatus('Sign-in failed: ' + err.message, true);
      });
  }
}());
