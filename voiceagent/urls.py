"""URL map: the staff console, the API, the realtime and telephony endpoints."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "voiceagent — clinic console"
admin.site.site_title = "voiceagent"
admin.site.index_title = "Clinic console"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("calls.api.urls")),
    path("api/", include("calls.api.escalation_urls")),
    path("", include("calls.urls")),
    path("api/", include("organizations.api.urls")),
    path("", include("realtime.urls")),
]
