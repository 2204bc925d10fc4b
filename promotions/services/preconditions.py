"""What every write of promotions checks first: the actor's capability and the environment's row lock.

Every decision about an environment runs in one transaction that first locks the environment's row
(`SELECT ... FOR UPDATE`), so concurrent approvals, promotions and rollbacks of one environment serialize and
each sees the pointer the previous one left. Each new deployment row also names the row it replaced
(`previous`, unique): even a code path that forgot the lock could not fork the pointer.
"""

from promotions.models import Environment, PromotionRequest
from tenancy.selectors import require_capability


def require(actor, capability: str) -> None:
    """Raise unless `actor` (a user; None is the system) holds `capability` in the current tenant."""
    if actor is not None:
        require_capability(actor, capability)


def locked_environment(environment: Environment) -> Environment:
    """Return `environment` re-read under a row lock that serializes every decision about it."""
    return Environment.objects.select_for_update().get(pk=environment.pk)


def locked_request(request: PromotionRequest) -> tuple[Environment, PromotionRequest]:
    """Lock the request's environment, then return it with the request re-read under the lock."""
    environment = locked_environment(request.environment)
    fresh = PromotionRequest.objects.select_related("version__bundle", "requested_by").get(pk=request.pk)
    fresh.environment = environment
    return environment, fresh
