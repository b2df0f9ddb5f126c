// Review pages: keyboard shortcuts in the focus view, release of the held task when the page is left,
// selection in the table. Everything here is a shortcut for buttons and links that work without it.
(function () {
  "use strict";

  // The server answers 422 with the focus panel and its error: let htmx swap it in.
  if (window.htmx && !htmx.config.responseHandling.some((r) => r.code === "422")) {
    htmx.config.responseHandling.unshift({ code: "422", swap: true, error: false });
  }

  const panel = () => document.getElementById("focus-panel");
  const help = () => document.getElementById("review-help");
  const typing = (el) => !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  const inPanel = (selector) => (panel() ? panel().querySelector(selector) : null);

  // --- choosing and sending a decision ---------------------------------------------------------------
  function choose(button) {
    panel().querySelectorAll("button.decision[data-keys]").forEach((b) => b.setAttribute("aria-pressed", "false"));
    button.setAttribute("aria-pressed", "true");
    panel().dataset.selected = button.dataset.decision;
    if (button.dataset.decision === "edit") {
      const editor = inPanel("[data-editor]");
      if (editor) {
        const details = editor.closest("details");
        if (details) details.open = true;
        editor.focus();
      }
    }
  }

  function send() {
    const chosen = inPanel("button.decision[aria-pressed=true]");
    if (chosen) {
      chosen.click();
      return;
    }
    const status = inPanel("#draft-status");
    if (status) status.textContent = "Choose a decision first: press 1, 2 or 3 (see ? for all keys).";
  }

  function restoreChoice() {
    const p = panel();
    if (!p || !p.dataset.selected) return;
    const button = p.querySelector(`button.decision[data-decision="${p.dataset.selected}"]`);
    if (button) button.setAttribute("aria-pressed", "true");
  }

  function toggleHelp(show) {
    const box = help();
    if (!box) return;
    box.hidden = show === undefined ? !box.hidden : !show;
    if (!box.hidden) box.querySelector("[data-action=help-close]").focus();
  }

  function click(selector) {
    const el = inPanel(selector);
    if (el) el.click();
    return !!el;
  }

  document.addEventListener("keydown", function (event) {
    if (!panel()) return;
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key;
    if (mod && key.toLowerCase() === "s") {
      event.preventDefault(); // never the browser's "save page"
      click("[data-action=draft]");
      return;
    }
    if (key === "Escape") {
      if (help() && !help().hidden) toggleHelp(false);
      else if (typing(event.target)) event.target.blur();
      return;
    }
    if (typing(event.target)) {
      if (mod && key === "Enter") {
        event.preventDefault();
        send();
      }
      return; // typing: no shortcut
    }
    if (mod || event.altKey) return;
    if (help() && !help().hidden && key !== "?") return;
    // Enter on a focused button or link already does what it says.
    if (key === "Enter" && event.target.closest && event.target.closest("button, a, summary")) return;
    switch (key) {
      case "j":
      case "ArrowRight":
        event.preventDefault();
        click("[data-action=next]");
        return;
      case "k":
      case "ArrowLeft":
        event.preventDefault();
        click("[data-action=prev]");
        return;
      case "Enter":
        event.preventDefault();
        send();
        return;
      case "Backspace":
        event.preventDefault(); // not "back" in the history
        click("[data-action=discard]");
        return;
      case "?":
        event.preventDefault();
        toggleHelp();
        return;
    }
    if (key.length !== 1) return;
    const button = inPanel(`button.decision[data-keys~="${CSS.escape(key.toLowerCase())}"]`);
    if (button) {
      event.preventDefault(); // "e" must not be typed into the box it focuses
      choose(button);
    }
  });

  document.addEventListener("click", function (event) {
    const target = event.target.closest("[data-action]");
    if (!target) return;
    if (target.dataset.action === "help") toggleHelp();
    if (target.dataset.action === "help-close") toggleHelp(false);
  });

  // A category picked in the select means "change the category".
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("#focus-panel select[data-editor]")) {
      const edit = inPanel('button.decision[data-decision="edit"]');
      if (edit) {
        panel().querySelectorAll("button.decision[data-keys]").forEach((b) => b.setAttribute("aria-pressed", "false"));
        edit.setAttribute("aria-pressed", "true");
        panel().dataset.selected = "edit";
      }
    }
    if (event.target.matches && event.target.matches("select[data-autosubmit]")) {
      const form = event.target.form;
      const clears = event.target.dataset.clears;
      if (clears && form.elements[clears]) form.elements[clears].value = "";
      form.submit();
    }
  });

  // --- release the held task when the reviewer leaves --------------------------------------------------
  // Links that walk the trail keep the claim (he comes back to it); leaving otherwise gives it back at once
  // instead of when its lease runs out.
  let keepClaim = false;
  document.addEventListener(
    "click",
    function (event) {
      if (event.target.closest("[data-keep-claim]")) keepClaim = true;
    },
    true,
  );
  window.addEventListener("pagehide", function () {
    const p = panel();
    if (!p || keepClaim || p.dataset.current !== "1" || !p.dataset.releaseUrl) return;
    const token = p.querySelector("input[name=csrfmiddlewaretoken]");
    if (!token || !navigator.sendBeacon) return;
    const body = new FormData();
    body.append("csrfmiddlewaretoken", token.value);
    body.append("beacon", "1");
    navigator.sendBeacon(p.dataset.releaseUrl, body);
  });
  window.addEventListener("pageshow", function (event) {
    keepClaim = false;
    // Back from the cache after the claim was given back: load the page again to hold a task anew.
    if (event.persisted && panel() && panel().dataset.current === "1") window.location.reload();
  });

  document.addEventListener("DOMContentLoaded", restoreChoice);
  document.addEventListener("htmx:afterSwap", function () {
    keepClaim = false;
    restoreChoice();
    // htmx gives focus back to the element of the same id (the category select, the note): on a new item
    // that would swallow the next shortcut, so the new panel starts with nothing focused.
    const p = panel();
    if (p && p.contains(document.activeElement)) document.activeElement.blur();
  });

  // --- the table: select every task of the page --------------------------------------------------------
  function countSelected(form) {
    const out = form.querySelector("[data-selected-count]");
    if (out) out.textContent = form.querySelectorAll("input[name=task]:checked").length;
  }
  document.addEventListener("change", function (event) {
    const form = event.target.closest && event.target.closest("#bulk-form");
    if (!form) return;
    if (event.target.matches("[data-select-all]")) {
      form.querySelectorAll("input[name=task]:not(:disabled)").forEach((box) => (box.checked = event.target.checked));
    }
    countSelected(form);
  });
})();
