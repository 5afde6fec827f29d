//! Limiter checks against governor in interleaved rounds: a steadier measure than criterion's
//! groups on a noisy VM, where one function is timed seconds after the other and the
//! machine's speed drifts in between by more than the differences that matter here.
//!
//! Each case runs `ROUNDS` rounds; a round times `CHECKS` palisade checks, then `CHECKS`
//! governor checks on the same thread, so both sides see the same phase of the machine.
//! Printed per case: the median and best round of each side (ns per check) and the ratio of
//! the medians (palisade / governor), plus the share of rounds palisade won.
//!
//! `cargo bench -p palisade-benches --bench limiter_rounds` (optionally a case-name filter as the first argument)

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Instant;

use palisade::{KeyedLimiterConfig, LimiterConfig, Quota, Runtime};

const ROUNDS: usize = 41;
const CHECKS: u64 = 1_000_000;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

/// Nanoseconds per check over one round of `CHECKS` calls of `check`.
fn round(mut check: impl FnMut(u64) -> bool) -> f64 {
    let start = Instant::now();
    for i in 0..CHECKS {
        black_box(check(i));
    }
    start.elapsed().as_nanos() as f64 / CHECKS as f64
}

/// Nanoseconds per check, wall time, with 2 threads each doing `CHECKS / 2` from a barrier.
fn round_2_threads(check: &(impl Fn() -> bool + Sync)) -> f64 {
    let ready = std::sync::Barrier::new(3);
    let start = std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                ready.wait();
                for _ in 0..CHECKS / 2 {
                    black_box(check());
                }
            });
        }
        ready.wait();
        Instant::now()
    });
    start.elapsed().as_nanos() as f64 / CHECKS as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs one case and prints its line.
fn case(name: &str, filter: &str, mut ours: impl FnMut() -> f64, mut theirs: impl FnMut() -> f64) {
    if !name.contains(filter) {
        return;
    }
    // one round each to warm up
    ours();
    theirs();
    let (mut p, mut g) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        p.push(ours());
        g.push(theirs());
    }
    let won = p.iter().zip(&g).filter(|(p, g)| p < g).count();
    let (best_p, best_g) = (
        p.iter().copied().fold(f64::MAX, f64::min),
        g.iter().copied().fold(f64::MAX, f64::min),
    );
    let (mp, mg) = (median(&mut p), median(&mut g));
    println!(
        "{name:<28} palisade {mp:6.2} ns (best {best_p:6.2})  governor {mg:6.2} ns (best {best_g:6.2})  ratio {:.3}  palisade faster in {won}/{ROUNDS} rounds",
        mp / mg
    );
}

fn main() {
    let filter = support::rounds::filter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let prt = rt.block_on(Runtime::start()).expect("palisade runtime");
    let limiter = |name: &str, config| rt.block_on(prt.limiter(name, config)).expect("limiter");

    // admitted: 10^9/s with a burst of 1000 never runs dry at a check every ~20 ns
    let fast = limiter(
        "rounds-admitted",
        LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000)),
    );
    let gov_fast = governor::RateLimiter::direct(
        governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000)),
    );
    case(
        "direct admitted",
        &filter,
        || round(|_| fast.check().is_ok()),
        || round(|_| gov_fast.check().is_ok()),
    );

    let gov_info = governor::RateLimiter::direct(
        governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000)),
    )
    .with_middleware::<governor::middleware::StateInformationMiddleware>();
    case(
        "direct admitted, remaining",
        &filter,
        || round(|_| fast.check().map(|a| a.remaining).unwrap_or(0) > 0),
        || {
            round(|_| {
                gov_info
                    .check()
                    .map(|s| s.remaining_burst_capacity())
                    .unwrap_or(0)
                    > 0
            })
        },
    );

    let spent = limiter("rounds-denied", LimiterConfig::gcra(Quota::per_hour(1)));
    let gov_spent = governor::RateLimiter::direct(governor::Quota::per_hour(nz(1)));
    assert!(spent.check().is_ok() && spent.check().is_err());
    assert!(gov_spent.check().is_ok() && gov_spent.check().is_err());
    case(
        "direct denied",
        &filter,
        || round(|_| spent.check().is_ok()),
        || round(|_| gov_spent.check().is_ok()),
    );

    let keyed = rt
        .block_on(
            prt.keyed_limiter::<u64>(
                "rounds-keyed",
                KeyedLimiterConfig::new(LimiterConfig::gcra(
                    Quota::per_second(100_000_000).burst(1_000_000),
                ))
                .max_keys(2_000_000),
            ),
        )
        .expect("keyed");
    let gov_keyed = governor::RateLimiter::<u64, _, _>::keyed(
        governor::Quota::per_second(nz(100_000_000)).allow_burst(nz(1_000_000)),
    );
    for k in 0..10_000u64 {
        let _ = keyed.check(&k);
        let _ = gov_keyed.check_key(&k);
    }
    case(
        "keyed, 10^4 keys",
        &filter,
        || round(|i| keyed.check(&(i * 7919 % 10_000)).is_ok()),
        || round(|i| gov_keyed.check_key(&(i * 7919 % 10_000)).is_ok()),
    );

    // The access patterns users have, at 10^4 and 10^6 pre-filled u64 keys, on an
    // always-allow quota (10^9/s, burst 10^9) and a cap above the keys: sequential
    // (0, 1, 2, ...), scattered (a stride of 7919), and a hot key among cold ones (every
    // other check on key 0, the rest sweeping the others).
    for keys in [10_000u64, 1_000_000] {
        let ours = rt
            .block_on(
                prt.keyed_limiter::<u64>(
                    &format!("rounds-keyed-{keys}"),
                    KeyedLimiterConfig::new(LimiterConfig::gcra(
                        Quota::per_second(1_000_000_000).burst(1_000_000_000),
                    ))
                    .max_keys(2_000_000),
                ),
            )
            .expect("keyed");
        let theirs = governor::RateLimiter::<u64, _, _>::keyed(
            governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000_000_000)),
        );
        for k in 0..keys {
            let _ = ours.check(&k);
            let _ = theirs.check_key(&k);
        }
        let sequential = |i: u64| i % keys;
        let strided = |i: u64| i * 7919 % keys;
        let hot = |i: u64| {
            if i.is_multiple_of(2) {
                0
            } else {
                1 + (i / 2) % (keys - 1)
            }
        };
        for (pattern, key) in [
            ("sequential", &sequential as &dyn Fn(u64) -> u64),
            ("strided", &strided),
            ("hot key", &hot),
        ] {
            case(
                &format!("keyed {keys} {pattern}"),
                &filter,
                || round(|i| ours.check(&key(i)).is_ok()),
                || round(|i| theirs.check_key(&key(i)).is_ok()),
            );
        }
    }

    let shared = limiter(
        "rounds-2-threads",
        LimiterConfig::gcra(Quota::per_second(100_000_000).burst(1_000_000)),
    );
    let gov_shared = governor::RateLimiter::direct(
        governor::Quota::per_second(nz(100_000_000)).allow_burst(nz(1_000_000)),
    );
    case(
        "2 threads, one limiter",
        &filter,
        || round_2_threads(&|| shared.check().is_ok()),
        || round_2_threads(&|| gov_shared.check().is_ok()),
    );

    rt.block_on(prt.shutdown());
}
