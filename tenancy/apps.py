from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenancy"

    def ready(self):
        """Connect the receivers that revoke tokens and note sign-in times."""
        from tenancy.signals import connect

        connect()
