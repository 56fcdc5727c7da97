"""A fake Twilio for tests and local runs, over real sockets: signed webhooks (webhooks.py), a Media Streams
client (media.py) and the REST call-update endpoint (rest_server.py). Nothing here is imported by production code."""
