#!/usr/bin/env python3
"""MCP authorization discovery, end to end, driven by the official MCP Python SDK's OAuth
client (`mcp.client.auth.OAuthClientProvider`) against the registry and a small OAuth
authorization server that this script runs on loopback.

    python tests/python/oauth_check.py BASE_URL --issuer http://127.0.0.1:PORT --secret SECRET

The registry at BASE_URL must run with MCP_AUTHORIZATION_SERVERS=<issuer>,
JWT_SECRET=<secret>, JWT_ISSUER=<issuer> and JWT_AUDIENCE=BASE_URL/mcp. The script serves
the authorization server at <issuer> (RFC 8414 metadata, RFC 7591 dynamic registration,
an /authorize that approves at once, and a /token that checks PKCE and issues an HS256
JWT for the `resource` the client asked for) and expects the SDK to go:
401 with `resource_metadata` -> protected resource metadata -> authorization server
metadata -> /register -> /authorize -> /token -> connected; then it lists, finds and calls.
Works with mcp 1.x (httpx) and 2.x (httpx2). Exits 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import anyio
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

try:  # mcp 2.x
    import httpx2 as httpx
    from mcp.shared.auth import AuthorizationCodeResult
except ImportError:  # mcp 1.x
    import httpx

    AuthorizationCodeResult = None

SCOPE = "tools:call"
REDIRECT_URI = "http://127.0.0.1:1/callback"  # never contacted: the check reads the redirect


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_jwt(claims: dict[str, Any], secret: str) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


class AuthorizationServer:
    """Just enough of an OAuth 2.1 authorization server for one MCP client."""

    def __init__(self, issuer: str, secret: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.secret = secret
        self.steps: list[str] = []
        self.clients: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.audiences: list[str] = []
        port = urlparse(self.issuer).port
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())

    def __enter__(self) -> AuthorizationServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "registration_endpoint": f"{self.issuer}/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": [SCOPE],
        }

    def register(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not request.get("redirect_uris"):
            return 400, {"error": "invalid_redirect_uri"}
        method = request.get("token_endpoint_auth_method") or "client_secret_basic"  # RFC 7591's default
        client = dict(request, client_id=secrets.token_hex(8), client_id_issued_at=int(time.time()),
                      token_endpoint_auth_method=method)
        if method != "none":
            client["client_secret"] = secrets.token_hex(16)
        self.clients[client["client_id"]] = client
        return 201, client

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, Any], str | None]:
        client = self.clients.get(query.get("client_id", ""))
        if client is None or query.get("redirect_uri") not in client["redirect_uris"]:
            return 400, {"error": "invalid_client"}, None
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {"error": "invalid_request", "error_description": "PKCE S256 required"}, None
        code = secrets.token_hex(16)
        self.codes[code] = dict(query)
        redirect = {"code": code}
        if "state" in query:
            redirect["state"] = query["state"]
        return 302, {}, f"{query['redirect_uri']}?{urlencode(redirect)}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        client = self.clients[grant["client_id"]]
        presented = form.get("client_secret")
        if authorization.startswith("Basic "):  # client_secret_basic
            presented = base64.b64decode(authorization[6:]).decode().partition(":")[2]
        if "client_secret" in client and presented != client["client_secret"]:
            return 401, {"error": "invalid_client"}
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["code_challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"}
        resource = form.get("resource") or grant.get("resource")
        if not resource:
            return 400, {"error": "invalid_target", "error_description": "no resource (RFC 8707)"}
        self.audiences.append(resource)
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": grant["client_id"], "aud": resource,
                  "scope": grant.get("scope") or SCOPE, "iat": now, "exp": now + 600}
        return 200, {"access_token": hs256_jwt(claims, self.secret), "token_type": "Bearer",
                     "expires_in": 600, "scope": claims["scope"]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def reply(self, status: int, body: dict[str, Any], location: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                if url.path.startswith("/.well-known/oauth-authorization-server"):
                    server.steps.append("authorization server metadata")
                    self.reply(200, server.metadata())
                elif url.path == "/authorize":
                    server.steps.append("authorize")
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    status, body, location = server.authorize(query)
                    self.reply(status, body, location)
                else:
                    self.reply(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if self.path == "/register":
                    server.steps.append("register")
                    self.reply(*server.register(json.loads(raw or "{}")))
                elif self.path == "/token":
                    server.steps.append("token")
                    form = {k: v[0] for k, v in parse_qs(raw).items()}
                    self.reply(*server.token(form, self.headers.get("Authorization", "")))
                else:
                    self.reply(404, {"error": "not_found"})

        return Handler


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """The user's browser: opens the authorization URL and hands the redirect's code back."""

    def __init__(self) -> None:
        self.callback: dict[str, str] = {}

    async def open(self, authorization_url: str) -> None:
        async with httpx.AsyncClient() as client:
            answer = await client.get(authorization_url)
        if answer.status_code != 302:
            raise RuntimeError(f"/authorize answered {answer.status_code}: {answer.text}")
        location = urlparse(answer.headers["location"])
        self.callback = {k: v[0] for k, v in parse_qs(location.query).items()}

    async def redirected(self) -> Any:
        code, state = self.callback["code"], self.callback.get("state")
        if AuthorizationCodeResult is not None:
            return AuthorizationCodeResult(code=code, state=state)
        return code, state


async def connect(session: ClientSession) -> None:
    if hasattr(session, "discover"):  # 2.x: the SDK's own auto policy (discover, then initialize)
        from mcp.client._probe import negotiate_auto

        await negotiate_auto(session)
    else:
        await session.initialize()


def wire(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


async def run(url: str, issuer: str, secret: str) -> int:
    failures: list[str] = []

    def check(condition: bool, message: str) -> None:
        print(f"    {'ok' if condition else 'FAIL'}: {message}", flush=True)
        if not condition:
            failures.append(message)

    # Unauthenticated, the registry points at its metadata, which names the issuer.
    async with httpx.AsyncClient() as plain:
        refused = await plain.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                   headers={"Accept": "application/json, text/event-stream"})
        challenge = refused.headers.get("www-authenticate", "")
        check(refused.status_code == 401 and "resource_metadata=" in challenge,
              f"401 without a token, WWW-Authenticate: {challenge}")
        metadata_url = challenge.split('resource_metadata="', 1)[-1].split('"', 1)[0]
        metadata = (await plain.get(metadata_url)).json()
        check(metadata.get("authorization_servers") == [issuer] and metadata.get("resource") == url,
              f"protected resource metadata: {json.dumps(metadata)}")

    browser = Browser()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="oauth-check", redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"], response_types=["code"],
        ),
        storage=MemoryStorage(),
        redirect_handler=browser.open,
        callback_handler=browser.redirected,
    )
    with AuthorizationServer(issuer, secret) as auth_server:
        async with httpx.AsyncClient(auth=provider, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    with anyio.fail_after(30):
                        await connect(session)
                        print(f"    connected; authorization server saw: {', '.join(auth_server.steps)}")
                        check(auth_server.steps == ["authorization server metadata", "register",
                                                    "authorize", "token"],
                              "the SDK discovered, registered, authorized and got a token, in order")
                        check(auth_server.audiences == [url], f"the token is for {auth_server.audiences}")
                        names = sorted(t.name for t in (await session.list_tools()).tools)
                        check({"find_tool", "call_tool", "list_tools"} <= set(names), f"tools/list: {names}")
                        found = wire(await session.call_tool("find_tool", {"query": "multiply two numbers"}))
                        hits = [t["name"] for t in found["structuredContent"]["tools"]]
                        check(hits[:1] == ["calculator"], f"find_tool: {hits[:3]}")
                        called = wire(await session.call_tool(
                            "call_tool", {"name": "calculator", "arguments": {"expression": "6*7"}}))
                        check(called["structuredContent"] == {"result": 42},
                              f"call_tool calculator 6*7: {called['structuredContent']}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--issuer", required=True, help="the authorization server's URL, served here")
    parser.add_argument("--secret", required=True, help="the registry's JWT_SECRET")
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    url = base if base.endswith("/mcp") else base + "/mcp"
    import importlib.metadata

    print(f"OAuth check: mcp {importlib.metadata.version('mcp')} OAuthClientProvider, {url}", flush=True)
    try:
        status = anyio.run(run, url, args.issuer.rstrip("/"), args.secret)
    except Exception as exc:  # noqa: BLE001 - one line for the log, not a traceback
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        print(f"    FAIL: {type(exc).__name__}: {exc}")
        status = 1
    print(f"OAuth check: {'PASS' if status == 0 else 'FAIL'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
