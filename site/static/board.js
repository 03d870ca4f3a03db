// plotboard page: polls status.json, swaps in new images once decoded, keeps ages and states current.
(() => {
  "use strict";
  const root = document.getElementById("board");
  if (!root) return;
  const refresh = Math.max(1, parseFloat(root.dataset.refresh) || 10) * 1000;
  const banner = document.getElementById("offline");
  const generated = document.getElementById("generated");
  // Opened from disk there is no server to ask (browsers refuse fetch of file: URLs): a snapshot, not an outage.
  const live = location.protocol !== "file:";
  const cards = new Map();
  for (const c of root.querySelectorAll(".card[data-name]")) cards.set(c.dataset.name, c);
  let skew = 0, offlineSince = 0, timer = 0, busy = false, genAt = root.dataset.generated;

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

  // The server judged the state when it wrote the file; staleness is judged again now.
  function judge(card, rendered) {
    const s = card.dataset.state, lim = card.dataset.stale;
    if (s !== "ok" && s !== "stale") return s;
    return rendered && lim !== "" && now() - rendered > lim * 1000 ? "stale" : "ok";
  }

  function paint(card) {
    const age = $(card, ".age"), t = Date.parse(age.dateTime), state = judge(card, t);
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

  function tick() {
    if (document.hidden) return;
    for (const c of cards.values()) paint(c);
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

  // Preload and decode off-screen, then replace the element: the card never shows a half-loaded image.
  async function swap(card, ch) {
    const hash = ch.hash, v = "?v=" + encodeURIComponent(hash);
    card._want = hash;
    const old = $(card, ".fig img, .fig .ph"), img = new Image();
    let x2;
    if (old.tagName === "IMG") {
      for (const a of old.attributes) if (a.name !== "src" && a.name !== "srcset") img.setAttribute(a.name, a.value);
      x2 = old.hasAttribute("srcset");
    } else {
      img.width = +old.dataset.w;
      img.height = +old.dataset.h;
      img.alt = $(card, "h2").textContent;
      x2 = !!old.dataset.x2;
    }
    const src = (ch.image || ch.name + ".png") + v, big = x2 ? (ch.image || ch.name + ".png").replace(/\.png$/, "@2x.png") + v : src;
    if (x2) img.srcset = big + " 2x"; // src is the 1x candidate
    img.src = src;
    try {
      await img.decode();
    } catch (e) {
      if (card._want === hash) card._want = null; // retried on the next poll
      return;
    }
    if (card._want !== hash) return;
    $(card, ".fig img, .fig .ph").replaceWith(img);
    card.dataset.hash = hash;
    const fig = $(card, ".fig");
    if (!fig.hasAttribute("href")) fig.href = big;
    for (const a of card.querySelectorAll("a[href*='?v=']:not([data-window])")) a.href = a.getAttribute("href").replace(/\?v=.*$/, v);
  }

  // Time windows: the card shows the window picked (the first by default), switched in place.
  function shown(card, ch) {
    const w = card._window && (ch.windows || []).find((x) => x.name === card._window);
    return w ? { name: ch.name + "." + w.name, image: w.image, hash: w.hash } : ch;
  }
  function windows(card, ch) {
    const all = document.getElementById("all-" + ch.name);
    for (const w of ch.windows || []) {
      const v = "?v=" + encodeURIComponent(w.hash || ""), sel = `[data-window="${CSS.escape(w.name)}"]`;
      for (const a of card.querySelectorAll("a" + sel)) a.href = w.image + v;
      const old = all && all.querySelector("img" + sel);
      if (!old || !w.hash || old.getAttribute("src") === w.image + v) continue;
      const img = old.cloneNode();
      img.src = w.image + v;
      if (!all.matches(":target")) old.replaceWith(img); // not shown: loaded when it is
      else { // shown: loaded off-screen, then put in place, never a broken frame
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
                 windows: [{ name: a.dataset.window, image: a.getAttribute("href").replace(/\?.*$/, ""), hash }] };
    if (a === first) ch.hash = hash;
    swap(card, shown(card, ch));
  });

  function apply(st) {
    const list = st.charts || [], board = st.board || {};
    if (list.map((c) => c.name).join() !== [...cards.keys()].join() && board.generated_at > root.dataset.generated) {
      location.reload(); // charts were added or removed: the page itself changed
      return;
    }
    if (board.generated_at) genAt = board.generated_at;
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
      const show = shown(card, ch);
      if (show.hash && show.hash !== card.dataset.hash && show.hash !== card._want) swap(card, show);
    }
  }

  function offline(on) {
    if (on && !offlineSince) offlineSince = Date.now();
    if (!on) offlineSince = 0;
    banner.hidden = !on;
  }

  async function poll() {
    clearTimeout(timer);
    if (!live || document.hidden || busy) return;
    busy = true;
    const ac = new AbortController(), t = setTimeout(() => ac.abort(), Math.max(5000, refresh));
    let st = null;
    try {
      const r = await fetch("status.json", { cache: "no-store", signal: ac.signal });
      if (!r.ok) throw new Error("HTTP " + r.status);
      st = await r.json();
      // Ages use the server's clock when the two disagree by more than a few seconds.
      const d = Date.parse(r.headers.get("Date")) - Date.now();
      skew = Math.abs(d) > 3000 ? d : 0;
    } catch (e) {
      st = null;
    } finally {
      clearTimeout(t);
      busy = false;
      if (!document.hidden) timer = setTimeout(poll, refresh);
    }
    offline(!st);
    if (st) apply(st); // outside the try: a fault in this script must surface, not pass for an outage
    tick();
  }

  // Kiosk: pick the column count that shows every chart largest on this screen.
  function layout() {
    const n = cards.size;
    let w = 0, h = 0, best = 0, cols = 1;
    for (const c of cards.values()) {
      const m = $(c, ".fig img, .fig .ph");
      w += +(m.getAttribute("width") || m.dataset.w) || 4;
      h += +(m.getAttribute("height") || m.dataset.h) || 3;
    }
    for (let c = 1; c <= n; c++) {
      const s = Math.min((innerWidth / c - 24) / w, (innerHeight / Math.ceil(n / c) - 48) / h);
      if (s > best) { best = s; cols = c; }
    }
    root.style.setProperty("--cols", cols);
    root.style.setProperty("--rows", Math.ceil(n / cols));
  }

  if (document.documentElement.classList.contains("kiosk") && cards.size) {
    layout();
    addEventListener("resize", layout);
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(timer);
    else poll();
  });
  setInterval(tick, 1000);
  tick();
  poll();
})();
