// plotboard page: polls status.json, swaps in new images once decoded, keeps ages and states current.
(() => {
  "use strict";
  const root = document.getElementById("board");
  if (!root) return;
  const refresh = Math.max(1, parseFloat(root.dataset.refresh) || 10) * 1000;
  const banner = document.getElementById("offline");
  const generated = document.getElementById("generated");
  const kiosk = document.documentElement.classList.contains("kiosk");
  const cards = new Map();
  for (const c of root.querySelectorAll(".card[data-name]")) cards.set(c.dataset.name, c);
  let skew = 0, offlineSince = null, timer = 0, busy = false, genAt = root.dataset.generated;

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
  function judge(d) {
    const s = d.state;
    if (s !== "ok" && s !== "stale") return s;
    const t = Date.parse(d.rendered), lim = parseFloat(d.stale);
    return t && d.stale !== "" && now() - t > lim * 1000 ? "stale" : "ok";
  }

  function paint(card) {
    const d = card.dataset, state = judge(d);
    if (!card.classList.contains("state-" + state)) {
      card.className = card.className.replace(/\bstate-\S+/g, "").trim() + " state-" + state;
      card.querySelector(".badge").textContent = state;
    }
    const age = card.querySelector(".age"), t = Date.parse(d.rendered);
    if (t) {
      age.textContent = ago(now() - t);
      age.dateTime = d.rendered;
      const ch = Date.parse(d.changed);
      age.title = "rendered " + local(t) + (ch ? "\nimage changed " + local(ch) : "");
    }
    card.querySelector(".err").hidden = state !== "error";
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
    const old = card.querySelector(".fig img, .fig .ph");
    const img = new Image();
    let x2;
    if (old.tagName === "IMG") {
      for (const a of old.attributes) if (a.name !== "src" && a.name !== "srcset") img.setAttribute(a.name, a.value);
      x2 = old.hasAttribute("srcset");
    } else {
      img.width = +old.dataset.w;
      img.height = +old.dataset.h;
      img.alt = card.querySelector("h2").textContent;
      x2 = !!old.dataset.x2;
    }
    const src = (ch.image || ch.name + ".png") + v;
    if (x2) img.srcset = src + " 1x, " + ch.name + "@2x.png" + v + " 2x";
    img.src = src;
    try {
      await img.decode();
    } catch (e) {
      if (card._want === hash) card._want = null; // retried on the next poll
      return;
    }
    if (card._want !== hash) return;
    card.querySelector(".fig img, .fig .ph").replaceWith(img);
    card.dataset.hash = hash;
    const fig = card.querySelector(".fig");
    if (!fig.hasAttribute("href")) fig.href = x2 ? ch.name + "@2x.png" + v : src;
    for (const a of card.querySelectorAll("a[href*='?v=']")) a.href = a.getAttribute("href").replace(/\?v=.*$/, v);
  }

  function apply(st) {
    const list = st.charts || [];
    const names = list.map((c) => c.name).join("\n");
    if (names !== [...cards.keys()].join("\n") && st.board && st.board.generated_at > root.dataset.generated) {
      location.reload(); // charts were added or removed: the page itself changed
      return;
    }
    if (st.board && st.board.generated_at) genAt = st.board.generated_at;
    for (const ch of list) {
      const card = cards.get(ch.name);
      if (!card) continue;
      const d = card.dataset;
      d.state = ch.state || "pending";
      d.rendered = ch.rendered_at || "";
      d.changed = ch.changed_at || "";
      d.stale = ch.stale_after_s == null ? "" : ch.stale_after_s;
      card.querySelector(".err").textContent = ch.error || "";
      if (ch.hash && ch.hash !== d.hash && ch.hash !== card._want) swap(card, ch);
    }
  }

  function offline(on) {
    if (on && !offlineSince) offlineSince = Date.now();
    if (!on) offlineSince = null;
    banner.hidden = !on;
  }

  async function poll() {
    clearTimeout(timer);
    if (document.hidden || busy) return;
    busy = true;
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), Math.max(5000, refresh));
    try {
      const r = await fetch("status.json", { cache: "no-store", signal: ac.signal });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const st = await r.json();
      // Ages use the server's clock when the two disagree by more than a few seconds.
      const date = Date.parse(r.headers.get("Date"));
      if (date) skew = Math.abs(date - Date.now()) > 3000 ? date - Date.now() : 0;
      offline(false);
      apply(st);
    } catch (e) {
      offline(true);
    } finally {
      clearTimeout(t);
      busy = false;
      tick();
      if (!document.hidden) timer = setTimeout(poll, refresh);
    }
  }

  function layout() {
    const n = cards.size;
    if (!n) return;
    let w = 0, h = 0;
    for (const c of cards.values()) {
      const m = c.querySelector(".fig img, .fig .ph");
      w += +(m.getAttribute("width") || m.dataset.w) || 4;
      h += +(m.getAttribute("height") || m.dataset.h) || 3;
    }
    const W = innerWidth, H = innerHeight, chrome = 48; // title line + age line + padding per card
    let best = 0, cols = 1;
    for (let c = 1; c <= n; c++) {
      const r = Math.ceil(n / c), s = Math.min((W / c - 24) / w, (H / r - chrome) / h);
      if (s > best) { best = s; cols = c; }
    }
    root.style.setProperty("--cols", cols);
    root.style.setProperty("--rows", Math.ceil(n / cols));
  }

  if (kiosk) {
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
