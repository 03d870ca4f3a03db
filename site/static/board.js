// plotboard's page script: README.md "The page" tells what it does.
(() => {
  "use strict";
  const root = document.getElementById("board");
  if (!root) return;
  const refresh = Math.max(1, parseFloat(root.dataset.refresh) || 10) * 1000;
  const base = root.dataset.base || "", split = root.hasAttribute("data-split");
  const banner = document.getElementById("offline"), problems = document.getElementById("problems");
  const generated = document.getElementById("generated");
  const kiosk = document.documentElement.classList.contains("kiosk");
  // From disk (file:) nothing is polled: a snapshot, not an outage.
  const live = location.protocol !== "file:";
  const cards = new Map(), groups = new Map(), shown = new Set();
  for (const c of root.querySelectorAll(".card[data-name]")) cards.set(c.dataset.name, c);
  for (const g of root.querySelectorAll("section.group[data-group]")) groups.set(g.dataset.group, g);
  let skew = 0, offlineSince = 0, timer = 0, busy = false, genAt = root.dataset.generated, pushed = false, again = false;

  const $ = (card, sel) => card.querySelector(sel);
  const now = () => Date.now() + skew;
  const local = (t) => new Date(t).toLocaleString();
  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  // Staleness judged now, not when written.
  function judge(card, rendered) {
    const s = card.dataset.state, lim = card.dataset.stale;
    if (s !== "ok" && s !== "stale") return s;
    return rendered && lim !== "" && now() - rendered > lim * 1000 ? "stale" : "ok";
  }

  function paint(card) {
    const age = $(card, ".age"), t = Date.parse(age.dateTime), state = judge(card, t);
    card._state = state;
    if (!card.classList.contains("state-" + state)) {
      card.className = card.className.replace(/\bstate-\S+/g, "").trim() + " state-" + state;
      $(card, ".badge").textContent = state;
    }
    if (t) {
      age.textContent = ago(now() - t);
      age.title = "rendered " + local(t) + (card._changed ? "\nimage changed " + local(card._changed) : "");
    }
    $(card, ".err").hidden = state !== "error";
  }

  // -- group summaries --
  const ORDER = ["error", "stale", "pending", "ok"], NAMED = 12;
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function summarize(section) {
    const counts = {}, trouble = { error: [], stale: [] };
    let more = 0;
    if (split) { // no cards: status/index.json's view
      if (!section._index) return;
      Object.assign(counts, section._index.counts || {});
      for (const t of section._index.trouble || []) if (trouble[t.state]) trouble[t.state].push(t);
      more = section._index.more || 0;
    } else for (const c of section.querySelectorAll(".card[data-name]")) {
      const s = c._state || c.dataset.state;
      counts[s] = (counts[s] || 0) + 1;
      if (trouble[s]) trouble[s].push({ name: c.dataset.name, state: s, title: $(c, "h2").textContent });
    }
    const key = JSON.stringify(counts) + trouble.error.concat(trouble.stale).map((c) => c.name).join() + more;
    if (section._summary === key) return;
    section._summary = key;
    const p = $(section, ".summary"), nav = document.querySelector(`#groups a[data-group="${section.dataset.group}"] .counts`);
    if (p) {
      p.replaceChildren();
      for (const s of ORDER) if (counts[s]) p.append(el("span", "count state-" + s, counts[s] + " " + s), " ");
      const bad = trouble.error.concat(trouble.stale), page = split ? base + "groups/" + section.dataset.group + ".html" : "";
      more += Math.max(0, bad.length - NAMED);
      if (bad.length) {
        const span = el("span", "trouble", "· ");
        bad.slice(0, NAMED).forEach((c, i) => {
          const a = el("a", "state-" + c.state, c.title);
          a.href = page + "#chart-" + c.name;
          span.append(...(i ? [", ", a] : [a]));
        });
        if (more) span.append(" and " + more + " more");
        p.append(span);
      }
    }
    if (nav) {
      nav.replaceChildren();
      for (const s of ORDER) if (counts[s]) nav.append(el("span", "count state-" + s, String(counts[s])));
    }
  }

  function tick() {
    if (document.hidden) return;
    for (const c of cards.values()) paint(c);
    for (const g of groups.values()) summarize(g);
    if (filter && filter.elements.state.value) applyFilter();
    const g = Date.parse(genAt);
    if (g) {
      generated.dateTime = genAt;
      generated.textContent = ago(now() - g);
      generated.title = local(g);
    }
    if (offlineSince) {
      banner.textContent = "board offline since " + new Date(offlineSince).toLocaleTimeString() + " (" + ago(Date.now() - offlineSince) + ")";
      banner.title = local(offlineSince);
    }
  }

  // Decoded off-screen, then swapped in: never a half-loaded image.
  async function swap(card, ch) {
    const hash = ch.hash, v = "?v=" + encodeURIComponent(hash);
    card._want = hash;
    card._next = null;
    const old = card._live || $(card, ".fig img, .fig .ph"), img = new Image();
    let x2;
    if (old.tagName === "IMG") {
      for (const a of old.attributes) if (a.name !== "src" && a.name !== "srcset") img.setAttribute(a.name, a.value);
      x2 = old.hasAttribute("srcset");
    } else {
      img.width = +old.dataset.w;
      img.height = +old.dataset.h;
      img.alt = $(card, "h2").textContent;
      img.loading = "lazy";
      x2 = !!old.dataset.x2;
    }
    const file = base + (ch.image || ch.name + ".png"), src = file + v, big = x2 ? file.replace(/\.png$/, "@2x.png") + v : src;
    if (x2) img.srcset = big + " 2x"; // src is the 1x candidate
    img.loading = "eager"; // decode() must not wait
    img.src = src;
    try {
      await img.decode();
    } catch (e) {
      if (card._want === hash) card._want = null; // retried later
      return;
    }
    if (card._want !== hash) return;
    img.loading = "lazy";
    if (card._live) card._live = img;
    else old.replaceWith(img);
    card.dataset.hash = hash;
    const fig = $(card, ".fig");
    if (!fig.hasAttribute("href")) fig.href = big;
    for (const a of card.querySelectorAll("a[href*='?v=']:not([data-window])")) a.href = a.getAttribute("href").replace(/\?v=.*$/, v);
  }

  // Time windows, switched in place.
  function picked(card, ch) {
    const w = card._window && (ch.windows || []).find((x) => x.name === card._window);
    return w ? { name: ch.name + "." + w.name, image: w.image, hash: w.hash } : ch;
  }
  function windows(card, ch) {
    const all = document.getElementById("all-" + ch.name);
    for (const w of ch.windows || []) {
      const v = "?v=" + encodeURIComponent(w.hash || ""), sel = `[data-window="${CSS.escape(w.name)}"]`;
      for (const a of card.querySelectorAll("a" + sel)) a.href = base + w.image + v;
      const old = all && all.querySelector("img" + sel);
      if (!old || !w.hash || old.getAttribute("src") === base + w.image + v) continue;
      const img = old.cloneNode();
      img.src = base + w.image + v;
      if (!all.matches(":target")) old.replaceWith(img); // not shown: loaded when it is
      else { // shown: decoded first, never a broken frame
        img.loading = "eager";
        img.decode().then(() => old.isConnected && old.replaceWith(img), () => {});
      }
    }
  }
  root.addEventListener("click", (e) => {
    const a = e.target.closest(".windows a[data-window]"), card = a && a.closest(".card");
    if (!card || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    const first = card.querySelector(".windows a[data-window]");
    card._window = a === first ? null : a.dataset.window;
    for (const l of card.querySelectorAll(".windows a[data-window]")) l.toggleAttribute("aria-current", l === a);
    const hash = new URL(a.href).searchParams.get("v") || "";
    const ch = { name: card.dataset.name, image: card.dataset.name + ".png", hash: card.dataset.hash,
                 windows: [{ name: a.dataset.window, image: a.getAttribute("href").replace(/\?.*$/, "").slice(base.length), hash }] };
    if (a === first) ch.hash = hash;
    swap(card, picked(card, ch));
  });

  // Off screen, the newest image waits in card._next.
  const seen = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (e.isIntersecting) {
        shown.add(e.target);
        if (e.target._next) swap(e.target, e.target._next);
      } else shown.delete(e.target);
    }
  }, { rootMargin: "200px" }) : null;
  if (seen) for (const c of cards.values()) seen.observe(c);
  const onScreen = (card) => !seen || shown.has(card);

  function apply(list) {
    for (const ch of list) {
      const card = cards.get(ch.name);
      if (!card) continue;
      card.dataset.state = ch.state || "pending";
      card.dataset.stale = ch.stale_after_s == null ? "" : ch.stale_after_s;
      card._changed = Date.parse(ch.changed_at) || 0;
      $(card, ".age").dateTime = ch.rendered_at || "";
      $(card, ".err").textContent = ch.error || "";
      const wait = $(card, ".wait"), missing = Array.isArray(ch.waiting_for) ? ch.waiting_for : [];
      if (wait) { // a board's own template may leave it out
        wait.textContent = missing.length ? "waiting for " + missing.join(", ") : "";
        wait.hidden = !missing.length;
      }
      const warn = $(card, ".warn");
      if (warn) { warn.textContent = ch.warning || ""; warn.hidden = !ch.warning; }
      windows(card, ch);
      const show = picked(card, ch);
      if (show.hash && show.hash !== card.dataset.hash && show.hash !== card._want) {
        if (onScreen(card)) swap(card, show);
        else card._next = show;
      }
    }
  }

  function offline(on) {
    if (on && !offlineSince) offlineSince = Date.now();
    if (!on) offlineSince = 0;
    banner.hidden = !on;
  }

  // `no-cache`: an unchanged file costs a 304
  async function get(url, signal) {
    const r = await fetch(url, { cache: "no-cache", signal });
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r;
  }

  async function poll() {
    clearTimeout(timer);
    if (!live || document.hidden || busy) return;
    busy = true;
    const ac = new AbortController(), t = setTimeout(() => ac.abort(), Math.max(5000, refresh));
    let index = null, changed = [];
    try {
      const r = await get(base + "status/index.json", ac.signal);
      index = await r.json();
      // Ages use the server's clock when they disagree by over 3 s.
      const d = Date.parse(r.headers.get("Date")) - Date.now();
      skew = Math.abs(d) > 3000 ? d : 0;
      const board = index.board || {};
      if (board.layout && board.layout !== root.dataset.layout && board.generated_at > root.dataset.generated) {
        // charts added, removed or regrouped: the page changed
        if (base && !(index.groups || []).some((g) => groups.has(g.id))) location.href = root.dataset.index;
        else location.reload();
        return;
      }
      if (board.generated_at) genAt = board.generated_at;
      if (problems) {  // the board's own problems: text, never HTML
        const list = Array.isArray(board.problems) ? board.problems : [];
        problems.replaceChildren(...list.map((p) => el("p", null, String(p && p.message))));
        problems.hidden = !list.length;
      }
      for (const g of index.groups || []) {
        const section = groups.get(g.id);
        if (section && split) section._index = g;
        if (!section || split || section.dataset.hash === g.hash) continue;
        // by its hash: a new URL per version, cached for good
        const part = await (await get(base + "status/" + g.id + ".json?v=" + encodeURIComponent(g.hash), ac.signal)).json();
        changed.push([section, g.hash, part.charts || []]);
      }
    } catch (e) {
      index = null;
    } finally {
      clearTimeout(t);
      busy = false;
      if (!document.hidden) timer = setTimeout(poll, again ? 0 : pushed ? Math.max(refresh, 3e5) : refresh);
      again = false;
    }
    offline(!index);
    // outside the try: a fault here must not pass for an outage
    for (const [section, hash, list] of changed) {
      apply(list);
      section.dataset.hash = hash;
    }
    tick();
  }

  // -- the filter: by name or title, and by state --
  const filter = kiosk ? null : document.getElementById("filter");
  function applyFilter() {
    const q = filter.elements.q.value.trim().toLowerCase(), state = filter.elements.state.value;
    let n = 0;
    if (split) { // groups, by name, chart names, states counted
      for (const g of groups.values()) {
        const names = ($(g, ".names") || {}).textContent || "", title = ($(g, ".group-title") || g).textContent.toLowerCase();
        const hit = (!q || title.includes(q) || names.split(" ").some((x) => x.includes(q)))
          && (!state || !!((g._index && g._index.counts) || {})[state]);
        if (g.hidden === hit) g.hidden = !hit;
        if (hit) n++;
      }
      filter.elements.shown.value = q || state ? n + " of " + groups.size + " groups" : "";
      return;
    }
    for (const c of cards.values()) {
      const hit = (!q || c.dataset.name.includes(q) || $(c, "h2").textContent.toLowerCase().includes(q))
        && (!state || (c._state || c.dataset.state) === state);
      if (c.hidden === hit) c.hidden = !hit;
      if (hit) n++;
    }
    for (const f of root.querySelectorAll(".card.family-empty")) { // an empty family waits: pending
      const hit = (!q || f.dataset.family.toLowerCase().includes(q)) && (!state || state === "pending");
      if (f.hidden === hit) f.hidden = !hit;
    }
    for (const g of groups.values()) g.hidden = !g.querySelector(".card[data-name]:not([hidden]), .card.family-empty:not([hidden])");
    filter.elements.shown.value = q || state ? n + " of " + cards.size + " charts" : "";
  }
  if (filter) {
    filter.hidden = false;
    filter.addEventListener("input", applyFilter);
    filter.addEventListener("submit", (e) => e.preventDefault());
  }

  // -- kiosk: the shown groups' charts on one screen --
  function layout() {
    const list = [...cards.values()].filter((c) => !c.closest("section.group[hidden]"));
    const n = list.length;
    if (!n) return;
    let w = 0, h = 0, extra = 0;
    for (const c of list) {
      const m = $(c, ".fig img, .fig .ph");
      w += +(m.getAttribute("width") || m.dataset.w) || 4;
      h += +(m.getAttribute("height") || m.dataset.h) || 3;
      extra = Math.max(extra, c.getBoundingClientRect().height - $(c, ".fig").getBoundingClientRect().height);
    }
    const aspect = w / h, gap = 8, pad = 12;
    extra = extra > 0 && extra < 200 ? extra : 64;
    let best = 0, cols = 1, cw = 0, ch = 0;
    for (let c = 1; c <= n; c++) {
      const r = Math.ceil(n / c);
      let iw = (innerWidth - gap * (c + 1)) / c - pad, ih = iw / aspect;
      const room = (innerHeight - gap * (r + 1)) / r - extra;
      if (ih > room) { ih = room; iw = ih * aspect; }
      if (iw > 0 && ih > 0 && iw * ih > best) { best = iw * ih; cols = c; cw = iw + pad; ch = ih + extra; }
    }
    root.style.setProperty("--cols", cols);
    root.style.setProperty("--cw", Math.floor(cw) + "px");
    root.style.setProperty("--ch", Math.floor(ch) + "px");
  }

  function rotation() {
    const m = /[?&]rotate=(\d+(?:\.\d+)?)(ms|s|m|h)?(&|$)/.exec(location.search);
    if (!m) return 0;
    return parseFloat(m[1]) * ({ ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] || "s"]);
  }

  const every = kiosk ? rotation() : 0;
  if (every && (split || base)) { // a split board rotates through its group pages
    const target = location.hash && document.getElementById(location.hash.slice(1));
    const first = target && target.matches("section.group") ? target : root.querySelector("section.group[data-group]");
    const next = split ? first && "groups/" + first.dataset.group + ".html" : root.dataset.next;
    if (next) setTimeout(() => { location.href = next + location.search; }, split ? 0 : Math.max(1000, every));
  }
  if (kiosk && cards.size) {
    const list = [...groups.values()];
    if (every && list.length > 1) {
      let at = Math.max(0, list.findIndex((g) => "#" + g.id === location.hash));
      const show = () => {
        list.forEach((g, i) => { g.hidden = i !== at; });
        root.dataset.showing = list[at].dataset.group;
        layout();
      };
      show();
      setInterval(() => { at = (at + 1) % list.length; show(); }, Math.max(1000, every));
    } else layout();
    addEventListener("resize", layout);
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(timer);
    else poll();
  });
  // #NAME (an alert's link) goes to #chart-NAME, or (split) its group's page
  function follow() {
    const n = location.hash.slice(1), m = /^history-(.+)@[\dT.]+Z$/.exec(n);
    if (!n || document.getElementById(n)) return;
    for (const g of split ? groups.values() : [])
      if (($(g, ".names") || g).textContent.split(" ").includes(m ? m[1] : n)) {
        busy = true; // no poll: the page goes
        return location.replace(base + "groups/" + g.dataset.group + ".html" + location.search + location.hash);
      }
    if (document.getElementById("chart-" + n)) location.replace("#chart-" + n);
  }
  addEventListener("hashchange", follow);
  follow();
  // Push: fetch on each /events message, else poll (README "The page").
  let wait = 15e3;
  const soon = () => { again = busy; poll(); }, on = (p) => root.toggleAttribute("data-pushed", pushed = p);
  (function listen() {
    if (!live) return;
    const es = new EventSource(base + "events");
    es.onopen = () => { on(true); soon(); };
    es.onmessage = soon;
    es.onerror = () => {
      es.close();
      if (pushed) soon();
      setTimeout(listen, wait = pushed ? 1e3 : Math.min(wait * 4, 36e5));
      on(false);
    };
  })();
  setInterval(tick, 1000);
  tick();
  poll();
})();
