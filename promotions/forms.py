"""Console forms of promotions: they only parse input; the services decide."""

from django import forms

from promotions.models import PromotionStatus

ANY = ""


class PromotionFilterForm(forms.Form):
    """Filter the promotion requests list (GET)."""

    status = forms.ChoiceField(required=False)
    environment = forms.ChoiceField(required=False)

    def __init__(self, *args, environment_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [(ANY, "any status"), *PromotionStatus.choices]
        self.fields["environment"].choices = [(ANY, "any environment")] + [(n, n) for n in environment_names]


class PromotionRequestForm(forms.Form):
    """Request that a version go live in an environment."""

    bundle = forms.CharField(widget=forms.HiddenInput, max_length=63)
    version = forms.CharField(widget=forms.HiddenInput, max_length=64)
    environment = forms.ChoiceField()
    # Not required here: the service refuses a blank justification with its own message.
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, environment_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environment"].choices = [(name, name) for name in environment_names]


class GateRunForm(forms.Form):
    """Start the gates of a version."""

    bundle = forms.CharField(widget=forms.HiddenInput, max_length=63)
    version = forms.CharField(widget=forms.HiddenInput, max_length=64)


class DecisionForm(forms.Form):
    """A reviewer's or the requester's comment on a decision (the service says whether it is required)."""

    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class RollbackForm(forms.Form):
    """Point an environment back to a version once live there (blank: the one before)."""

    bundle = forms.CharField(widget=forms.HiddenInput, max_length=63)
    to_version = forms.CharField(required=False, max_length=64)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class EnvironmentRulesForm(forms.Form):
    """An environment's promotion rules (admins)."""

    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)
    requires_gates = forms.BooleanField(required=False, label="Requires passing gates")
    required_approvals = forms.IntegerField(min_value=0, max_value=20, label="Required approvals")
    requires_live_in = forms.ChoiceField(required=False, label="Must have been live in")

    def __init__(self, *args, other_environment_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["requires_live_in"].choices = [(ANY, "(no requirement)")] + [
            (name, name) for name in other_environment_names
        ]


class ApproverForm(forms.Form):
    """Grant or revoke a member's approve_promotion on an environment (admins)."""

    username = forms.CharField(max_length=150)
    granted = forms.TypedChoiceField(
        choices=[("1", "grant"), ("0", "revoke")], coerce=lambda value: value == "1", initial="1"
    )
