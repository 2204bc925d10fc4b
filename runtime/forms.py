"""Console forms of the runtime pages: they only parse input; the services validate and decide."""

from django import forms

from bundles.language.decisions import STATUSES

ANY = ""


class DecisionFilterForm(forms.Form):
    """Filter the decisions browser (GET)."""

    bundle = forms.ChoiceField(required=False)
    version = forms.CharField(required=False, max_length=64)
    status = forms.ChoiceField(required=False, choices=[(ANY, "any status")] + [(s, s) for s in STATUSES])
    policy = forms.CharField(required=False, max_length=100, help_text="A policy that fired.")
    since = forms.DateTimeField(required=False, help_text="From (UTC), e.g. 2026-01-31 or 2026-01-31 08:00")
    until = forms.DateTimeField(required=False, help_text="Until (UTC, exclusive)")

    def __init__(self, *args, bundle_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["bundle"].choices = [(ANY, "any bundle")] + [(name, name) for name in bundle_names]


class RuntimeKeyForm(forms.Form):
    """Create a runtime key."""

    name = forms.CharField(max_length=100)
    environment = forms.ChoiceField()
    bundles = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None checked: every bundle."
    )

    def __init__(self, *args, environment_names: list[str], bundle_names: list[str], default: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environment"].choices = [(name, name) for name in environment_names]
        self.fields["environment"].initial = default
        self.fields["bundles"].choices = [(name, name) for name in bundle_names]


class ModelEndpointForm(forms.Form):
    """Create or change a model endpoint (the name only at creation)."""

    name = forms.CharField(max_length=63)
    base_url = forms.CharField(max_length=500, help_text="API root including its version, e.g. …/v1")
    allowed_models = forms.CharField(max_length=2000, help_text="Model names, separated by commas.")
    api_key_env = forms.CharField(
        max_length=100,
        required=False,
        help_text="NAME of the runtime's environment variable holding the key.",
    )
    timeout_seconds = forms.FloatField(
        initial=10.0, help_text="Seconds; at most the platform's MODEL_TIMEOUT_CAP."
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["name"]

    def clean_allowed_models(self) -> list[str]:
        """Return the comma-separated model names as a list."""
        return [name.strip() for name in self.cleaned_data["allowed_models"].split(",") if name.strip()]
