-- wrk script for scripts/bench-sqlite.sh: POST /auth/challenges/{id}/verify with a wrong
-- TOTP code, round-robin over the challenge ids in the file given after `--`, with the API
-- key from the MFAD_API_KEY environment variable. Every response must be a 2xx
-- (201 with "valid": false); wrk counts anything else under "Non-2xx".
local ids = {}
local i = 0
local headers = {}

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then ids[#ids + 1] = line end
  end
  headers["Authorization"] = "Bearer " .. os.getenv("MFAD_API_KEY")
  headers["Content-Type"] = "application/json"
end

function request()
  i = i % #ids + 1
  return wrk.format("POST", "/auth/challenges/" .. ids[i] .. "/verify", headers, '{"code":"000000"}')
end
