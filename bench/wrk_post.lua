-- wrk script: POST the same body on every request (used by bench/local_throughput.py).
--
--   WRK_BODY_FILE=img.png [WRK_CONTENT_TYPE=image/png] [WRK_HEADERS="x-api-key: k"] \
--     wrk -t1 -c32 -d10s --latency -s bench/wrk_post.lua http://127.0.0.1:8080/invocations
--
-- WRK_BODY_FILE: the file whose bytes are the request body (required).
-- WRK_CONTENT_TYPE: the body's Content-Type (default: image/png).
-- WRK_HEADERS: extra headers, one "Name: value" per line (optional).
-- wrk adds Host and Content-Length itself.

local path = os.getenv("WRK_BODY_FILE")
if path == nil or path == "" then
  error("WRK_BODY_FILE is not set")
end
local file = assert(io.open(path, "rb"))
wrk.body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "image/png"
for line in (os.getenv("WRK_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^%s*([^:]-)%s*:%s*(.-)%s*$")
  if name == nil or name == "" then
    error("WRK_HEADERS: not a 'Name: value' line: " .. line)
  end
  wrk.headers[name] = value
end
