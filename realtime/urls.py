from django.contrib import admin
from django.urls import path

from realtime.demo import demo_call
from realtime.telephony import (
    CALL_RECORDING_STATUS_PATH,
    DIAL_RESULT_PATH,
    RECORDING_STATUS_PATH,
    SMS_PATH,
    SMS_STATUS_PATH,
    STATUS_PATH,
    STREAM_ENDED_PATH,
    VOICE_PATH,
    VOICEMAIL_PATH,
)
from realtime.telephony import views as twilio_views
from realtime.telephony.recordings import WHOLE_CALL, call_recording
from realtime.webhooks import openai_webhook

# Twilio webhooks: paths without a trailing slash, exactly as TwiML and the console name them (Twilio signs the
# exact URL, so an APPEND_SLASH redirect would break the signature).
urlpatterns: list = [
    path(VOICE_PATH.lstrip("/"), twilio_views.voice, name="twilio-voice"),
    path(STATUS_PATH.lstrip("/"), twilio_views.status, name="twilio-status"),
    path(STREAM_ENDED_PATH.lstrip("/"), twilio_views.stream_ended, name="twilio-stream-ended"),
    path(DIAL_RESULT_PATH.lstrip("/"), twilio_views.dial_result, name="twilio-dial-result"),
    path(VOICEMAIL_PATH.lstrip("/"), twilio_views.voicemail, name="twilio-voicemail"),
    path(RECORDING_STATUS_PATH.lstrip("/"), twilio_views.recording_status, name="twilio-recording-status"),
    path(
        CALL_RECORDING_STATUS_PATH.lstrip("/"), twilio_views.call_recording_status, name="twilio-call-recording-status"
    ),
    path(SMS_PATH.lstrip("/"), twilio_views.sms, name="twilio-sms"),
    path(SMS_STATUS_PATH.lstrip("/"), twilio_views.sms_status, name="twilio-sms-status"),
    path("demo/call/", demo_call, name="demo-call"),
    # The console's player for a call's recording (staff login, tenancy, audit: realtime/telephony/recordings.py).
    path("console/calls/<uuid:call_id>/recording.wav", admin.site.admin_view(call_recording), name="call-recording"),
    path(
        "console/calls/<uuid:call_id>/call-recording.wav",
        admin.site.admin_view(call_recording),
        {"part": WHOLE_CALL},
        name="call-recording-whole",
    ),
    # OpenAI's project webhooks (SIP calls): the exact URL configured in the OpenAI project, no trailing slash.
    path("openai/webhook", openai_webhook, name="openai-webhook"),
]
