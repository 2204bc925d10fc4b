"""Webhook receivers are chosen by tenant admins and may be hostile: a delivery never follows a redirect with
its signed body, and never reads a failed answer's body (the record keeps its status only)."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.db import transaction
from django.test import override_settings

from core.egress import HTTP_STATUS
from promotions.actions import PromotionEvent
from promotions.services.outbox import outbox_publish
from promotions.services.webhooks import webhook_create, webhook_deliver

DRIP_SECONDS = 6.0
TIMEOUT_SECONDS = 0.5


class HostileReceiver:
    """A local receiver answering every POST with `status` and `headers`, then dripping its body slowly."""

    def __init__(self, status: int, headers: dict[str, str] | None = None, drip_seconds: float = 0.0):
        self.posts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts += 1
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                deadline = time.monotonic() + drip_seconds
                try:
                    while True:
                        self.wfile.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
                        self.wfile.flush()
                        if time.monotonic() >= deadline:
                            break
                        time.sleep(0.05)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client hung up: what a careful client does

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def deliver_once(team, url: str):
    webhook, _ = webhook_create(actor=team.admin, url=url)
    with transaction.atomic():
        event = outbox_publish(PromotionEvent.GATE_FINISHED, {"run": 1})
    return webhook_deliver(event_id=event.pk, webhook_id=webhook.pk, attempt=1)


@override_settings(CONTRACTOR={**settings.CONTRACTOR, "WEBHOOK_TIMEOUT_SECONDS": TIMEOUT_SECONDS})
def test_a_receiver_dripping_an_endless_error_body_does_not_hold_the_worker(team):
    with HostileReceiver(500, drip_seconds=DRIP_SECONDS) as receiver:
        started = time.monotonic()
        delivery = deliver_once(team, receiver.url)
        elapsed = time.monotonic() - started
    assert receiver.posts == 1
    assert (delivery.succeeded, delivery.status_code) == (False, 500)
    assert delivery.error == HTTP_STATUS.format(status=500) == "HTTP 500"
    assert elapsed < DRIP_SECONDS / 2


def test_a_delivery_does_not_follow_a_redirect_with_its_signed_body(team):
    with HostileReceiver(200) as elsewhere, HostileReceiver(307, {"Location": elsewhere.url}) as receiver:
        delivery = deliver_once(team, receiver.url)
    assert (receiver.posts, elsewhere.posts) == (1, 0)
    assert (delivery.succeeded, delivery.status_code) == (False, 307)
