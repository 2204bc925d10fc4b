"""Console pages of governance changes, mounted at the root of the tenant host."""

from django.urls import path

from governance import views

urlpatterns = [
    path("governance/", views.change_list, name="governance-changes"),
    path("governance/<int:change_id>/approve/", views.change_approve_view, name="governance-approve"),
    path("governance/<int:change_id>/reject/", views.change_reject_view, name="governance-reject"),
    path("governance/<int:change_id>/cancel/", views.change_cancel_view, name="governance-cancel"),
]
