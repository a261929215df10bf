-- wrk script: each request carries the next token from the file named by $TOKENS
-- (a pool larger than any cache, so every request verifies a signature), optionally as a
-- POST with the body in $BODY_FILE (and the MCP headers $MCP_METHOD / $MCP_NAME when set),
-- accepting JSON and an event stream as MCP clients do (envoy.filters.http.mcp parses only such a POST).
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local body = nil
local body_file = os.getenv("BODY_FILE")
if body_file and #body_file > 0 then
  local f = io.open(body_file, "rb")
  body = f:read("*a")
  f:close()
end
local path = os.getenv("BENCH_PATH") or "/mcp"
local mcp_method = os.getenv("MCP_METHOD")
local mcp_name = os.getenv("MCP_NAME")
local i = 0
request = function()
  i = i + 1
  local headers = { ["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1] }
  if body then
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "application/json, text/event-stream"
    if mcp_method and #mcp_method > 0 then headers["Mcp-Method"] = mcp_method end
    if mcp_name and #mcp_name > 0 then headers["Mcp-Name"] = mcp_name end
    return wrk.format("POST", path, headers, body)
  end
  return wrk.format("GET", path, headers)
end
