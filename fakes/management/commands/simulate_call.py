"""`manage.py simulate_call --org SLUG --scenario NAME`: one complete call through the real code path against the
shipped fake OpenAI (a scripted caller), then what was stored: transcript, intake, escalations and timings.

Web calls follow the browser flow step by step: mint a client secret for the clinic's session, open the "WebRTC"
call upstream with it (as the browser would), link the OpenAI call id and run the server's sideband through the
call event pipeline until the call ends. Phone calls (`--channel phone`) go through Twilio webhooks and the media
bridge with the fake Twilio peer. SIP calls (`--channel sip`) are answered by the fake OpenAI itself, as a Twilio SIP
trunk's calls are: it posts the signed `realtime.call.incoming` to an in-process server, which accepts the call and
attaches its sideband; transfers go out as `refer`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls import notifications
from calls.models import Call, Intake
from fakes.openai import FakeOpenAI, list_scenarios, load_scenario
from fakes.openai.scenarios import Scenario, ScenarioError
from organizations.models import Organization
from realtime import services
from realtime.sideband import run_sideband
from realtime.upstream import UpstreamError

FAKE_KEY = "sk-simulator"


class Command(BaseCommand):
    help = "Simulate one complete call against the fake OpenAI upstream and print what was stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="Clinic slug.")
        parser.add_argument("--scenario", help="Shipped scenario name or a path to a scenario YAML file.")
        parser.add_argument("--channel", choices=["web", "phone", "sip"], default="web")
        parser.add_argument("--list", action="store_true", help="List the shipped scenarios.")
        parser.add_argument("--time-scale", type=float, default=0.3, help="Scripted delays x this (0 = fastest).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for scenario in list_scenarios():
                self.stdout.write(f"{scenario.name:24} {scenario.description.strip().splitlines()[0]}")
            return
        if not options["org"] or not options["scenario"]:
            raise CommandError("Give --org SLUG and --scenario NAME (see --list).")
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No clinic with slug {options['org']!r} (python manage.py seed_demo creates two).")
        try:
            scenario = load_scenario(options["scenario"])
        except (ScenarioError, FileNotFoundError, OSError) as exc:
            raise CommandError(str(exc)) from None

        if options["channel"] == "phone":
            self._report(*self._phone_call(organization, scenario, time_scale=options["time_scale"]))
            return
        if options["channel"] == "sip":
            self._report(*self._sip_call(organization, scenario, time_scale=options["time_scale"]))
            return

        with FakeOpenAI.start_in_thread(scenario=scenario, time_scale=options["time_scale"], api_key=FAKE_KEY) as fake:
            settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = fake.base_url, FAKE_KEY
            call, timings = self._web_call(organization, fake.base_url)
        self._report(call, timings)

    def _web_call(self, organization: Organization, base_url: str) -> tuple[Call, dict[str, float]]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        session = services.session_for(organization)
        try:
            secret = async_to_sync(services.mint)(session)
        except UpstreamError as exc:
            raise CommandError(f"minting failed: {exc.code}: {exc.message}") from None
        timings["mint_ms"] = (time.perf_counter() - started) * 1000
        call, _token = services.web_call_start(organization)
        self.stdout.write(f"call {call.pk} started for {organization.name}")
        # What the browser does with the secret: the WebRTC offer, answered with the call id in Location.
        offer = httpx.post(
            f"{base_url}/realtime/calls",
            content="v=0\r\n",
            timeout=5,
            headers={"Authorization": f"Bearer {secret.value}", "Content-Type": "application/sdp"},
        )
        offer.raise_for_status()
        openai_call_id = offer.headers["Location"].rsplit("/", 1)[-1]
        services.openai_call_link(call=call, openai_call_id=openai_call_id)
        attached = time.perf_counter()
        call = async_to_sync(run_sideband)(str(call.pk), openai_call_id)
        timings["call_s"] = time.perf_counter() - attached
        return call, timings

    def _phone_call(
        self, organization: Organization, scenario: Scenario, *, time_scale: float
    ) -> tuple[Call, dict[str, float]]:
        """Twilio's side played by the fake peer: a signed voice webhook, then a Media Stream into the bridge of an
        in-process server, whose upstream is the fake OpenAI playing the scenario."""
        from fakes.simulate_phone import serve_in_thread, simulate_phone_call

        if not organization.twilio_numbers.exists():
            raise CommandError(f"{organization.name} has no Twilio number: add one in the console first.")
        from fakes.twilio.rest_server import FakeTwilioRest

        # Twilio's REST API (transfers) is the fake one too: nothing leaves this machine.
        settings.TWILIO_ACCOUNT_SID = "AC" + "5" * 32
        settings.TWILIO_AUTH_TOKEN = "simulator-auth-token"  # noqa: S105 - signs only this process' requests
        with (
            FakeOpenAI.start_in_thread(scenario=scenario, time_scale=time_scale, api_key=FAKE_KEY) as fake,
            FakeTwilioRest(account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN) as rest,
        ):
            settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = fake.base_url, FAKE_KEY
            settings.TWILIO_API_BASE_URL = rest.base_url
            server_url = serve_in_thread()
            started = time.perf_counter()
            try:
                result = simulate_phone_call(
                    organization, scenario, server_url=server_url, fake_openai_url=fake.base_url, time_scale=time_scale
                )
            except ValueError as exc:  # the clinic's TwiML did not connect the agent (after hours, by its policy)
                raise CommandError(
                    f"{exc}: {organization.name} is closed now and its after-hours policy "
                    f"({organization.get_after_hours_policy_display()}) does not let the agent answer."
                ) from None
            transfers = [r for r in rest.requests if "Twiml" in str(r)]
        self.stdout.write(f"call {result.call.pk} (phone) answered with TwiML: {result.voice_twiml[:120]}…")
        if transfers:
            self.stdout.write(f"transferred through Twilio's REST API ({len(transfers)} request)")
        timings = {"call_s": time.perf_counter() - started, "frames_sent": result.media.sent_frames}
        return result.call, timings

    def _sip_call(
        self, organization: Organization, scenario: Scenario, *, time_scale: float
    ) -> tuple[Call, dict[str, float]]:
        """OpenAI's side played by the fake: the call rings there, the signed webhook reaches an in-process server
        (daphne), which accepts it and runs the sideband; the fake's scripted caller plays the scenario."""
        from fakes.openai.webhooks import new_secret
        from fakes.simulate_phone import serve_in_thread

        number = organization.twilio_numbers.order_by("number").first()
        if number is None:
            raise CommandError(f"{organization.name} has no phone number: add one in the console first.")
        settings.OPENAI_WEBHOOK_SECRET = settings.OPENAI_WEBHOOK_SECRET or new_secret()
        with FakeOpenAI.start_in_thread(scenario=scenario, time_scale=time_scale, api_key=FAKE_KEY) as fake:
            settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = fake.base_url, FAKE_KEY
            server_url = serve_in_thread()
            started = time.perf_counter()
            delivery = fake.run(
                fake.place_sip_call(
                    f"{server_url}/openai/webhook", settings.OPENAI_WEBHOOK_SECRET, to=number.number, scenario=scenario
                ),
                timeout=60,
            )
            answer = json.loads(delivery.answers[0]).get("code") if delivery.answers else "unanswered"
            self.stdout.write(f"SIP call {delivery.call_id} to {number.number}: webhook answered {answer}")
            if answer != "accepted":
                raise CommandError(f"the call was not accepted ({answer})")
            call = Call.objects.get(openai_call_id=delivery.call_id)
            deadline = time.monotonic() + 600
            while not call.is_ended and time.monotonic() < deadline:
                time.sleep(0.2)
                call.refresh_from_db()
            record = fake.calls[delivery.call_id]
        for target in record.refer_targets:
            self.stdout.write(f"transferred with refer to {target}")
        return call, {"call_s": time.perf_counter() - started}

    def _report(self, call: Call, timings: dict[str, float]) -> None:
        notifications.wait_for_in_flight()  # escalation pushes started by this call, before the process exits
        call.refresh_from_db()
        self.stdout.write(self.style.MIGRATE_HEADING("\nTranscript"))
        for segment in call.segments.order_by("seq"):
            self.stdout.write(f"  {segment.seq:>3} {segment.speaker:>6}: {segment.text}")
        self.stdout.write(self.style.MIGRATE_HEADING("Intake"))
        intake = Intake.objects.filter(call=call).first()
        if intake is None:
            self.stdout.write("  (none)")
        else:
            self.stdout.write(f"  completed={intake.completed} urgency={intake.urgency or '-'}")
            for key, value in intake.data.items():
                self.stdout.write(f"  {key:>20}: {json.dumps(value, ensure_ascii=False)}")
        self.stdout.write(self.style.MIGRATE_HEADING("Escalations"))
        for escalation in call.escalations.order_by("created_at"):
            self.stdout.write(f"  {escalation.level} via {escalation.source}: {escalation.reason}")
        if not call.escalations.exists():
            self.stdout.write("  (none)")
        self.stdout.write(self.style.MIGRATE_HEADING("Call"))
        self.stdout.write(f"  status={call.status} end_reason={call.end_reason} duration={call.duration_seconds}s")
        if timings:
            self.stdout.write("  " + " ".join(f"{k}={v:.1f}" for k, v in timings.items()))
