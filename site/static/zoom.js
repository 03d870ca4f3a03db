// plotboard zoom on demand, on a board with a zoomable chart (`zoom = true`; its card has
// data-zoomable). Once the daemon answers /render/ (one probe: a purely static host shows nothing),
// each such card gets a control (data-zoom): presets, earlier / later, from / to, and a drag
// across the image picks a range; the image drawn on demand (render/NAME.png?window=…&end=…)
// shows in place of the live one, until "live". README.md "Zoom" tells it.
(() => {
  "use strict";
  const root = document.getElementById("board");
  if (!root || location.protocol === "file:" || document.documentElement.classList.contains("kiosk")) return;
  const base = root.dataset.base || "", cards = [...root.querySelectorAll(".card[data-zoomable]")];
  if (!cards.length) return;
  const PRESETS = ["1h", "6h", "1d", "7d"], UNIT = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  const seconds = (d) => { const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(d || ""); return m ? m[1] * UNIT[m[2]] : NaN; };
  const el = (tag, props, ...kids) => { const e = Object.assign(document.createElement(tag), props); e.append(...kids); return e; };
  const button = (text, title, onclick) => el("button", { type: "button", textContent: text, title, onclick });
  const pad = (n) => String(n).padStart(2, "0");
  const local = (t) => { const d = new Date(t * 1000); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`; };
  const when = (t) => new Date(t * 1000).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const span = (s) => s % 86400 === 0 ? s / 86400 + "d" : s % 3600 === 0 ? s / 3600 + "h" : s % 60 === 0 ? s / 60 + "m" : s + "s";

  // The manifest entry of the image the card shows now (its window's, when one is picked).
  async function shown(card) {
    const section = card.closest("section[data-group]");
    const r = await fetch(base + "status/" + section.dataset.group + ".json?v=" + encodeURIComponent(section.dataset.hash || ""));
    const ch = ((await r.json()).charts || []).find((c) => c.name === card.dataset.name) || {};
    return (card._window && (ch.windows || []).find((w) => w.name === card._window)) || ch;
  }
  // The time range the card shows ({from, to}, epoch seconds), or null; z.box and z.dated: where
  // the live image's axes is and whether its x axis holds dates (a drag needs both).
  async function range(card) {
    const z = card._zoom, axes = (await shown(card).catch(() => ({}))).axes || {};
    z.box = axes.box;
    z.dated = !!axes.x;
    if (z.at) return { from: z.at.end - z.at.window, to: z.at.end };
    if (axes.x) return { from: axes.x[0], to: axes.x[1] };
    const first = card.querySelector(".windows [data-window]"), w = seconds(card._window || (first && first.dataset.window));
    return w ? { from: Date.now() / 1000 - w, to: Date.now() / 1000 } : null;
  }

  async function show(card, window, end) {
    const z = card._zoom, ask = ++z.ask;
    end = Math.round(Math.min(end, Date.now() / 1000 + 86400));
    window = Math.max(1, Math.round(window));
    // scale=2 on a hi-DPI screen: twice the pixels, as the live image's @2x (srcset)
    const url = base + "render/" + encodeURIComponent(card.dataset.name) + ".png?window=" + span(window) + "&end=" + end +
      (devicePixelRatio >= 1.5 ? "&scale=2" : "");
    z.out.value = "drawing…";
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
    } catch (e) { // why: the daemon's one-line answer (400, 500, 503)
      const r = await fetch(url).catch(() => null), why = r ? "HTTP " + r.status + " " + (await r.text().catch(() => "")) : "offline";
      if (ask === z.ask) z.out.value = "could not draw it: " + why.slice(0, 200);
      return;
    }
    if (ask !== z.ask) return;
    // The card's image becomes this one; the live one waits in card._live, where board.js puts
    // each new live image meanwhile (and history.js finds it), until "live" puts it back.
    const shownNow = card.querySelector(".fig img, .fig .ph"), live = card._live || shownNow;
    img.className = "zoomed";
    img.width = live.width || +live.dataset.w;
    img.height = live.height || +live.dataset.h;
    img.alt = card.querySelector("h2").textContent + ", " + when(end - window) + " – " + when(end);
    img.draggable = false;
    card._live = live;
    shownNow.replaceWith(img);
    card.classList.add("zooming");
    z.at = { window, end };
    z.from.value = local(end - window);
    z.to.value = local(end);
    z.out.value = when(end - window) + " – " + when(end);
    z.out.title = new Date((end - window) * 1000).toISOString() + " – " + new Date(end * 1000).toISOString();
    z.live.disabled = false;
  }

  function live(card) {
    const z = card._zoom;
    z.ask++;
    z.at = null;
    card.classList.remove("zooming");
    if (card._live) card.querySelector(".fig img, .fig .ph").replaceWith(card._live);
    card._live = null;
    z.out.value = "live";
    z.live.disabled = true;
  }

  async function step(card, by) {
    const r = await range(card);
    if (r) show(card, r.to - r.from, Math.min(r.to + by * (r.to - r.from), Date.now() / 1000));
  }

  function setup(card) {
    const z = card._zoom = { ask: 0, at: null, box: null };
    z.from = el("input", { type: "datetime-local", title: "from (local time)" });
    z.to = el("input", { type: "datetime-local", title: "to (local time)" });
    z.out = el("output", { value: "live" });
    z.live = button("live", "back to the live image", () => live(card));
    z.live.disabled = true;
    const form = el("form", {}, z.from, " – ", z.to, " ", el("button", { textContent: "show" }));
    form.onsubmit = (e) => {
      e.preventDefault();
      const from = Date.parse(z.from.value) / 1000, to = Date.parse(z.to.value) / 1000;
      if (from < to) show(card, to - from, to);
      else z.out.value = "from must come before to";
    };
    const box = el("div", { className: "zoom" }, el("span", { textContent: "zoom" }),
      ...PRESETS.map((p) => button(p, "the last " + p, () => show(card, seconds(p), Date.now() / 1000))),
      button("‹ earlier", "the same span, just before", () => step(card, -1)),
      button("later ›", "the same span, just after (up to now)", () => step(card, 1)), z.live, z.out, form);
    box.setAttribute("data-zoom", "");
    box.setAttribute("aria-label", "zoom: draw the chart for another time range");
    (card.querySelector(".windows") || card.querySelector(".foot")).after(box);
    card.querySelector(".windows")?.addEventListener("click", (e) => { if (e.target.closest("[data-window]")) live(card); });
    drag(card, card.querySelector(".fig"));
  }

  // A drag across the image picks the range under it: the axes' box and x range turn pixels into time.
  function drag(card, fig) {
    let start = null, band = null, got = null, moved = false;
    const frac = (e) => { const r = fig.getBoundingClientRect(); return (e.clientX - r.left) / r.width; };
    fig.addEventListener("dragstart", (e) => e.preventDefault());
    fig.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !fig.querySelector("img")) return; // nothing drawn yet: nothing to drag across
      start = frac(e);
      moved = false;
      got = range(card);
      fig.setPointerCapture(e.pointerId);
    });
    fig.addEventListener("pointermove", (e) => {
      if (start === null) return;
      const at = frac(e), r = fig.getBoundingClientRect();
      if (!moved && Math.abs(at - start) * r.width < 4) return;
      moved = true;
      band = band || fig.appendChild(el("div", { className: "zoom-band" }));
      band.style.left = Math.min(start, at) * 100 + "%";
      band.style.width = Math.abs(at - start) * 100 + "%";
    });
    const end = async (e) => {
      if (start === null) return;
      const a = start, b = frac(e);
      start = null;
      if (!moved) return;
      const r = await got;
      if (band) band.remove();
      band = null;
      const z = card._zoom;
      if (!r || !z.box || !z.dated) return void (z.out.value = "no drag here: this chart's x axis holds no dates");
      const [l, , rt] = z.box, t = (f) => r.from + (Math.min(rt, Math.max(l, f)) - l) / (rt - l) * (r.to - r.from);
      const t0 = t(Math.min(a, b)), t1 = t(Math.max(a, b));
      if (t1 > t0) show(card, t1 - t0, t1);
    };
    fig.addEventListener("pointerup", end);
    fig.addEventListener("pointercancel", () => { start = null; if (band) band.remove(); band = null; });
    // the click that ends a drag opens nothing (the full-size image, the history view)
    fig.addEventListener("click", (e) => { if (moved) { e.preventDefault(); e.stopPropagation(); moved = false; } }, true);
  }

  // One probe: the daemon answers render/ with 204 No Content; a static host has no such file
  // (404, or 502 from a proxy with no daemon behind it).
  // #board's data-zoom-probe says how it went: "daemon" (the controls are shown) or "static".
  fetch(base + "render/", { cache: "no-store" })
    .then((r) => r.status === 204, () => false)
    .then((daemon) => { if (daemon) cards.forEach(setup); root.dataset.zoomProbe = daemon ? "daemon" : "static"; });
})();
