"""Template context: the single-admin (bootstrap) banner for admins."""

from governance.views import single_admin_banner


def governance(request) -> dict:
    """Return the bootstrap banner text ('' when the tenant has two admins or the member is no admin)."""
    return {"single_admin_banner": single_admin_banner(request)}
