"""Clinic configuration endpoint, by the clinic's id or slug; answers with and without a trailing slash."""

from django.urls import path

from organizations.api.views import OrganizationConfigView

urlpatterns = [
    path("org/config/<str:org_id>", OrganizationConfigView.as_view(), name="org-config"),
    path("org/config/<str:org_id>/", OrganizationConfigView.as_view(), name="org-config-slash"),
]
