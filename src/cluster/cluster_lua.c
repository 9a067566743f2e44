/*
 * cluster_lua: see cluster_lua.h. Redis runs Lua 5.1: numbers are doubles
 * (exact to 2^53, so milliseconds since 1970 are), %d formats a long.
 */
#include "cluster/cluster_lua.h"

const char cluster_lua_fail[] =
    "local now = tonumber(ARGV[1])\n"
    "local hl = tonumber(ARGV[2])\n"
    "local function bump(key, thr)\n"
    "  local v = redis.call('HMGET', key, 'f', 't')\n"
    "  local f = tonumber(v[1]) or 0\n"
    "  local t = tonumber(v[2]) or now\n"
    "  if now > t then f = f * math.pow(2, -(now - t) / hl) end\n"
    "  f = f + 1\n"
    "  local hit = thr > 0 and f + 0.5 >= thr\n"
    "  local keep = f\n"
    "  if hit then keep = 0 end\n"
    "  redis.call('HSET', key, 'f', string.format('%.6f', keep), 't', now)\n"
    "  redis.call('PEXPIRE', key, hl * 16)\n"
    "  return f, hit\n"
    "end\n"
    "local function ban(field, reason)\n"
    "  local off, untl = 0, 0\n"
    "  local old = redis.call('HGET', KEYS[4], field)\n"
    "  if old then\n"
    "    local u, l, o = string.match(old, '^(%d+) (%d+) (%d+)')\n"
    "    if u and now - tonumber(l) <= tonumber(ARGV[10]) then\n"
    "      off = tonumber(o); untl = tonumber(u)\n"
    "    end\n"
    "  end\n"
    "  off = off + 1\n"
    "  local s, max = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
    "  if s < 1 then s = 1 end\n"
    "  for i = 2, off do if s < max then s = s * 2 end end\n"
    "  if s > max then s = max end\n"
    "  local u = now + s * 1000\n"
    "  if untl > u then u = untl end\n"
    "  local rec = string.format('%d %d %d %s', u, now, off, reason)\n"
    "  redis.call('HSET', KEYS[4], field, rec)\n"
    "  redis.call('PUBLISH', ARGV[11], 'ban ' .. field .. ' ' .. rec)\n"
    "end\n"
    "local fi, fn, fa = 0, 0, 0\n"
    "if ARGV[12] ~= '-' then\n"
    "  local hit\n"
    "  fa, hit = bump(KEYS[3], 0)\n"
    "  local thr = tonumber(ARGV[5])\n"
    "  if thr > 0 and fa + 0.5 >= thr then\n"
    "    redis.call('PUBLISH', ARGV[11], string.format('acct %s %.6f %d', ARGV[13], fa, now))\n"
    "  end\n"
    "end\n"
    "if ARGV[12] ~= 'a' then\n"
    "  local hi, hn\n"
    "  fi, hi = bump(KEYS[1], tonumber(ARGV[3]))\n"
    "  fn, hn = bump(KEYS[2], tonumber(ARGV[4]))\n"
    "  if hn then ban(ARGV[7], 'auth_failures_per_net') end\n"
    "  if hi then ban(ARGV[6], 'auth_failures_per_ip') end\n"
    "end\n"
    "return {tostring(fi), tostring(fn), tostring(fa)}\n";

const char cluster_lua_ban_put[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[3], 'ban ' .. ARGV[1] .. ' ' .. ARGV[2])\n"
    "return 1\n";

const char cluster_lua_ban_add[] =
    "local now = tonumber(ARGV[2])\n"
    "local off = 0\n"
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if old then\n"
    "  local l, o = string.match(old, '^%d+ (%d+) (%d+)')\n"
    "  if l and now - tonumber(l) <= tonumber(ARGV[4]) then off = tonumber(o) end\n"
    "end\n"
    "local rec = string.format('%d %d %d manual', now + tonumber(ARGV[3]) * 1000, now, off + 1)\n"
    "redis.call('HSET', KEYS[1], ARGV[1], rec)\n"
    "redis.call('PUBLISH', ARGV[5], 'ban ' .. ARGV[1] .. ' ' .. rec)\n"
    "return rec\n";

