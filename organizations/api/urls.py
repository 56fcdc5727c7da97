"""Clinic configuration endpoint; answers with and without a trailing slash."""

from django.urls import path

from organizations.api.views import OrganizationConfigView

urlpatterns = [
    path("org/config/<uuid:org_id>", OrganizationConfigView.as_view(), name="org-config"),
    path("org/config/<uuid:org_id>/", OrganizationConfigView.as_view(), name="org-config-slash"),
]
