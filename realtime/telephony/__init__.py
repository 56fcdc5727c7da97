"""Phone calls through Twilio: webhooks, TwiML, stream tokens, transfer to a human, barge-in playback accounting.

Flow of a call: Twilio POSTs /twilio/voice -> we answer TwiML. While the clinic is open (or after hours under the
take_message / emergency_only policies) that is <Connect><Stream> to /twilio/media carrying a one-time stream token and
our call id as <Parameter>s (never in the URL; nothing about the caller in the TwiML). The media bridge (a later
consumer) consumes the token with services.stream_token_consume(), reads the clinic's greeting from
Organization.agent_greeting (and the answer mode from call.metadata["twilio"]["mode"]) and speaks first.
When the stream ends Twilio requests the <Connect action> (/twilio/stream-ended): unless the bridge marked a normal
goodbye or transfer (services.stream_end_mark) the caller gets an apology and a <Dial> to the clinic, or voicemail.
"""

# Public paths (no trailing slash: Twilio signs the exact URL, so these must match what it is told to request).
VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/status"
MEDIA_PATH = "/twilio/media"
STREAM_ENDED_PATH = "/twilio/stream-ended"
DIAL_RESULT_PATH = "/twilio/dial-result"
VOICEMAIL_PATH = "/twilio/voicemail"
RECORDING_STATUS_PATH = "/twilio/recording-status"
# A whole-call recording (the clinic's record_calls): Twilio reports it here, never as a voicemail.
CALL_RECORDING_STATUS_PATH = "/twilio/call-recording-status"
# On-call paging by SMS (calls.paging): replies to a page (`ACK`) and the Message status callback.
SMS_PATH = "/twilio/sms"
SMS_STATUS_PATH = "/twilio/sms-status"
