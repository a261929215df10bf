"""The official MCP Python SDK (`mcp` on PyPI, pinned by scripts/deps.sh) signing in through
the filter's sign-in façade (issue 19) with its `OAuthClientProvider`: Dynamic Client
Registration + authorization code + PKCE, the browser step done by a real headless Chromium
(`node facade_browser.mjs`: consent page, Approve, the IdP, back to this script's loopback
redirect URI on 127.0.0.1), then initialize, tools/list, tools/call.

    python facade_py.py <mcp-url>

Prints one JSON line: the consent page and the browser's response chain (from
facade_browser.mjs), the callback's parameter names, the tools, the tool result, and every
HTTP exchange (method, URL without query, status). Never a code, token or verifier. Exit
status 1 with {"error": ...} on failure.
"""

import asyncio
import json
import os
import sys
import traceback
from urllib.parse import parse_qs, urlsplit

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

URL = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
exchanges = []
report = {"flow": "facade-py"}


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def record(response: httpx.Response):
    entry = {
        "method": response.request.method,
        "url": str(response.request.url).split("?")[0],
        "status": response.status_code,
    }
    if response.request.method == "POST" and entry["url"].endswith("/token"):
        body = parse_qs(response.request.content.decode("utf-8", "replace"))
        entry["grant_type"] = (body.get("grant_type") or [None])[0]
    exchanges.append(entry)


class Loopback:
    """The native app's redirect URI: http://127.0.0.1:<port>/callback."""

    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.server = None
        self.url = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/callback"

    async def _serve(self, reader, writer):
        try:
            line = (await reader.readline()).decode("latin-1")
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            target = line.split(" ")[1] if line.count(" ") >= 2 else "/"
            parts = urlsplit(target)
            body = b"<!doctype html><title>signed in</title><p>You can close this window.</p>"
            if parts.path == "/callback":
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                await self.queue.put(params)
                status = b"200 OK"
            else:
                status = b"404 Not Found"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: text/html\r\ncontent-length: "
                + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
            )
            await writer.drain()
        finally:
            writer.close()

    def close(self):
        if self.server:
            self.server.close()


async def main():
    loopback = Loopback()
    await loopback.start()

    async def redirect_handler(authorization_url: str) -> None:
        sent = parse_qs(urlsplit(authorization_url).query)
        report["authorization"] = {
            "endpoint": authorization_url.split("?")[0],
            "code_challenge_method": (sent.get("code_challenge_method") or [None])[0],
            "resource": (sent.get("resource") or [None])[0],
            "scope": (sent.get("scope") or [None])[0],
        }
        proc = await asyncio.create_subprocess_exec(
            "node",
            os.path.join(HERE, "facade_browser.mjs"),
            authorization_url,
            loopback.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=HERE,
        )
        out, err = await proc.communicate()
        lines = [l for l in out.decode("utf-8", "replace").splitlines() if l.strip()]
        run = json.loads(lines[-1]) if lines else {"error": err.decode("utf-8", "replace")[-2000:]}
        report["consent"] = run.get("consent")
        report["browser_chain"] = run.get("chain")
        if proc.returncode != 0 or run.get("error") or not run.get("consent"):
            raise RuntimeError(f"browser step failed: {json.dumps(run)[:3000]}")

    async def callback_handler() -> tuple[str, str | None]:
        params = await asyncio.wait_for(loopback.queue.get(), timeout=60)
        report["callback"] = {
            "names": sorted(params),
            "iss": params.get("iss"),
            "error": params.get("error"),
            "error_description": params.get("error_description"),
        }
        if "code" not in params:
            raise RuntimeError(f"no code in the callback: {report['callback']}")
        return params["code"], params.get("state")

    storage = MemoryStorage()
    auth = OAuthClientProvider(
        server_url=URL,
        client_metadata=OAuthClientMetadata(
            client_name="facade-py-driver",
            redirect_uris=[loopback.url],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        timeout=120.0,
    )
    try:
        async with httpx.AsyncClient(
            auth=auth, event_hooks={"response": [record]}, timeout=60.0
        ) as http:
            async with streamable_http_client(URL, http_client=http) as (read, write, get_session_id):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = sorted(t.name for t in (await session.list_tools()).tools)
                    add = await session.call_tool("add", {"a": 20, "b": 22})
                    report.update(
                        {
                            "registered": storage.client_info is not None,
                            "tools": tools,
                            "add": add.content[0].text if add.content else None,
                            "is_error": add.isError,
                            "session_id_set": bool(get_session_id()),
                            "token_scope": getattr(storage.tokens, "scope", None),
                            "had_refresh_token": bool(getattr(storage.tokens, "refresh_token", None)),
                        }
                    )
    finally:
        loopback.close()
    print(json.dumps({**report, "exchanges": exchanges}))


try:
    asyncio.run(main())
except BaseException:  # noqa: BLE001 - report everything to the test
    print(json.dumps({**report, "error": traceback.format_exc(), "exchanges": exchanges}))
    sys.exit(1)
