//! The Lua scripts: one atomic script per algorithm, each reading the **server's** clock
//! (`TIME`, so client clocks may drift) and touching exactly one key (Redis Cluster safe).
//!
//! Every script takes `KEYS[1]` (the quota's state) and `ARGV`: the algorithm's period in
//! microseconds (emission interval, or window), its capacity (burst, bucket or window
//! limit), `1` to take *up to* each cost (a lease) or `0` for all or nothing, then one or
//! more costs. The costs are decided in order, as separate checks arriving together (strict
//! mode sends the checks that queued up during the previous round trip in one call), and
//! the state is written once. The answer is `{granted, remaining, retry_after_us,
//! reset_after_us}` per cost; every write sets an expiry so a key vanishes once it is back
//! to a full quota.
//!
//! Times are microseconds held in Lua doubles (exact up to 2^53 µs, about 285 years), so the
//! backend's resolution is one microsecond. State written by something else (a wrong type,
//! a non-number) is answered with an error reply, never misread.

use std::sync::LazyLock;

use redis::Script;

use crate::limiter::config::LimiterKind;

const PRELUDE: &str = r"
local period = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local partial = ARGV[3] == '1'
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local out = {}
local granted = false
local function bad(what)
  return redis.error_reply('palisade: ' .. KEYS[1] .. ' holds ' .. what)
end
-- how much of a cost to take when `fits` units fit: all of it, or up to it for a lease
local function amount(cost, fits)
  if fits < 0 then fits = 0 end
  if partial then return math.min(cost, fits), fits end
  if cost <= fits then return cost, fits end
  return 0, fits
end
local function answer(take, remaining, retry_after, reset_after)
  out[#out + 1] = take
  out[#out + 1] = remaining
  out[#out + 1] = math.max(0, math.ceil(retry_after))
  out[#out + 1] = math.max(0, math.ceil(reset_after))
  if take > 0 then granted = true end
end
";

/// GCRA (also leaky bucket): state is the theoretical arrival time, in µs.
const GCRA: &str = r"
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = tonumber(stored)
  if not tat then return bad('a value that is not a GCRA time') end
  if tat < now then tat = now end
end
local limit = now + period * capacity
for i = 4, #ARGV do
  local cost = tonumber(ARGV[i])
  local take, fits = amount(cost, math.floor((limit - tat) / period + 1e-6))
  if take == 0 then
    local need = partial and 1 or cost
    answer(0, fits, tat + need * period - limit, tat - now)
  else
    tat = tat + take * period
    answer(take, math.floor((limit - tat) / period + 1e-6), 0, tat - now)
  end
end
if granted then
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return out
";

/// Token bucket: a hash of `tokens` (fractional) and `ts` (µs of the last refill).
const TOKEN_BUCKET: &str = r"
local tokens = capacity
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
if state[1] then
  tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if not tokens or not ts then return bad('a token bucket that does not parse') end
  if now > ts then tokens = math.min(capacity, tokens + (now - ts) / period) end
end
for i = 4, #ARGV do
  local cost = tonumber(ARGV[i])
  local take, fits = amount(cost, math.floor(tokens + 1e-6))
  if take == 0 then
    local need = partial and 1 or cost
    answer(0, fits, (need - tokens) * period, (capacity - tokens) * period)
  else
    tokens = tokens - take
    answer(take, math.floor(tokens + 1e-6), 0, (capacity - tokens) * period)
  end
end
if granted then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.0f', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) * period / 1000) + 1)
end
return out
";

/// Fixed window: a hash of `w` (window index) and `c` (its count).
const FIXED_WINDOW: &str = r"
local index = math.floor(now / period)
local count = 0
local state = redis.call('HMGET', KEYS[1], 'w', 'c')
if state[1] then
  local w = tonumber(state[1])
  local c = tonumber(state[2])
  if not w or not c then return bad('a fixed window that does not parse') end
  if w == index then count = c end
end
local ends = (index + 1) * period - now
for i = 4, #ARGV do
  local take, fits = amount(tonumber(ARGV[i]), capacity - count)
  if take == 0 then
    answer(0, fits, ends, ends)
  else
    count = count + take
    answer(take, fits - take, 0, ends)
  end
end
if granted then
  redis.call('HSET', KEYS[1], 'w', string.format('%.0f', index), 'c', count)
  redis.call('PEXPIRE', KEYS[1], math.ceil(ends / 1000) + 1)
end
return out
";

/// Sliding window (weighted two-counter estimate): a hash of `w` (current window index),
/// `p` (previous window's count) and `c` (current window's count).
const SLIDING_WINDOW: &str = r"
local index = math.floor(now / period)
local prev, cur = 0, 0
local state = redis.call('HMGET', KEYS[1], 'w', 'p', 'c')
if state[1] then
  local w = tonumber(state[1])
  local p = tonumber(state[2])
  local c = tonumber(state[3])
  if not w or not p or not c then return bad('a sliding window that does not parse') end
  if w == index then prev, cur = p, c elseif w == index - 1 then prev = c end
end
local elapsed = now - index * period
local ends = (index + 1) * period - now
for i = 4, #ARGV do
  local cost = tonumber(ARGV[i])
  local used = prev * (period - elapsed) / period + cur
  local take, fits = amount(cost, math.min(math.floor(capacity - used + 1e-6), capacity - cur))
  if take == 0 then
    local need = partial and 1 or cost
    local wait = 1
    if cur + need > capacity then
      -- the next window, then until this window's count (as the previous) weighs little enough
      wait = ends + math.max(0, period * (1 - (capacity - need) / math.max(cur, 1)))
    elseif prev > 0 then
      wait = period - (capacity - cur - need) * period / prev - elapsed
    end
    local reset = 0
    if cur > 0 then reset = ends + period elseif prev > 0 then reset = ends end
    answer(0, fits, math.max(1, wait), reset)
  else
    cur = cur + take
    answer(take, fits - take, 0, ends + period)
  end
end
if granted then
  redis.call('HSET', KEYS[1], 'w', string.format('%.0f', index), 'p', prev, 'c', cur)
  redis.call('PEXPIRE', KEYS[1], math.ceil((ends + period) / 1000) + 1)
end
return out
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

static GCRA_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(GCRA));
static TOKEN_BUCKET_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(TOKEN_BUCKET));
static FIXED_WINDOW_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(FIXED_WINDOW));
static SLIDING_WINDOW_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(SLIDING_WINDOW));

