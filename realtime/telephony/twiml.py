"""TwiML documents we answer Twilio with. Pure builders: no database, no settings.

Every path that ends a call says something first: no caller is hung up on without a word.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

NOT_IN_SERVICE = "We're sorry. The number you have dialed is not in service. Goodbye."
UNAVAILABLE = "We're sorry, we can't take your call right now. Please call again later. Goodbye."
FORWARD_DEFAULT = "Our office is closed. Please hold while we connect you to the provider on call."
FALLBACK_APOLOGY = "We're sorry, we're having trouble with this call. Please hold while we connect you to our staff."
VOICEMAIL_PROMPT = (
    "We're sorry, no one can take your call right now. Please leave your name, your phone number and a short "
    "message after the tone, and the clinic will call you back."
)
TRANSFER_UNANSWERED = (
    "We're sorry, no one is available to take your call right now. The clinic will call you back as soon as "
    "possible. Goodbye."
)
VOICEMAIL_THANKS = "Thank you. Your message has been recorded, and the clinic will call you back. Goodbye."
CONNECTING = "Please hold while I connect you to our staff."
RECORDING_NOTICE = "This call is recorded."

DIAL_TIMEOUT_SECONDS = 20
VOICEMAIL_MAX_SECONDS = 120


def render(response: VoiceResponse) -> str:
    return str(response)


def stream(
    *, stream_url: str, action_url: str, stream_token: str, call_id: str, recording_status_url: str | None = None
) -> str:
    """<Connect action><Stream> with the one-time token as a <Parameter> (Twilio rejects query strings on Stream).

    With `recording_status_url` (the clinic records its calls) the call is recorded first: <Start><Recording>
    starts a recording of both sides that runs until the call ends, through the agent, a transfer or voicemail,
    and Twilio reports it to that URL; the caller is told before the agent speaks."""
    response = VoiceResponse()
    if recording_status_url is not None:
        start = response.start()
        start.recording(
            channels="dual",
            recording_status_callback=recording_status_url,
            recording_status_callback_event="completed absent",
        )
        response.say(RECORDING_NOTICE)
    connect = response.connect(action=action_url)
    media = connect.stream(url=stream_url)
    media.parameter(name="stream_token", value=stream_token)
    media.parameter(name="call_id", value=call_id)
    return render(response)


def say_and_hangup(message: str) -> str:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return render(response)


def hangup() -> str:
    """Only after the agent (or a human) has already said goodbye."""
    response = VoiceResponse()
    response.hangup()
    return render(response)


def dial(*, message: str, to_number: str, action_url: str, caller_id: str | None = None) -> str:
    """Say a line, then ring `to_number`; Twilio reports the outcome to `action_url` (which answers what's next).

    answerOnBridge keeps the caller hearing ringback (not silence) until the callee picks up.
    """
    response = VoiceResponse()
    response.say(message)
    kwargs = {"caller_id": caller_id} if caller_id else {}
    response.dial(action=action_url, timeout=DIAL_TIMEOUT_SECONDS, answer_on_bridge=True, **kwargs).number(to_number)
    return render(response)


def voicemail(*, prompt: str, action_url: str, status_callback_url: str) -> str:
    """Record a message; the action URL thanks the caller and hangs up, the status callback files the recording."""
    response = VoiceResponse()
    response.say(prompt)
    response.record(
        action=action_url,
        max_length=VOICEMAIL_MAX_SECONDS,
        timeout=5,
        play_beep=True,
        recording_status_callback=status_callback_url,
    )
    # Reached only if the caller records nothing: still end with a sentence.
    response.say(TRANSFER_UNANSWERED)
    response.hangup()
    return render(response)
