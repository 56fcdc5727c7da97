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

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function actionButton(label, item, action) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button board-action board-action--" + action;
    button.textContent = label;
    button.dataset.action = action;
    button.addEventListener("click", function () { act(item.id, action, button); });
    return button;
  }

  function row(item) {
    const tr = document.createElement("tr");
    tr.dataset.id = item.id;
    tr.className = "board-row board-row--" + item.level;
    const level = cell("", "board-level");
    const badge = document.createElement("span");
    badge.className = "board-badge board-badge--" + item.level;
    badge.textContent = item.level_label;
    level.appendChild(badge);
    tr.appendChild(level);
    tr.appendChild(cell(item.reason_code || item.source_label, "board-reason"));
    tr.appendChild(cell(item.organization_name, "board-clinic"));
    const ageCell = cell(age(item.created_at), "board-age");
    ageCell.dataset.created = item.created_at;
    ageCell.title = new Date(item.created_at).toLocaleString();
    tr.appendChild(ageCell);
    const callCell = cell("", "board-call");
    const link = document.createElement("a");
    link.href = item.call_url;
    link.textContent = "Open call";
    callCell.appendChild(link);
    tr.appendChild(callCell);
    if (item.status === "acknowledged") tr.appendChild(cell(item.acknowledged_by || "", "board-by"));
    const actions = cell("", "board-actions");
    if (item.status === "open") actions.appendChild(actionButton("Acknowledge", item, "acknowledge"));
    actions.appendChild(actionButton("Resolve", item, "resolve"));
    tr.appendChild(actions);
    return tr;
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
    body.replaceChildren.apply(body, items.map(row));
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
    alertText.textContent = item.organization_name + ": " + (item.reason_code || item.source_label);
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

  function act(id, action, button) {
    button.disabled = true;
    showError("");
    fetch(apiBase + encodeURIComponent(id) + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, "Accept": "application/json" },
      body: "{}",
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            const message = body && body.error ? body.error.message : "The request failed (" + response.status + ").";
            throw new Error(message);
          }
          // The broadcast will say the same; applying the answer now keeps the board honest if the socket is down.
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
    document.querySelectorAll(".board-age").forEach(function (td) { td.textContent = age(td.dataset.created); });
  }, 10000);

  const initial = JSON.parse(document.getElementById("board-snapshot").textContent);
  replaceAll(initial, false);
  connect();
})();
