-- zoo.lua - lua5.4 for the zoo: a table of 100000 entries before "ready";
-- then, reading stdin with io.lines (fgets):  K  ->  "answer K 11K 100000"
local h = {}
for i = 0, 99999 do h[i] = 11 * i end
print("ready") io.stdout:flush()
for l in io.lines() do
	local k = tonumber(l)
	print("answer " .. k .. " " .. h[k] .. " " .. (#h + 1)) io.stdout:flush()
end
print("eof")
