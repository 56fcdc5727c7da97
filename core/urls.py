"""Load-balancer probes at the root (no trailing slash: probes are configured with exact paths)."""

from django.urls import path

from core.health import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