/// The script that runs `kind`.
pub(crate) fn for_kind(kind: &LimiterKind) -> &'static Script {
    match kind {
        LimiterKind::Gcra(_) | LimiterKind::LeakyBucket(_) => &GCRA_SCRIPT,
        LimiterKind::TokenBucket { .. } => &TOKEN_BUCKET_SCRIPT,
        LimiterKind::FixedWindow { .. } => &FIXED_WINDOW_SCRIPT,
        LimiterKind::SlidingWindow { .. } => &SLIDING_WINDOW_SCRIPT,
    }
}

/// A script's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Units taken (0: denied).
    pub(crate) granted: u32,
    pub(crate) remaining: u32,
    pub(crate) retry_after_us: u64,
    pub(crate) reset_after_us: u64,
}

impl Reply {
    /// Reads a script's answer for `checks` costs, refusing any other shape (a script of
    /// another version, a proxy that rewrote it).
    pub(crate) fn parse_all(v: &[i64], checks: usize) -> Result<Vec<Self>, String> {
        if v.len() != 4 * checks {
            return Err(format!(
                "a limiter script answered {} values for {checks} checks instead of {}",
                v.len(),
                4 * checks
            ));
        }
        v.chunks_exact(4).map(Self::parse).collect()
    }

    fn parse(v: &[i64]) -> Result<Self, String> {
        let u = |x: i64, what: &str| {
            u64::try_from(x).map_err(|_| format!("a limiter script answered a negative {what}"))
        };
        Ok(Self {
            granted: u32::try_from(u(v[0], "grant")?).unwrap_or(u32::MAX),
            remaining: u32::try_from(u(v[1], "remaining")?).unwrap_or(u32::MAX),
            retry_after_us: u(v[2], "retry_after")?,
            reset_after_us: u(v[3], "reset_after")?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replies_of_another_shape_are_refused() {
        assert!(Reply::parse_all(&[1, 2, 3], 1).is_err());
        assert!(Reply::parse_all(&[1, 2, 3, 4], 2).is_err());
        assert!(Reply::parse_all(&[1, -2, 3, 4], 1).is_err());
        let two = Reply::parse_all(&[1, 2, 3, 4, 0, 1, 9, 8], 2).unwrap();
        assert_eq!(
            two[0],
            Reply {
                granted: 1,
                remaining: 2,
                retry_after_us: 3,
                reset_after_us: 4
            }
        );
        assert_eq!(two[1].granted, 0);
        assert_eq!(two[1].retry_after_us, 9);
    }
}
