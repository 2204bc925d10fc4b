"""The HTTP client of webhooks: one POST to a receiver a tenant admin chose, through the egress policy."""

from core.egress import call_deadline, egress_client
from promotions.conf import promotion_setting

USER_AGENT = "CONTRACTOR-Webhooks/1"


def webhook_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` to a webhook and return the HTTP status of its answer; its body is never read.

    The receiver is chosen by a tenant admin and may be hostile, broken or an internal service: every
    connection passes the deployment's egress policy (raising ``core.egress.EgressRefused``), redirects are
    not followed (the signed body must not travel on), and the answer is judged by its status alone, so that
    a delivery record cannot show what an internal service says. The whole POST takes at most the timeout
    (`call_deadline`), however slowly the receiver answers. Transport failures raise httpx errors.
    """
    timeout = promotion_setting("WEBHOOK_TIMEOUT_SECONDS")
    with (
        call_deadline(timeout),
        egress_client(timeout=timeout) as client,
        client.stream("POST", url, content=body, headers=headers) as response,
    ):
        return response.status_code
