"""Webhooks under the production egress default: admins cannot aim them at private or metadata addresses,
a stored one is refused again at delivery without a connection, and no delivery record shows what a receiver
answered beyond its status."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from core.egress import EGRESS_REFUSED, HTTP_STATUS, url_refusal
from promotions.actions import PromotionEvent
from promotions.exceptions import WEBHOOK_URL_REFUSED, InvalidWebhook
from promotions.models import Webhook
from promotions.services.outbox import outbox_publish
from promotions.services.webhooks import EGRESS_REFUSED_CODE, webhook_create, webhook_deliver
from tests.conftest import token_client
from tests.core.test_egress_connections import LOOPBACK_SPELLINGS, accepted_count, listener
from tests.promotions.promotion_factories import error_code

PRODUCTION_EGRESS = override_settings(CONTRACTOR={**settings.CONTRACTOR, "EGRESS_ALLOW": []})
INTERNAL_SECRET = "redis_version:7.2.4 role:master connected_slaves:0"


def publish_event():
    with transaction.atomic():
        return outbox_publish(PromotionEvent.GATE_FINISHED, {"run": 1})


@PRODUCTION_EGRESS
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:5432/",
        "http://[::1]:6379/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://good@127.0.0.1/",
        "http://metadata.google.internal/",
        "http://hooks.localhost/",
        "http://10.0.0.8/hook",
    ],
)
def test_an_admin_cannot_create_a_webhook_to_a_refused_address(team, url):
    with pytest.raises(InvalidWebhook) as raised:
        webhook_create(actor=team.admin, url=url)
    refusal = url_refusal(url)
    assert refusal is not None and refusal.startswith(EGRESS_REFUSED)
    assert raised.value.message == WEBHOOK_URL_REFUSED.format(reason=refusal)
    assert raised.value.details == [{"field": "url", "code": EGRESS_REFUSED_CODE, "message": refusal}]
    assert not Webhook.objects.exists()


@PRODUCTION_EGRESS
def test_the_api_names_the_refused_field_and_why(team, tenant_a):
    admin = token_client(tenant_a, team.admin)
    refused = admin.post("/api/v1/webhooks/", {"url": "http://127.0.0.1:5432/"}, format="json")
    assert (refused.status_code, error_code(refused)) == (400, "invalid_webhook")
    assert refused.json()["error"]["details"] == [
        {"field": "url", "code": EGRESS_REFUSED_CODE, "message": url_refusal("http://127.0.0.1:5432/")}
    ]
    allowed = admin.post("/api/v1/webhooks/", {"url": "https://hooks.example/x"}, format="json")
    assert allowed.status_code == 201


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_a_stored_webhook_to_loopback_is_refused_at_delivery_before_connecting(team, host):
    with listener() as sock:
        # A row saved before the policy existed (webhook_create refuses such a URL now).
        url = f"http://{host}:{sock.getsockname()[1]}/hook"
        webhook = Webhook.objects.create(url=url, secret="whsec_x", events=[], created_by=team.admin)
        event = publish_event()
        with PRODUCTION_EGRESS:
            delivery = webhook_deliver(event_id=event.pk, webhook_id=webhook.pk, attempt=1)
        assert accepted_count(sock) == 0
    assert (delivery.succeeded, delivery.status_code, delivery.error) == (False, None, EGRESS_REFUSED)


class InternalService:
    """A loopback service answering every POST with `status` and a body that must not leak."""

    def __init__(self, status: int):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                body = INTERNAL_SECRET.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_port}/"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [404, 500, 401])
def test_a_delivery_records_the_status_never_the_answer(team, status):
    with InternalService(status) as url:
        webhook, _ = webhook_create(actor=team.admin, url=url)
        delivery = webhook_deliver(event_id=publish_event().pk, webhook_id=webhook.pk, attempt=1)
    assert (delivery.succeeded, delivery.status_code) == (False, status)
    assert delivery.error == HTTP_STATUS.format(status=status)
    assert INTERNAL_SECRET not in delivery.error
