"""The official MCP Python SDK (`mcp` on PyPI) as an unmodified client of the MCP server
behind Envoy and the filter, with its OAuth client_credentials provider. Driven by
tests/mcp_clients.rs:

    python py_client.py <mcp-url> <issuer>

Prints one JSON line: every HTTP exchange (method, URL, status), the tools, the result of
tools/call add, and the session id. Exit status 1 with {"error": ...} on failure.
"""

import asyncio
import json
import sys
import traceback

import httpx
from mcp import ClientSession
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client

URL, ISSUER = sys.argv[1], sys.argv[2]
exchanges = []


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
    exchanges.append(
        {
            "method": response.request.method,
            "url": str(response.request.url).split("?")[0],
            "status": response.status_code,
        }
    )


async def main():
    auth = ClientCredentialsOAuthProvider(
        server_url=URL,
        storage=MemoryStorage(),
        client_id="demo-client",
        client_secret="demo-secret",
        issuer=ISSUER,
    )
    async with httpx.AsyncClient(
        auth=auth, event_hooks={"response": [record]}, timeout=30.0
    ) as http:
        async with streamable_http_client(URL, http_client=http) as (read, write, get_session_id):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = sorted(t.name for t in (await session.list_tools()).tools)
                add = await session.call_tool("add", {"a": 20, "b": 22})
                out = {
                    "tools": tools,
                    "add": add.content[0].text if add.content else None,
                    "is_error": add.isError,
                    "session_id": get_session_id(),
                }
    print(json.dumps({**out, "exchanges": exchanges}))


try:
    asyncio.run(main())
except BaseException:  # noqa: BLE001 - report everything to the test
    print(json.dumps({"error": traceback.format_exc(), "exchanges": exchanges}))
    sys.exit(1)
