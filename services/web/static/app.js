// socialnet's browser side: a small OpenTelemetry-compatible tracer, and "older posts"
// without a page load. The pages work without it; it only adds.
//
// Tracing, as the OpenTelemetry JS web SDK does it:
// - documentLoad: the page's load from the Navigation Timing API, a child of the
//   server's span named in <meta name="traceparent">, so the page's server spans and
//   its load in the browser are one trace; documentFetch under it.
// - every fetch: a CLIENT span that sends `traceparent`; a click that causes one is an
//   interaction span, its parent.
// - JavaScript errors: `exception` events (exception.type, .message, .stacktrace).
// - every message sent over the live socket: a CLIENT span `WS send` whose context the
//   frame carries (`traceparent` in its envelope), ended by the server's ack.
// Spans are batched and sent as OTLP/JSON (hex ids, integer enums, nanoseconds as
// strings) to the same-origin /v1/traces, and flushed with sendBeacon when the page is
// hidden.
(function () {
  'use strict';

  var ENDPOINT = '/v1/traces';
  var KIND = { INTERNAL: 1, CLIENT: 3 };
  var queue = [];
  var plainFetch = window.fetch.bind(window);

  function randomHex(bytes) {
    var a = new Uint8Array(bytes);
    crypto.getRandomValues(a);
    var s = '';
    for (var i = 0; i < a.length; i++) s += (a[i] < 16 ? '0' : '') + a[i].toString(16);
    return s;
  }

  // Milliseconds since the epoch (fractional) as integer nanoseconds, in a string.
  function nanos(ms) {
    var whole = Math.floor(ms);
    var frac = Math.round((ms - whole) * 1e6);
    return (BigInt(whole) * 1000000n + BigInt(frac)).toString();
  }

  function now() {
    return performance.timeOrigin + performance.now();
  }

  function attr(key, value) {
    if (typeof value === 'number' && Number.isInteger(value)) return { key: key, value: { intValue: String(value) } };
    if (typeof value === 'number') return { key: key, value: { doubleValue: value } };
    if (typeof value === 'boolean') return { key: key, value: { boolValue: value } };
    return { key: key, value: { stringValue: String(value) } };
  }

  // The server's span for this page: "00-<trace id>-<span id>-01".
  var page = (function () {
    var m = document.querySelector('meta[name="traceparent"]');
    var parts = m ? m.content.split('-') : [];
    if (parts.length === 4 && parts[1].length === 32 && parts[2].length === 16) {
      return { traceId: parts[1], spanId: parts[2] };
    }
    return null;
  })();

  function startSpan(name, kind, parent, startMs) {
    // An interaction stays open until the requests it caused are over.
    if (parent && parent.open !== undefined) parent.open++;
    return {
      parent: parent,
      traceId: parent ? parent.traceId : randomHex(16),
      spanId: randomHex(8),
      parentSpanId: parent ? parent.spanId : '',
      name: name,
      kind: kind,
      start: startMs === undefined ? now() : startMs,
      attributes: [],
      events: [],
      error: null
    };
  }

  function endSpan(s, endMs) {
    if (s.ended) return;
    s.ended = true;
    var p = s.parent;
    if (p && p.open !== undefined) {
      p.open--;
      if (p.closing && p.open === 0) endSpan(p);
    }
    var out = {
      traceId: s.traceId,
      spanId: s.spanId,
      name: s.name,
      kind: s.kind,
      startTimeUnixNano: nanos(s.start),
      endTimeUnixNano: nanos(endMs === undefined ? now() : endMs),
      attributes: s.attributes,
      events: s.events
    };
    if (s.parentSpanId) out.parentSpanId = s.parentSpanId;
    if (s.error) out.status = { code: 2, message: s.error };
    queue.push(out);
    if (queue.length >= 50) flush(false);
  }

  function resource() {
    var ua = navigator.userAgentData;
    var attrs = [
      attr('service.name', 'socialnet-web'),
      attr('telemetry.sdk.language', 'webjs'),
      attr('telemetry.sdk.name', 'socialnet-tracer'),
      attr('telemetry.sdk.version', '1.0.0'),
      attr('user_agent.original', navigator.userAgent),
      attr('browser.language', navigator.language)
    ];
    if (ua) {
      attrs.push(attr('browser.mobile', !!ua.mobile));
      if (ua.platform) attrs.push(attr('browser.platform', ua.platform));
    }
    return { attributes: attrs };
  }

  function flush(leaving) {
    if (queue.length === 0) return;
    var body = JSON.stringify({
      resourceSpans: [{
        resource: resource(),
        scopeSpans: [{ scope: { name: 'socialnet-browser', version: '1.0.0' }, spans: queue.splice(0) }]
      }]
    });
    if (leaving && navigator.sendBeacon) {
      navigator.sendBeacon(ENDPOINT, new Blob([body], { type: 'application/json' }));
    } else {
      plainFetch(ENDPOINT, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body, keepalive: true })
        .catch(function () { /* telemetry never breaks the page */ });
    }
  }

  setInterval(function () { flush(false); }, 5000);
  // Leaving or hiding the page: an interaction still open ends now, and everything held
  // goes with sendBeacon, which outlives the page.
  function leaving() {
    endInteraction(true);
    flush(true);
  }
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') leaving();
  });
  window.addEventListener('pagehide', leaving);

  // The page's load, once the load event is over.
  window.addEventListener('load', function () {
    setTimeout(function () {
      var nav = performance.getEntriesByType('navigation')[0];
      if (!nav || !page) return;
      var t0 = performance.timeOrigin;
      var load = startSpan('documentLoad', KIND.INTERNAL, page, t0 + nav.startTime);
      load.attributes.push(attr('url.full', location.href));
      load.attributes.push(attr('http.response.status_code', nav.responseStatus || 200));
      var fetchSpan = startSpan('documentFetch', KIND.INTERNAL, load, t0 + nav.fetchStart);
      fetchSpan.attributes.push(attr('url.full', location.href));
      endSpan(fetchSpan, t0 + nav.responseEnd);
      [['domInteractive', nav.domInteractive], ['domContentLoadedEventEnd', nav.domContentLoadedEventEnd],
       ['loadEventEnd', nav.loadEventEnd]].forEach(function (e) {
        load.events.push({ name: e[0], timeUnixNano: nanos(t0 + e[1]), attributes: [] });
      });
      endSpan(load, t0 + nav.loadEventEnd);
    }, 0);
  });

  // A click that causes requests is their parent for a moment.
  var interaction = null;
  // No longer the parent of new requests; ends once those it caused are over (or now,
  // when the page goes).
  function endInteraction(now) {
    var s = interaction;
    interaction = null;
    if (!s) return;
    s.closing = true;
    if (now || s.open === 0) endSpan(s);
  }
  document.addEventListener('click', function (ev) {
    var el = ev.target.closest('a, button');
    if (!el) return;
    endInteraction();
    var s = startSpan('click', KIND.INTERNAL, null);
    s.open = 0;
    s.attributes.push(attr('event_type', 'click'));
    s.attributes.push(attr('target_element', el.tagName));
    if (el.textContent) s.attributes.push(attr('target_text', el.textContent.trim().slice(0, 64)));
    interaction = s;
    setTimeout(function () { if (interaction === s) endInteraction(false); }, 1000);
  }, true);

  // Every fetch is a CLIENT span carrying its context.
  window.fetch = function (input, init) {
    init = init || {};
    var method = (init.method || 'GET').toUpperCase();
    var url = new URL(typeof input === 'string' ? input : input.url, location.href);
    var s = startSpan(method, KIND.CLIENT, interaction || page);
    s.attributes.push(attr('http.request.method', method));
    s.attributes.push(attr('url.full', url.href));
    s.attributes.push(attr('server.address', url.hostname));
    var headers = new Headers(init.headers || {});
    headers.set('traceparent', '00-' + s.traceId + '-' + s.spanId + '-01');
    init.headers = headers;
    return plainFetch(input, init).then(function (r) {
      s.attributes.push(attr('http.response.status_code', r.status));
      if (r.status >= 400) s.error = 'HTTP ' + r.status;
      endSpan(s);
      return r;
    }, function (e) {
      s.error = String(e);
      s.attributes.push(attr('error.type', 'fetch_failed'));
      endSpan(s);
      throw e;
    });
  };

  // JavaScript errors, as exception events on a span of the page's trace.
  function exception(type, message, stack) {
    var s = startSpan('exception', KIND.INTERNAL, page);
    s.events.push({
      name: 'exception',
      timeUnixNano: nanos(now()),
      attributes: [attr('exception.type', type), attr('exception.message', message), attr('exception.stacktrace', stack || '')]
    });
    s.error = message;
    endSpan(s);
  }
  window.addEventListener('error', function (e) {
    exception(e.error && e.error.name || 'Error', e.message, e.error && e.error.stack);
  });
  window.addEventListener('unhandledrejection', function (e) {
    var r = e.reason || {};
    exception(r.name || 'UnhandledRejection', String(r.message || r), r.stack);
  });

  // "Older posts" in place: the link works without JavaScript; with it, the next page
  // is fetched as a fragment and appended when the link scrolls into view (infinite
  // scroll) or is clicked.
  function more(a) {
    if (a.dataset.loading) return;
    a.dataset.loading = '1';
    fetch(a.dataset.more).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.text();
    }).then(function (html) {
      var holder = document.createElement('div');
      holder.innerHTML = html;
      a.replaceWith.apply(a, Array.from(holder.childNodes));
      watch();
    }).catch(function () { location.href = a.href; });
  }
  var seen = 'IntersectionObserver' in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (e.isIntersecting) { seen.unobserve(e.target); more(e.target); }
    });
  }, { rootMargin: '200px' }) : null;
  function watch() {
    if (!seen) return;
    document.querySelectorAll('a[data-more]').forEach(function (a) { seen.observe(a); });
  }
  watch();
  document.addEventListener('click', function (ev) {
    var a = ev.target.closest('a[data-more]');
    if (!a) return;
    ev.preventDefault();
    more(a);
  });

  // A conversation, live: messages, typing and presence over the socket (through the
  // gateway, opened with a single-use ticket web fetches for this page), and sending
  // over it. Without JavaScript, or while the socket is down, the form posts instead.
  var convo = document.querySelector('section[data-conversation]');
  if (convo) live(convo);

  function live(section) {
    var id = Number(section.dataset.conversation);
    var me = section.dataset.me;
    var lastSeq = Number(section.dataset.lastSeq) || 0;
    var list = section.querySelector('.messages');
    var typingLine = section.querySelector('.typing');
    var form = section.querySelector('form.send');
    var box = form.querySelector('textarea');
    var socket = null;
    var pending = {};
    var retry = 500;
    var typingSent = 0;
    var typingTimer = null;

    function show(m) {
      if (m.conversation_id !== id || m.seq <= lastSeq) return;
      lastSeq = m.seq;
      var empty = list.querySelector('.empty');
      if (empty) empty.remove();
      var a = document.createElement('article');
      a.className = 'message';
      a.dataset.seq = m.seq;
      var h = document.createElement('header');
      var who = document.createElement('a');
      who.href = '/u/' + encodeURIComponent(m.sender);
      who.textContent = '@' + m.sender;
      h.appendChild(who);
      h.appendChild(document.createTextNode(' · ' + String(m.created_at || '').slice(0, 16).replace('T', ' ')));
      var p = document.createElement('p');
      p.textContent = m.body;
      a.appendChild(h);
      a.appendChild(p);
      list.appendChild(a);
      if (m.sender === me) return;
      typingLine.textContent = '';
    }

    function connect() {
      fetch('/fragments/ws-ticket', { method: 'POST', headers: { 'x-csrf-token': section.dataset.csrf } })
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (t) {
          var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
          var ws = new WebSocket(scheme + location.host + '/api/messages/ws?ticket=' +
            encodeURIComponent(t.ticket) + '&since=' + id + ':' + lastSeq);
          ws.onopen = function () { socket = ws; retry = 500; section.dataset.live = 'open'; };
          ws.onmessage = function (ev) { frame(JSON.parse(ev.data)); };
          ws.onclose = function () {
            socket = null;
            section.dataset.live = 'closed';
            setTimeout(connect, retry);
            retry = Math.min(retry * 2, 10000);
          };
        })
        .catch(function () { setTimeout(connect, retry); retry = Math.min(retry * 2, 10000); });
    }

    function frame(f) {
      if (f.type === 'message') show(f.message);
      else if (f.type === 'ack' || f.type === 'error') {
        var s = pending[f.id];
        if (!s) return;
        delete pending[f.id];
        if (f.type === 'error') {
          s.error = f.message || f.error;
          s.attributes.push(attr('error.type', f.error || 'error'));
        }
        endSpan(s);
      } else if (f.type === 'typing' && f.conversation_id === id && f.user !== me) {
        typingLine.textContent = '@' + f.user + ' is typing…';
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { typingLine.textContent = ''; }, 4000);
      } else if (f.type === 'presence') {
        var li = section.querySelector('[data-presence="' + CSS.escape(f.user) + '"] .state');
        if (li) li.textContent = f.online ? 'online' : 'offline';
      }
    }

    form.addEventListener('submit', function (ev) {
      if (!socket || socket.readyState !== WebSocket.OPEN || !box.value.trim()) return;
      ev.preventDefault();
      var clientId = randomHex(16);
      var s = startSpan('WS send', KIND.CLIENT, interaction || page);
      s.attributes.push(attr('network.protocol.name', 'websocket'));
      s.attributes.push(attr('socialnet.ws.frame.type', 'send'));
      s.attributes.push(attr('messaging.message.conversation_id', id));
      s.attributes.push(attr('server.address', location.hostname));
      pending[clientId] = s;
      socket.send(JSON.stringify({
        type: 'send', id: clientId, conversation_id: id, body: box.value,
        traceparent: '00-' + s.traceId + '-' + s.spanId + '-01'
      }));
      box.value = '';
    });

    box.addEventListener('input', function () {
      var t = Date.now();
      if (!socket || socket.readyState !== WebSocket.OPEN || t - typingSent < 2000) return;
      typingSent = t;
      socket.send(JSON.stringify({ type: 'typing', conversation_id: id }));
    });

    connect();
  }
})();
