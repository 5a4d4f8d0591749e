/* Lontar web chat: vanilla JS, no dependencies. Talks to /api/chat (see server). */
'use strict';

(function () {
  var API = '/api/chat';
  var POLL_MS = 5000;
  var TIMEOUT_MS = 20000;
  var MAX_DELAY_MS = 30000;
  var MAX_SERVER_ERRORS = 4; // give up on one message after this many 5xx answers
  var ID_RE = /^[A-Za-z0-9_-]{16,64}$/;

  var body = document.body;
  var strings = {
    offline: body.getAttribute('data-offline') || '',
    error: body.getAttribute('data-error') || ''
  };
  var transcript = document.getElementById('transcript');
  var notice = document.getElementById('notice');
  var form = document.getElementById('composer');
  var input = document.getElementById('message');

  // ---- storage (may be unavailable, e.g. private mode: then keep it in memory)
  function load(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function save(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* ignore */ }
  }

  // getRandomValues works on plain http too (randomUUID needs a secure context).
  function randomId() {
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return Array.prototype.map.call(bytes, function (b) {
      return (b < 16 ? '0' : '') + b.toString(16);
    }).join('');
  }

  var session = load('lontar.session');
  if (!session || !ID_RE.test(session)) {
    session = randomId();
    save('lontar.session', session);
  }
  var cursorKey = 'lontar.cursor.' + session;
  var returning = load(cursorKey) !== null;
  var cursor = 0;
  var seen = new Set();

  // ---- rendering (textContent only: server text is never parsed as HTML)
  var stick = true; // keep the view pinned to the newest message
  function scrollToEnd() {
    transcript.scrollTop = transcript.scrollHeight;
    stick = true;
  }
  transcript.addEventListener('scroll', function () {
    stick = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 48;
  });
  // Keep pinned when the view shrinks (phone keyboard opens, notice appears).
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(function () { if (stick) scrollToEnd(); }).observe(transcript);
  } else {
    window.addEventListener('resize', function () { if (stick) scrollToEnd(); });
  }

  // Show new bot messages from their start: scroll to the end, unless that would
  // push the top of the first new message out of view (long answers).
  function reveal(first) {
    var bottom = transcript.scrollHeight - transcript.clientHeight;
    var top = first.offsetTop - 8;
    if (top < bottom) {
      transcript.scrollTop = top;
      stick = false;
    } else {
      scrollToEnd();
    }
  }

  function bubble(from, text) {
    var el = document.createElement('div');
    el.className = 'msg msg--' + from;
    el.setAttribute('data-from', from);
    var p = document.createElement('p');
    p.className = 'msg__text';
    p.textContent = text;
    el.appendChild(p);
    return el;
  }

  function addUser(text) {
    var el = bubble('user', text);
    el.classList.add('msg--pending');
    transcript.appendChild(el);
    scrollToEnd();
    return el;
  }

  function addSystem(text) {
    if (!text) return;
    transcript.appendChild(bubble('system', text));
    scrollToEnd();
  }

  function addBot(m) {
    if (!m || typeof m !== 'object') return null;
    var id = Number(m.id);
    if (Number.isFinite(id)) {
      if (seen.has(id)) return null;
      seen.add(id);
    }
    var el = bubble('bot', typeof m.text === 'string' ? m.text : '');
    if (Number.isFinite(id)) el.setAttribute('data-id', String(id));
    if (Array.isArray(m.options) && m.options.length) {
      var box = document.createElement('div');
      box.className = 'options';
      m.options.forEach(function (o) {
        if (!o || o.id === undefined) return;
        var b = document.createElement('button');
        b.type = 'button';
        b.className = 'option';
        b.setAttribute('data-choice', String(o.id));
        b.textContent = String(o.label === undefined ? o.id : o.label);
        box.appendChild(b);
      });
      el.appendChild(box);
    }
    transcript.appendChild(el);
    return el;
  }

  function apply(data) {
    var first = null;
    data.messages.forEach(function (m) {
      var el = addBot(m);
      if (el && !first) first = el;
      var id = Number(m && m.id);
      if (Number.isFinite(id) && id > cursor) cursor = id;
    });
    var c = Number(data.cursor);
    if (Number.isFinite(c) && c > cursor) cursor = c;
    save(cursorKey, String(cursor));
    if (first) reveal(first);
  }

  // The status line above the input: shown while messages wait to be (re)sent.
  function setNotice(text) {
    notice.textContent = text || '';
    notice.hidden = !text;
  }
  function setOffline(on) { setNotice(on ? strings.offline : ''); }

  // ---- network
  var wakers = new Set();
  function sleep(ms) {
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); wakers.delete(done); resolve(); }
      wakers.add(done);
    });
  }
  function wakeAll() { Array.from(wakers).forEach(function (w) { w(); }); }

  // Resolves {status, data} (data null when the body is not JSON); rejects on network failure.
  function call(method, payload) {
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS) : 0;
    var url = API;
    var opts = {
      method: method,
      headers: { 'Accept': 'application/json' },
      cache: 'no-store',
      credentials: 'same-origin'
    };
    if (ctrl) opts.signal = ctrl.signal;
    if (method === 'POST') {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(payload);
    } else {
      url += '?session=' + encodeURIComponent(session) + '&after=' + cursor;
    }
    return fetch(url, opts).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        return { status: res.status, data: data };
      });
    }).finally(function () { clearTimeout(timer); });
  }

  function isGood(res) {
    return res.status >= 200 && res.status < 300 && res.data && Array.isArray(res.data.messages);
  }
  function isRefused(res) { // the server understood and said no: do not retry
    return res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
  }
  function isServerError(res) { // reached the server and it failed (not a proxy/gateway hiccup)
    return res.status >= 500 && [502, 503, 504].indexOf(res.status) < 0;
  }
  function refusal(res) {
    return (res.data && typeof res.data.message === 'string' && res.data.message) || strings.error;
  }

  // Outgoing messages go one at a time, in order; a failed POST is retried with
  // the same message_id so the server can recognise the repeat.
  var queue = [];
  var sending = false;

  function send(fields, shownText) {
    var payload = { session: session, message_id: randomId() };
    Object.keys(fields).forEach(function (k) { payload[k] = fields[k]; });
    queue.push({ payload: payload, el: shownText ? addUser(shownText) : null });
    pump();
  }

  function finish(item) {
    queue.shift();
    if (item.el) item.el.classList.remove('msg--pending');
  }

  async function pump() {
    if (sending) return;
    sending = true;
    var delay = 1000;
    var serverErrors = 0;
    while (queue.length) {
      var item = queue[0];
      item.payload.after = cursor;
      var res = null;
      try { res = await call('POST', item.payload); } catch (e) { res = null; }
      if (res && isGood(res)) {
        finish(item);
        setOffline(false);
        apply(res.data);
        delay = 1000;
        serverErrors = 0;
        continue;
      }
      if (res && (isRefused(res) || (isServerError(res) && ++serverErrors >= MAX_SERVER_ERRORS))) {
        finish(item);
        setOffline(false);
        addSystem(isRefused(res) ? refusal(res) : strings.error);
        delay = 1000;
        serverErrors = 0;
        continue;
      }
      // Network down, gateway hiccup, or "too many messages" (429): wait, then resend.
      if (res && res.status === 429) setNotice(refusal(res)); else setOffline(true);
      await sleep(delay + Math.floor(Math.random() * 500));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
    sending = false;
  }

  // Returns true when the server gave a definite answer (an update, or a refusal).
  var polling = false;
  async function fetchUpdates() {
    if (polling) return false;
    polling = true;
    try {
      var res = await call('GET');
      if (isGood(res)) {
        apply(res.data);
        if (!sending) setOffline(false);
        wakeAll(); // the network is back: retry pending messages now
        return true;
      }
      if (isRefused(res)) return true;
      setOffline(true);
      return false;
    } catch (e) {
      setOffline(true);
      return false;
    } finally {
      polling = false;
    }
  }

  function poll() {
    // While a POST is in flight its answer carries the news; skip hidden tabs.
    if (sending || document.hidden) return;
    fetchUpdates();
  }

  async function start() {
    if (returning) {
      // Reload: re-render this session's bot messages; greet again if there are none.
      var delay = 1000;
      while (!(await fetchUpdates())) {
        await sleep(delay);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      }
    }
    if (seen.size === 0 && !queue.length) send({ command: 'start' }, null);
  }

  // ---- user input
  var lastTap = { el: null, at: 0 };
  transcript.addEventListener('click', function (e) {
    var b = e.target.closest ? e.target.closest('button.option') : null;
    if (!b) return;
    var now = Date.now();
    if (lastTap.el === b && now - lastTap.at < 1000) return; // ignore double taps
    lastTap = { el: b, at: now };
    Array.prototype.forEach.call(b.parentNode.children, function (s) {
      s.classList.toggle('option--chosen', s === b);
    });
    send({ choice: b.getAttribute('data-choice') }, b.textContent);
  });

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) { input.focus(); return; }
    input.value = '';
    send({ text: text.slice(0, 2000) }, text);
    input.focus();
  });

  window.addEventListener('online', function () { wakeAll(); poll(); });
  window.addEventListener('focus', poll);
  document.addEventListener('visibilitychange', function () { if (!document.hidden) poll(); });
  setInterval(poll, POLL_MS);

  start();
})();
