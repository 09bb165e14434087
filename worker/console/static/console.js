// chirpbase console: progressive enhancement only. Every form works without this file; with it,
// the character count follows your typing (counted by the worker's own counter), decisions
// happen in place, keyboard shortcuts work, and the inbox updates live (server-sent events).
"use strict";

(function () {
  const meta = (name) => {
    const el = document.querySelector(`meta[name="${name}"]`);
    return el ? el.getAttribute("content") : "";
  };
  const csrf = meta("csrf-token");
  const prefix = meta("console-prefix") || "/console";
  const announcer = document.getElementById("announcer");

  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    window.setTimeout(() => { announcer.textContent = text; }, 30);
  }

  async function postJSON(url, body, isForm) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": csrf };
    if (!isForm) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: isForm ? body : JSON.stringify(body),
      credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { error: `HTTP ${response.status}` }; }
    if (response.status === 401) { window.location.assign(`${prefix}/login`); }
    return { ok: response.ok, status: response.status, data };
  }

  // -- the character count -------------------------------------------------------------------
  const timers = new WeakMap();
  const sequence = new WeakMap();

  function count(textarea) {
    const target = document.getElementById(textarea.dataset.counter);
    if (!target) return;
    const n = (sequence.get(textarea) || 0) + 1;
    sequence.set(textarea, n);
    postJSON(`${prefix}/api/tweet-length`, { text: textarea.value }).then((result) => {
      if (sequence.get(textarea) !== n || !result.ok) return; // a newer count is on its way
      const d = result.data;
      target.querySelector("output").textContent = String(d.weighted_length);
      target.classList.toggle("over", !d.valid);
      target.dataset.length = String(d.weighted_length);
      target.dataset.valid = String(d.valid);
      textarea.setAttribute("aria-invalid", d.valid ? "false" : "true");
    }).catch(() => {});
  }

  document.addEventListener("input", (event) => {
    const t = event.target;
    if (!(t instanceof HTMLTextAreaElement) || !t.dataset.counter) return;
    const error = t.closest(".item") && t.closest(".item").querySelector(".item-error");
    if (error && !t.closest(".item").classList.contains("gone")) error.hidden = true;
    window.clearTimeout(timers.get(t));
    timers.set(t, window.setTimeout(() => count(t), 120));
  });

  // -- decisions in place --------------------------------------------------------------------
  function updateCount(waiting) {
    const badge = document.getElementById("inbox-count");
    if (badge) {
      badge.textContent = String(waiting);
      badge.setAttribute("aria-label", `${waiting} awaiting`);
    }
    const total = document.getElementById("inbox-total");
    if (total) total.textContent = `${waiting} awaiting`;
  }

  function items() { return Array.from(document.querySelectorAll(".items > .item")); }

  function removeItem(li) {
    const all = items();
    const next = all[all.indexOf(li) + 1] || all[all.indexOf(li) - 1];
    li.remove();
    const badge = document.getElementById("inbox-count");
    updateCount(Math.max(0, (badge ? Number(badge.textContent) : 1) - 1));
    if (next) activate(next);
    if (!items().length) refreshInbox();
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("decide")) return;
    event.preventDefault();
    const submitter = event.submitter || form.querySelector("button[value=approve]");
    const body = new FormData(form);
    body.set("action", submitter.value);
    const li = form.closest(".item");
    const error = li.querySelector(".item-error");
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const result = await postJSON(form.getAttribute("action"), body, true);
      if (result.ok) {
        announce(result.data.message);
        if (submitter.value === "save") {
          form.querySelectorAll("textarea").forEach((t) => { t.defaultValue = t.value; });
          error.hidden = true;
        } else {
          removeItem(li);
        }
      } else {
        error.textContent = result.data.error || `HTTP ${result.status}`;
        error.hidden = false;
        announce(error.textContent);
      }
    } catch (e) {
      error.textContent = "The console could not be reached. Nothing was changed.";
      error.hidden = false;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });

  // -- keyboard shortcuts --------------------------------------------------------------------
  let active = null;

  function activate(li) {
    if (!li) return;
    if (active) active.classList.remove("active");
    active = li;
    li.classList.add("active");
    li.focus({ preventScroll: true });
    li.scrollIntoView({ block: "nearest" });
  }

  function current() {
    if (active && document.body.contains(active)) return active;
    const first = items()[0];
    if (first) activate(first);
    return first || null;
  }

  function press(li, action) {
    const button = li && li.querySelector(`button[value=${action}]`);
    if (button) button.click();
  }

  function toggleShortcuts() {
    const panel = document.getElementById("shortcuts");
    const toggle = document.getElementById("shortcuts-toggle");
    if (!panel) return;
    panel.hidden = !panel.hidden;
    if (toggle) toggle.setAttribute("aria-expanded", String(!panel.hidden));
  }

  const toggle = document.getElementById("shortcuts-toggle");
  if (toggle) toggle.addEventListener("click", toggleShortcuts);

  document.addEventListener("focusin", (event) => {
    const li = event.target instanceof Element ? event.target.closest(".items > .item") : null;
    if (li && li !== active) {
      if (active) active.classList.remove("active");
      active = li;
      li.classList.add("active");
    }
  });

  document.addEventListener("keydown", (event) => {
    if (document.body.dataset.page !== "inbox") return;
    const t = event.target;
    const typing = t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
    if (typing) {
      if (t.tagName === "TEXTAREA" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        press(t.closest(".item"), "approve");
      } else if (event.key === "Escape") {
        const li = t.closest(".item");
        t.blur();
        if (li) activate(li);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const list = items();
    const li = current();
    switch (event.key) {
      case "j": activate(list[Math.min(list.indexOf(li) + 1, list.length - 1)]); break;
      case "k": activate(list[Math.max(list.indexOf(li) - 1, 0)]); break;
      case "e": if (li) { event.preventDefault(); li.querySelector("textarea").focus(); } break;
      case "a": press(li, "approve"); break;
      case "r": press(li, "reject"); break;
      case "?": toggleShortcuts(); break;
      default: return;
    }
  });

  // -- the live inbox ------------------------------------------------------------------------
  function dirty(li) {  // any text changed or being edited (a thread has one box per part)
    return Array.from(li.querySelectorAll("textarea")).some(
      (t) => t.value !== t.defaultValue || document.activeElement === t);
  }

  let refreshing = null;
  async function refreshInbox() {
    const live = document.getElementById("inbox-live");
    if (!live) return;
    if (refreshing) { refreshing.again = true; return; }
    refreshing = { again: false };
    try {
      const response = await fetch(live.dataset.itemsUrl, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = Array.from(doc.querySelectorAll(".items > .item"));
      const list = live.querySelector(".items");
      const old = new Map(items().map((li) => [li.dataset.key, li]));
      const keep = [];
      let added = 0;
      for (const li of fresh) {
        const mine = old.get(li.dataset.key);
        old.delete(li.dataset.key);
        if (mine && (mine.dataset.version === li.dataset.version || dirty(mine))) {
          keep.push(mine);
        } else {
          keep.push(document.importNode(li, true));
          if (!mine) added += 1;
        }
      }
      for (const [, li] of old) {
        if (dirty(li)) {  // decided elsewhere while you were editing it: say so, keep the text
          li.classList.add("gone");
          li.querySelectorAll("button").forEach((b) => { b.disabled = true; });
          const error = li.querySelector(".item-error");
          error.textContent = "This item is no longer awaiting approval (decided elsewhere).";
          error.hidden = false;
          keep.push(li);
        }
      }
      list.replaceChildren(...keep);
      const empty = document.getElementById("inbox-empty");
      if (empty) empty.hidden = keep.length > 0;
      if (!keep.length && !empty) {
        const p = doc.getElementById("inbox-empty");
        if (p) live.prepend(document.importNode(p, true));
      }
      if (added) announce(`${added} new item${added > 1 ? "s" : ""} in the inbox`);
    } catch (e) {
      // the next event or poll tries again
    } finally {
      const again = refreshing && refreshing.again;
      refreshing = null;
      if (again) refreshInbox();
    }
  }

  if (csrf && window.EventSource) {
    let lastToken = null;
    const source = new EventSource(`${prefix}/events`);
    source.addEventListener("inbox", (event) => {
      const state = JSON.parse(event.data);
      updateCount(state.waiting);
      if (lastToken !== null && state.token !== lastToken) refreshInbox();
      else if (lastToken === null && document.body.dataset.page === "inbox") refreshInbox();
      lastToken = state.token;
    });
    window.addEventListener("pagehide", () => source.close());
  }
})();
