-- wrk script: one fixed request (bench/facade.py builds it): the method in $REQ_METHOD,
-- the headers in $REQ_HEADERS ("name: value" lines), the body in the file $BODY_FILE.
wrk.method = os.getenv("REQ_METHOD") or "GET"
for line in (os.getenv("REQ_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end
local body_file = os.getenv("BODY_FILE")
if body_file and #body_file > 0 then
  local f = io.open(body_file, "rb")
  wrk.body = f:read("*a")
  f:close()
end
