"""The HTTP client of webhooks: one POST to a receiver a tenant admin chose, bounded in time and size."""

import time

import httpx

from promotions.conf import promotion_setting

USER_AGENT = "CONTRACTOR-Webhooks/1"
# How much of a failed delivery's answer is read, and kept in its delivery record.
WEBHOOK_EXCERPT_BYTES = 1024
WEBHOOK_EXCERPT_CHARS = 200


def webhook_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST `body` to a webhook; return its status and the start of its answer (for the delivery record).

    The receiver is chosen by a tenant admin and may be hostile or broken: redirects are not followed (the
    signed body must not travel on), and at most WEBHOOK_EXCERPT_BYTES of the answer are read, within the
    timeout counted from the start of the call. A 2xx answer's body is not read at all.
    """
    timeout = promotion_setting("WEBHOOK_TIMEOUT_SECONDS")
    deadline = time.monotonic() + timeout
    headers = {**headers, "Accept-Encoding": "identity"}  # the excerpt is read raw: no decompression bomb
    with httpx.stream(
        "POST", url, content=body, headers=headers, timeout=timeout, follow_redirects=False
    ) as response:
        if 200 <= response.status_code < 300:
            return response.status_code, ""
        excerpt = b""
        for chunk in response.iter_raw():
            excerpt += chunk
            if len(excerpt) >= WEBHOOK_EXCERPT_BYTES or time.monotonic() > deadline:
                break
    text = excerpt[:WEBHOOK_EXCERPT_BYTES].decode(response.encoding or "utf-8", errors="replace")
    return response.status_code, text[:WEBHOOK_EXCERPT_CHARS]
