"""Routed before admin.site.urls (voiceagent/urls.py): /admin/ itself, and each clinic's home and export."""

from django.contrib import admin
from django.urls import path

from calls.home import views

app_name = "home"

urlpatterns = [
    path("", admin.site.admin_view(views.index), name="index"),
    path("home/<uuid:organization_id>/", admin.site.admin_view(views.clinic_home), name="clinic"),
    path("home/<uuid:organization_id>/export/", admin.site.admin_view(views.export), name="export"),
]
