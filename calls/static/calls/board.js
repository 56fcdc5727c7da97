// The live escalation board: a snapshot from the page, then live updates over /ws/board/.
// All data is written with textContent (never innerHTML), rows are keyed by escalation id, and the socket
// reconnects with back-off; every (re)connect brings a fresh snapshot from the database.
(function () {
  "use strict";

  const root = document.getElementById("board");
  if (!root) return;
  const apiBase = root.dataset.apiBase;
  const socketPath = root.dataset.socketPath;
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const statusEl = document.getElementById("board-status");
  const alertEl = document.getElementById("board-alert");
  const alertText = document.getElementById("board-alert-text");
  const errorEl = document.getElementById("board-error");
  const soundButton = document.getElementById("board-sound");

  const escalations = new Map(); // id -> item (open or acknowledged only)
  const seen = new Set(); // ids ever shown: an emergency alerts once
  const editing = new Set(); // ids whose resolve note is being typed
  let socket = null;
  let retry = 0;
  let audio = null;
  let soundOn = false;

  // --- rendering --------------------------------------------------------------------------------------------

  function age(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + " s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min";
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h " + (minutes % 60) + " min";
    return Math.floor(hours / 24) + " days";
  }

  function cell(text, className, label) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (label) td.dataset.label = label; // the column's name, shown beside the value at phone width
    td.textContent = text;
    return td;
  }

  function actionButton(label, item, action) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button board-action board-action--" + action;
    button.textContent = label;
    button.dataset.action = action;
    button.addEventListener("click", function () {
      if (action === "resolve") askNote(item, button); else act(item.id, action, button, null);
    });
    return button;
  }

  // Age colour against the clinic's acknowledgement target: amber past half of it, red past it (open only).
  function ageState(item) {
    if (item.status !== "open" || !item.ack_target_seconds) return "";
    const seconds = (Date.now() - Date.parse(item.created_at)) / 1000;
    if (seconds >= item.ack_target_seconds) return "overdue";
    if (seconds >= item.ack_target_seconds / 2) return "due";
    return "fresh";
  }

  function paintAge(td, item) {
    td.textContent = age(item.created_at);
    const state = ageState(item);
    td.className = "board-age" + (state ? " board-age--" + state : "");
    if (state === "overdue") td.textContent += " · over target";
  }

  // The caller's words with the evidence marked: text nodes and <mark> elements, never innerHTML.
  function words(trigger) {
    const p = document.createElement("p");
    p.className = "board-words";
    const text = trigger.text;
    let at = 0;
    if (trigger.cut_before) p.appendChild(document.createTextNode("… "));
    (trigger.highlights || []).forEach(function (span) {
      if (span[0] < at) return;
      p.appendChild(document.createTextNode(text.slice(at, span[0])));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(span[0], span[1]);
      p.appendChild(mark);
      at = span[1];
    });
    p.appendChild(document.createTextNode(text.slice(at)));
    if (trigger.cut_after) p.appendChild(document.createTextNode(" …"));
    if (trigger.said_at) {
      const when = document.createElement("span");
      when.className = "board-said-at";
      when.textContent = " (" + trigger.said_at + ")";
      p.appendChild(when);
    }
    return p;
  }

  function line(text, className) {
    const div = document.createElement("div");
    div.className = className;
    div.textContent = text;
    return div;
  }

  function row(item) {
    const tr = document.createElement("tr");
    tr.dataset.id = item.id;
    tr.className = "board-row board-row--" + item.level;
    const level = cell("", "board-level", "Level");
    const badge = document.createElement("span");
    badge.className = "board-badge board-badge--" + item.level;
    badge.textContent = item.level_label;
    level.appendChild(badge);
    tr.appendChild(level);

    const what = cell("", "board-reason", "What");
    const label = document.createElement("strong");
    label.className = "board-label";
    label.textContent = item.reason_label || item.source_label;
    what.appendChild(label);
    if (item.after_call) what.appendChild(line("Said after the call ended: call back now", "board-after-call"));
    if (item.trigger) what.appendChild(words(item.trigger));
    tr.appendChild(what);

    const caller = cell("", "board-caller", "Caller");
    caller.appendChild(line(item.caller_name || "Name not given", "board-caller-name"));
    if (item.callback_url) {
      const tel = document.createElement("a");
      tel.href = item.callback_url;
      tel.className = "board-callback";
      tel.textContent = "Call back " + item.caller_phone;
      caller.appendChild(tel);
    } else {
      caller.appendChild(line("No callback number", "board-no-number"));
    }
    tr.appendChild(caller);

    tr.appendChild(cell(item.organization_name, "board-clinic", "Clinic"));
    const ageCell = cell("", "board-age", "Age");
    ageCell.dataset.created = item.created_at;
    ageCell.title = "Raised " + (item.created_at_display || item.created_at);
    paintAge(ageCell, item);
    tr.appendChild(ageCell);

    const people = cell("", "board-people", "Paged");
    (item.pages || []).forEach(function (page) {
      const text = "Paged: " + page.person + " by " + page.channel + (page.status ? " (" + page.status + (page.at ? " " + page.at : "") + ")" : "");
      people.appendChild(line(text, "board-page board-page--" + (page.state || page.status)));
      if (page.acknowledged_by) people.appendChild(line("Acknowledged by " + page.acknowledged_by, "board-page-ack"));
    });
    if (item.status === "acknowledged" && item.acknowledged_by) {
      people.appendChild(line("Acknowledged by " + item.acknowledged_by + (item.acknowledged_at_display ? ", " + item.acknowledged_at_display : ""), "board-by"));
    }
    tr.appendChild(people);

    const actions = cell("", "board-actions", "");
    if (item.status === "open") actions.appendChild(actionButton("Acknowledge", item, "acknowledge"));
    actions.appendChild(actionButton("Resolve", item, "resolve"));
    const links = document.createElement("div");
    links.className = "board-links";
    const link = document.createElement("a");
    link.href = item.call_url;
    link.className = "board-call-link";
    link.textContent = "Open call";
    links.appendChild(link);
    if (item.escalation_url) {
      const details = document.createElement("a");
      details.href = item.escalation_url;
      details.textContent = "Escalation";
      links.appendChild(document.createTextNode(" · "));
      links.appendChild(details);
    }
    actions.appendChild(links);
    tr.appendChild(actions);
    return tr;
  }

  // Resolve asks for a short note first (required, stored with the escalation and in its audit trail).
  function askNote(item, button) {
    const actions = button.parentNode;
    if (actions.querySelector(".board-note")) return;
    const form = document.createElement("form");
    form.className = "board-note";
    form.noValidate = true; // the check below says what is missing, the same in every browser
    const input = document.createElement("input");
    input.type = "text";
    input.name = "note";
    input.required = true;
    input.maxLength = 2000;
    input.placeholder = "What was done (required)";
    input.setAttribute("aria-label", "Resolution note");
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.className = "button board-action board-action--confirm-resolve";
    submit.textContent = "Resolve with note";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "button board-action board-action--cancel";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", function () { form.remove(); editing.delete(item.id); });
    form.append(input, submit, cancel);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const note = input.value.trim();
      if (!note) { input.focus(); showError("Add a short note on what was done before resolving."); return; }
      if (submit.disabled) return; // already sent
      act(item.id, "resolve", submit, note);
    });
    actions.appendChild(form);
    editing.add(item.id);
    input.focus();
  }

  function render() {
    const items = Array.from(escalations.values()).sort(function (a, b) {
      return b.created_at.localeCompare(a.created_at);
    });
    const open = items.filter(function (i) { return i.status === "open"; });
    const acknowledged = items.filter(function (i) { return i.status === "acknowledged"; });
    fill("open", open);
    fill("ack", acknowledged);
    if (!open.some(function (i) { return i.level === "emergency"; })) {
      // Somebody took it: the banner is for emergencies nobody has acknowledged yet.
      alertEl.hidden = true;
      document.body.classList.remove("board-alarm");
    }
    document.title = (open.length ? "(" + open.length + ") " : "") + "Live escalation board";
  }

  function fill(prefix, items) {
    const body = document.getElementById(prefix + "-rows");
    // A row whose resolve note is being typed is kept as it is, so a push does not wipe the note.
    const kept = new Map();
    body.querySelectorAll("tr[data-id]").forEach(function (tr) { if (editing.has(tr.dataset.id)) kept.set(tr.dataset.id, tr); });
    body.replaceChildren.apply(body, items.map(function (item) { return kept.get(item.id) || row(item); }));
    document.getElementById(prefix + "-count").textContent = String(items.length);
    document.getElementById(prefix + "-none").hidden = items.length > 0;
    document.getElementById(prefix + "-table").hidden = items.length === 0;
  }

  // --- state ------------------------------------------------------------------------------------------------

  function upsert(item, live) {
    if (item.status === "resolved") {
      escalations.delete(item.id);
    } else {
      const isNew = !seen.has(item.id);
      escalations.set(item.id, item);
      if (isNew && live && item.level === "emergency" && item.status === "open") alarm(item);
    }
    seen.add(item.id);
  }

  function replaceAll(items, live) {
    const fresh = new Set(items.map(function (i) { return i.id; }));
    for (const id of Array.from(escalations.keys())) if (!fresh.has(id)) escalations.delete(id);
    items.forEach(function (item) { upsert(item, live); });
    render();
  }

  // --- alerts -----------------------------------------------------------------------------------------------

  function alarm(item) {
    alertText.textContent = item.organization_name + ": " + (item.reason_label || item.source_label) +
      (item.caller_phone ? " · call back " + item.caller_phone : "");
    alertEl.hidden = false;
    document.body.classList.add("board-alarm");
    beep();
  }

  function beep() {
    if (!soundOn || !audio) return;
    const now = audio.currentTime;
    [0, 0.35, 0.7].forEach(function (offset) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.3);
    });
  }

  function setSound(on) {
    soundOn = on;
    soundButton.setAttribute("aria-pressed", on ? "true" : "false");
    soundButton.textContent = on ? "Sound on" : "Enable sound";
  }

  soundButton.addEventListener("click", function () {
    // Browsers only allow audio after a user gesture: the AudioContext is created (or resumed) here.
    if (!soundOn) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { showError("This browser cannot play the alert sound."); return; }
      audio = audio || new Context();
      audio.resume();
      setSound(true);
      beep();
    } else {
      setSound(false);
    }
  });

  document.getElementById("board-alert-dismiss").addEventListener("click", function () {
    alertEl.hidden = true;
    document.body.classList.remove("board-alarm");
  });

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = !message;
  }

  // --- actions ----------------------------------------------------------------------------------------------

  function act(id, action, button, note) {
    button.disabled = true;
    showError("");
    fetch(apiBase + encodeURIComponent(id) + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, "Accept": "application/json" },
      body: JSON.stringify(note === null ? {} : { note: note }),
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            const message = body && body.error ? body.error.message : "The request failed (" + response.status + ").";
            throw new Error(message);
          }
          // The broadcast will say the same; applying the answer now keeps the board honest if the socket is down.
          editing.delete(id);
          const current = escalations.get(id);
          if (current) {
            upsert(Object.assign({}, current, {
              status: body.status,
              acknowledged_by: body.acknowledged_by ? body.acknowledged_by.username : current.acknowledged_by,
            }), false);
            render();
          }
        });
      })
      .catch(function (error) {
        showError(error.message);
        button.disabled = false;
      });
  }

  // --- socket -----------------------------------------------------------------------------------------------

  function setStatus(text, state) {
    statusEl.textContent = text;
    statusEl.className = "board-status board-status--" + state;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + socketPath);
    socket.addEventListener("open", function () {
      retry = 0;
      setStatus("Live", "live");
    });
    socket.addEventListener("message", function (event) {
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "snapshot") {
        replaceAll(message.escalations || [], true);
      } else if (message.type === "escalation" && message.escalation) {
        upsert(message.escalation, true);
        render();
      }
    });
    socket.addEventListener("close", function (event) {
      socket = null;
      // The server ended this board's right to listen (4401 signed out, 4403 no clinic left): retrying cannot help.
      if (event.code === 4401 || event.code === 4403) {
        setStatus(event.code === 4401 ? "Signed out: reload the page to sign in again." : "You no longer belong to this clinic.", "down");
        return;
      }
      // 1 s, 2 s, 4 s … up to 30 s, with jitter so a restarted server is not stormed.
      const delay = Math.min(30000, 1000 * Math.pow(2, retry)) * (0.75 + Math.random() * 0.5);
      retry += 1;
      setStatus("Reconnecting in " + Math.round(delay / 1000) + " s…", "down");
      window.setTimeout(connect, delay);
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "refresh" }));
    }
  });

  window.setInterval(function () {
    document.querySelectorAll("tr[data-id] .board-age").forEach(function (td) {
      const item = escalations.get(td.parentNode.dataset.id);
      if (item) paintAge(td, item);
    });
  }, 10000);

  const initial = JSON.parse(document.getElementById("board-snapshot").textContent);
  replaceAll(initial, false);
  connect();
})();
