"""The default environments every tenant starts with (DESIGN §6), shared by the migration and the service."""

DEFAULT_ENVIRONMENTS = (
    {
        "name": "staging",
        "position": 10,
        "description": "Pre-production: versions prove themselves here before current.",
        "requires_gates": True,
        "required_approvals": 0,
        "requires_live_in": None,
        "forbid_author_approval": False,
    },
    {
        "name": "current",
        "position": 20,
        "description": "Production: what the runtime serves by default.",
        "requires_gates": True,
        "required_approvals": 1,
        "requires_live_in": "staging",
        "forbid_author_approval": True,
    },
)
