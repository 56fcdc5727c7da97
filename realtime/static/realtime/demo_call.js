// voiceagent browser call: the whole flow a clinic's website needs (see docs/integration.md).
//  1. POST /api/realtime/session with the clinic's publishable key -> call id, call token, client secret
//  2. WebRTC offer to OpenAI with the client secret -> SDP answer; the call id is in the Location header
//  3. POST /api/calls/{id}/realtime with that id: our server attaches and runs tools, triage and persistence
//  4. The transcript shown is the one our server stored (GET /api/calls/{id}/transcript, polled with the call
//     token): what the clinic will review, the same whatever carries the audio
//  5. Hang up: close the peer connection and POST /api/call/end
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("demo-config").textContent);
  const form = document.getElementById("call-form");
  const hangupButton = document.getElementById("hangup");
  const startButton = document.getElementById("start");
  const statusLine = document.getElementById("status");
  const transcript = document.getElementById("transcript");
  let call = null; // {id, token, orgKey, pc, stream}

  const say = (text) => { statusLine.textContent = text; };
  const line = (speaker, text) => {
    const item = document.createElement("li");
    item.className = speaker;
    item.textContent = text; // text only, never markup: transcripts are caller speech
    transcript.appendChild(item);
  };

  // Caller-side requests are throttled per address (30 a minute by default): one poll every 3 s leaves room.
  const TRANSCRIPT_POLL_MS = 3000;

  async function api(path, orgKey, body, callToken, method = "POST") {
    const headers = { "X-Org-Key": orgKey };
    if (method === "POST") headers["Content-Type"] = "application/json";
    if (callToken) headers["X-Call-Token"] = callToken;
    const init = { method, headers };
    if (method === "POST") init.body = JSON.stringify(body || {});
    const response = await fetch(path, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      throw new Error(`${error.code || response.status}: ${error.message || "request failed"}`);
    }
    return data;
  }

  async function start(orgKey) {
    say("Minting a session…");
    const session = await api("/api/realtime/session", orgKey, {});
    call = { id: session.call_id, token: session.call_token, orgKey };

    say("Asking for the microphone…");
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = new RTCPeerConnection();
    call.pc = pc;
    call.stream = stream;
    const speaker = document.createElement("audio");
    speaker.autoplay = true;
    pc.ontrack = (event) => { speaker.srcObject = event.streams[0]; };
    stream.getTracks().forEach((track) => pc.addTrack(track, stream));

    // OpenAI's events for this call also arrive here; the server sees the same ones through its sideband and
    // stores the transcript, which is what the page shows (step 4). Here they only tell who is speaking.
    const events = pc.createDataChannel("oai-events");
    events.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "input_audio_buffer.speech_started") say("Listening…");
      if (event.type === "response.created") say("The receptionist is answering…");
    };

    say("Connecting to the voice model…");
    await pc.setLocalDescription(await pc.createOffer());
    const answer = await fetch(`${config.openaiBaseUrl}/realtime/calls`, {
      method: "POST",
      body: pc.localDescription.sdp,
      headers: { Authorization: `Bearer ${session.client_secret.value}`, "Content-Type": "application/sdp" },
    });
    if (!answer.ok) throw new Error(`OpenAI refused the call (${answer.status})`);
    const openaiCallId = (answer.headers.get("Location") || "").split("/").pop();
    await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });

    await api(`/api/calls/${call.id}/realtime`, orgKey, { openai_call_id: openaiCallId }, call.token);
    say("Connected: speak now.");
    hangupButton.disabled = false;
    follow(call);
  }

  // The stored transcript, new lines only, until the call ends (by the agent, the clinic's limit or a hang-up).
  async function follow(current) {
    let after = 0;
    while (call === current) {
      let delay = TRANSCRIPT_POLL_MS;
      try {
        const path = `/api/calls/${current.id}/transcript?after=${after}`;
        const data = await api(path, current.orgKey, null, current.token, "GET");
        if (call !== current) return;
        for (const segment of data.segments) {
          line(segment.speaker, segment.text);
          after = segment.seq;
        }
        if (data.call_status !== "in_progress") {
          ended(current);
          return;
        }
      } catch (error) {
        delay = TRANSCRIPT_POLL_MS * 3; // throttled or offline: the next poll picks up where this one stopped
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  function release(ending) {
    hangupButton.disabled = true;
    startButton.disabled = false;
    if (ending.pc) ending.pc.close();
    if (ending.stream) ending.stream.getTracks().forEach((track) => track.stop());
  }

  function ended(ending) {
    call = null;
    release(ending);
    say("Call ended.");
  }

  async function hangup(reason) {
    if (!call) return;
    const ending = call;
    call = null;
    release(ending);
    try {
      await api("/api/call/end", ending.orgKey, { call_id: ending.id, reason }, ending.token);
      say("Call ended.");
    } catch (error) {
      say(`Call ended (${error.message}).`);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    startButton.disabled = true;
    transcript.replaceChildren();
    try {
      await start(document.getElementById("org-key").value.trim());
    } catch (error) {
      say(`Could not start the call: ${error.message}`);
      await hangup("error");
      startButton.disabled = false;
    }
  });
  hangupButton.addEventListener("click", () => hangup("caller_hangup"));
  window.addEventListener("pagehide", () => hangup("caller_hangup"));
})();
