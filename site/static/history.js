// plotboard history view, on a board where a chart keeps past images (`history = N`; its card has
// data-history). Clicking the chart's image (or opening #history-NAME) shows the chart in a dialog
// that steps back through them: slider, older/newer buttons, ← → Home End, each image's time and
// state, and "live" to come back to the current image. history/NAME.json is fetched only then.
// #history-NAME@STAMP (an alert's `moment`, STAMP as 20261206T121314.123Z) opens it at the image
// that was current at STAMP: the past image kept from then, or live if it is still current.
(() => {
  "use strict";
  const root = document.getElementById("board");
  if (!root) return;
  const base = root.dataset.base || "", PREFIX = "#history-";
  let view = null, ui = null, card = null, list = [], at = 0, seen = "", ask = 0, want = NaN;

  const el = (tag, props, ...kids) => {
    const e = Object.assign(document.createElement(tag), props);
    e.append(...kids);
    return e;
  };
  const button = (text, title) => el("button", { type: "button", textContent: text, title });

  function make() {
    ui = {
      title: el("h2"), close: el("a", { className: "close", textContent: "close" }),
      img: el("img", { alt: "" }), state: el("span", { className: "badge" }), when: el("time"), where: el("output"),
      older: button("‹ older", "an older image (←)"), newer: button("newer ›", "a newer image (→)"),
      live: button("live", "back to the current image (End)"), slider: el("input", { type: "range", min: 0, step: 1 }),
      note: el("p", { className: "note" }),
    };
    ui.slider.setAttribute("aria-label", "past images: oldest at the left, the current image at the right");
    const cap = el("figcaption", {}, ui.state, " ", ui.when, " ", ui.where);
    view = el("div", { className: "hist", hidden: true, tabIndex: -1 },
      el("div", { className: "hist-box" }, el("div", { className: "head" }, ui.title, ui.close),
        el("figure", {}, ui.img, cap), el("div", { className: "hist-nav" }, ui.older, ui.slider, ui.newer, ui.live), ui.note));
    view.setAttribute("role", "dialog");
    view.setAttribute("aria-modal", "true");
    ui.cap = cap;
    ui.older.onclick = () => go(at + 1);
    ui.newer.onclick = () => go(at - 1);
    ui.live.onclick = () => go(0);
    ui.slider.oninput = () => go(list.length - 1 - ui.slider.valueAsNumber);
    view.addEventListener("click", (e) => { if (e.target === view) shut(true); });
    view.addEventListener("keydown", keys);
    document.body.append(view);
  }

  function keys(e) {
    if (e.key === "Escape") { e.preventDefault(); shut(true); return; }
    if (e.key === "Tab") { // focus stays in the dialog
      const all = [...view.querySelectorAll("a[href], button:not(:disabled), input")];
      const i = all.indexOf(document.activeElement), next = e.shiftKey ? i - 1 : i + 1;
      if (next < 0 || next >= all.length) { e.preventDefault(); all[next < 0 ? all.length - 1 : 0].focus(); }
      return;
    }
    if (e.target === ui.slider || e.altKey || e.ctrlKey || e.metaKey) return; // the slider moves by itself
    const to = { ArrowLeft: at + 1, ArrowRight: at - 1, Home: list.length - 1, End: 0 }[e.key];
    if (to !== undefined) { e.preventDefault(); go(to); }
  }

  // The current image, as the card shows it now (board.js keeps it current).
  function live() {
    const img = card._live || card.querySelector(".fig img"), age = card.querySelector(".age");
    return { src: img ? img.getAttribute("src") : "", srcset: img ? img.getAttribute("srcset") || "" : "",
             rendered_at: age ? age.dateTime : "", state: card._state || card.dataset.state, live: true };
  }

  function go(i) {
    at = Math.max(0, Math.min(list.length - 1, i));
    list[0] = live();
    const e = list[at], t = Date.parse(e.rendered_at);
    if ((ui.img.getAttribute("srcset") || "") !== (e.srcset || "")) {
      if (e.srcset) ui.img.srcset = e.srcset;
      else ui.img.removeAttribute("srcset");
    }
    if (e.src && ui.img.getAttribute("src") !== e.src) ui.img.src = e.src;
    ui.img.alt = card.querySelector("h2").textContent + (e.live ? ", current image" : ", " + e.rendered_at);
    ui.cap.className = "state-" + e.state;
    ui.state.textContent = e.state;
    ui.when.dateTime = e.rendered_at || "";
    ui.when.textContent = t ? "rendered " + new Date(t).toLocaleString() : "never rendered";
    ui.when.title = e.rendered_at || "";
    ui.where.value = e.live ? "live" : at + " of " + (list.length - 1) + " back";
    ui.slider.max = list.length - 1;
    ui.slider.value = list.length - 1 - at;
    ui.slider.disabled = list.length < 2;
    ui.older.disabled = at >= list.length - 1;
    ui.newer.disabled = ui.live.disabled = at === 0;
  }

  async function load() {
    const mine = ++ask, hash = card.dataset.hash;
    try {
      const r = await fetch(card.dataset.history, { cache: "no-cache" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const past = await r.json();
      if (mine !== ask || !Array.isArray(past)) return;
      const shown = at && list[at];
      list = [live(), ...past.map((p) => ({ src: base + p.image, rendered_at: p.rendered_at, state: p.state }))];
      seen = hash;
      ui.note.textContent = past.length ? "" : "no past images yet: one is kept each time the image changes";
      if (!isNaN(want)) { // the image current at `want`: the oldest kept since, else the live one
        let i = list.length - 1;
        while (i > 0 && !(Date.parse(list[i].rendered_at) >= want)) i--;
        want = NaN;
        go(i);
      } else go(shown ? Math.max(0, list.findIndex((x) => x.src === shown.src)) : 0);
    } catch (err) {
      if (mine === ask) ui.note.textContent = "the past images could not be loaded (" + err.message + ")";
    }
  }

  function open(c) {
    if (!view) make();
    if (card !== c) { card = c; list = [live()]; at = 0; seen = ""; }
    ui.title.textContent = c.querySelector("h2").textContent + ": history";
    ui.close.href = "#chart-" + c.dataset.name;
    const fig = c.querySelector(".fig img");
    if (fig) { ui.img.width = fig.width || +fig.getAttribute("width"); ui.img.height = fig.height || +fig.getAttribute("height"); }
    view.hidden = false;
    go(at);
    load();
    view.focus();
  }

  function shut(navigate) {
    if (!view || view.hidden) return;
    view.hidden = true;
    ask++;
    if (navigate) location.hash = "chart-" + card.dataset.name; // the card it was opened from
    const a = card.querySelector("a.fig");
    if (a) a.focus({ preventScroll: true });
  }

  function route() {
    let name = "";
    try { name = location.hash.startsWith(PREFIX) ? decodeURIComponent(location.hash.slice(PREFIX.length)) : ""; } catch (e) { /* not ours */ }
    const m = /^(.+)@(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d(?:\.\d+)?)Z$/.exec(name);
    want = m ? Date.parse(`${m[2]}-${m[3]}-${m[4]}T${m[5]}:${m[6]}:${m[7]}Z`) : NaN;
    if (m) name = m[1];
    const c = name && root.querySelector(`.card[data-history][data-name="${CSS.escape(name)}"]`);
    if (c) open(c);
    else shut(false);
  }

  root.addEventListener("click", (e) => {
    const a = e.target.closest(".card[data-history] a.fig");
    if (!a || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    location.hash = PREFIX.slice(1) + a.closest(".card").dataset.name;
  });
  addEventListener("hashchange", route);
  // While open: the live image follows the card; a new image means one more past image to list.
  setInterval(() => {
    if (!view || view.hidden) return;
    if (card.dataset.hash !== seen) load();
    else if (at === 0) go(0);
  }, 1000);
  route();
})();