const char cluster_lua_unban[] = "local n = redis.call('HDEL', KEYS[1], ARGV[1])\n"
                                 "redis.call('PUBLISH', ARGV[2], 'unban ' .. ARGV[1])\n"
                                 "return n\n";

/* A record of the same host and configuration with another id is this
 * node's previous instance (restarted within the TTL), not a clash. */
const char cluster_lua_node[] = "local cur = redis.call('GET', KEYS[1])\n"
                                "local function where(r) return string.match(r, ' (.+)$') end\n"
                                "if cur and cur ~= ARGV[1] and\n"
                                "   (where(cur) == nil or where(cur) ~= where(ARGV[1])) then\n"
                                "  redis.call('SADD', KEYS[2], ARGV[3])\n"
                                "  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]) * 4)\n"
                                "end\n"
                                "redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))\n"
                                "return cur or ''\n";

const char cluster_lua_proxy_refused[] = "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or\n"
                                         "   redis.call('HLEN', KEYS[1]) < tonumber(ARGV[4]) then\n"
                                         "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
                                         "end\n"
                                         "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))\n"
                                         "return 1\n";

const char cluster_lua_good[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[3], 'good ' .. ARGV[1] .. ' ' .. ARGV[2])\n"
    "return 1\n";

/* The messages of the 24 hours ending with hour h; older hours removed. */
#define CLUSTER_LUA_QUOTA_SUM                                                                      \
	"local function qsum(key, h)\n"                                                            \
	"  local n, all = 0, redis.call('HGETALL', key)\n"                                         \
	"  for i = 1, #all, 2 do\n"                                                                \
	"    local k = tonumber(all[i])\n"                                                         \
	"    if k and k <= h and h - k < 24 then n = n + (tonumber(all[i + 1]) or 0)\n"            \
	"    elseif not k or h - k >= 24 then redis.call('HDEL', key, all[i]) end\n"               \
	"  end\n"                                                                                  \
	"  return n\n"                                                                             \
	"end\n"

const char cluster_lua_quota_get[] = CLUSTER_LUA_QUOTA_SUM
    "return {qsum(KEYS[1], tonumber(ARGV[1])), redis.call('SISMEMBER', KEYS[2], ARGV[2])}\n";

const char cluster_lua_quota_count[] =
    CLUSTER_LUA_QUOTA_SUM "redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n"
                          "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))\n"
                          "return qsum(KEYS[1], tonumber(ARGV[1]))\n";

const char cluster_lua_quota_hold[] = "local n = redis.call('SADD', KEYS[1], ARGV[1])\n"
                                      "redis.call('PUBLISH', ARGV[2], 'hold ' .. ARGV[1])\n"
                                      "return n\n";

const char cluster_lua_quota_unlock[] = "local n = redis.call('SREM', KEYS[1], ARGV[1])\n"
                                        "redis.call('DEL', KEYS[2], KEYS[3])\n"
                                        "redis.call('PUBLISH', ARGV[2], 'unlock ' .. ARGV[1])\n"
                                        "return n\n";

/* Recipients scored by the hour of their last use; those of hours out of
 * the day ending now dropped first. A recipient counted already is used
 * again; a new one is refused at the limit (and when held), else added. */
const char cluster_lua_quota_rcpt[] =
    "local h = tonumber(ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', h - 24)\n"
    "local held = redis.call('SISMEMBER', KEYS[2], ARGV[5])\n"
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "if redis.call('ZSCORE', KEYS[1], ARGV[2]) then\n"
    "  redis.call('ZADD', KEYS[1], h, ARGV[2])\n"
    "  return {0, n, held}\n"
    "end\n"
    "local lim = tonumber(ARGV[3])\n"
    "if held == 1 or (lim > 0 and n >= lim) then return {1, n, held} end\n"
    "redis.call('ZADD', KEYS[1], h, ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))\n"
    "return {0, n + 1, held}\n";

const char cluster_lua_ticket[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2]))\n"
    "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}\n";
