"""The bare endpoint the bridge's webhook is compared with: FastAPI, served by uvicorn with the
Procfile's web command, that reads the body, verifies the LINE signature and answers ``{}``.

Nothing else: no Redis, no parsing. Its answer time is what this machine, this Python and this
web stack cost for a signed webhook; the bridge's answer time is compared with it.

    uvicorn --factory relaybench.bare_app:create_app   (with bench/ on PYTHONPATH)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


def create_app() -> FastAPI:
    secret = os.environ["LINE_CHANNEL_SECRET"].encode()
    app = FastAPI(title="bare signed webhook", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/line/webhook")
    async def line_webhook(request: Request) -> Response:
        body = await request.body()
        expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, request.headers.get("x-line-signature", "")):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        return JSONResponse({})

    return app
