"""URL map: the staff console, the API, the realtime and telephony endpoints."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.errors import api_not_found, not_found_page
from organizations.forms import StaffLoginForm

admin.site.site_header = "voiceagent — clinic console"
admin.site.site_title = "voiceagent"
admin.site.index_title = "Clinic console"
# No public site to "view": the link led to a 404 (the live board is linked beside it).
admin.site.site_url = None
# Sign-in throttle and a lockout that says it is one (organizations.auth).
admin.site.login_form = StaffLoginForm

# A database outage raised outside a view (sessions, auth) answers 503 + Retry-After, not a 500 page.
handler500 = "core.resilience.server_error"

urlpatterns = [
    path("", include("core.urls")),  # /healthz and /readyz for load balancers
    # The admin's "view on site" shortcut: no model here has a public page, and in DEBUG its two different 404s
    # told another clinic's existing object apart from a missing one.
    re_path(r"^admin/r/", not_found_page),
    # Before the admin: /admin/ is a clinic's home page (operators keep Django's index), plus /admin/home/<clinic>/.
    path("admin/", include("calls.home.urls")),
    path("admin/", admin.site.urls),
    path("", include("organizations.account_urls")),  # invitation and access-reset links
    path("api/", include("calls.api.urls")),
    path("api/", include("calls.api.escalation_urls")),
    path("api/", include("realtime.api_urls")),
    path("", include("calls.urls")),
    path("api/", include("organizations.api.urls")),
    path("", include("realtime.urls")),
    # OpenAPI schema and Swagger UI (assets from drf-spectacular-sidecar, served by this process).
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="api-schema"),
    # The page has no body to describe: OPTIONS answers 405 (DRF's metadata would need an HTML template).
    re_path(
        r"^api/docs/?$",
        SpectacularSwaggerView.as_view(url_name="api-schema", metadata_class=None),
        name="api-docs",
    ),
    path("api/", include("organizations.auth_urls")),  # token revocation
    # Last: any other /api/ path answers 404 in the API's error shape, not Django's HTML page.
    re_path(r"^api/", api_not_found),
]
