//! Longest-prefix match at 1M prefixes: roamer's `lpm` tables against two peer crates,
//! `ip_network_table-deps-treebitmap` (a tree bitmap with 4-bit strides) and `prefix-trie` (a
//! binary trie), on the same data in the same run.
//!
//! Data: 1M IPv4 and 1M IPv6 prefixes and 2^20 lookup addresses inside them, made by
//! `prefix_data` (seeded; lengths as in the global table, IPv6 inside 2000::/3).
//!
//! Measured: random lookup (criterion, median ns per lookup; roamer also through its burst
//! API, 64 addresses per call, which the peers lack), churn (criterion: one insert of a
//! new prefix plus one remove of an older one per iteration, at ~1.06M prefixes), bulk insert of
//! 1M new prefixes into the 1M table and their removal (wall clock, once), and memory (roamer's
//! `memory_bytes()`, treebitmap's `mem_usage()`, prefix-trie's `mem_size()`). A table comparing
//! roamer with each peer, ratios included, is printed at the end.
//!
//! Times are this thread's CPU time (see [`thread_cpu`]), the same clock for every
//! implementation; criterion's own lines report the same numbers.
//!
//! Run: `cargo bench -p roamer-forwarding --bench lpm -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)] // bench code: a failed unwrap is a failed bench

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use ip_network_table_deps_treebitmap::IpLookupTable;
use ip_network_table_deps_treebitmap::address::Address;
use prefix_trie::PrefixMap;
use roamer_forwarding::lpm::{LpmKey, LpmTable};

mod prefix_data;
use prefix_data::{Data, Sizes, data_v4, data_v6};

const PREFIXES: usize = 1 << 20;
const LOOKUPS: usize = 1 << 20;
/// Prefixes inserted (and removed) by the bulk phase.
const FRESH: usize = 1 << 20;
const SIZES: Sizes = Sizes {
    prefixes: PREFIXES,
    fresh: FRESH,
    lookups: LOOKUPS,
};
/// How many fresh prefixes the churn bench keeps in the table at once.
const CHURN_WINDOW: usize = 1 << 16;

/// The operations the bench needs, over each implementation.
trait Table<T> {
    const NAME: &'static str;
    fn build() -> Self;
    fn insert(&mut self, bits: T, len: u8, v: u32);
    fn remove(&mut self, bits: T, len: u8);
    fn lookup(&self, addr: T) -> Option<u32>;
    /// Burst lookup where the implementation has one; `false` when it has none.
    fn lookup_batch(&self, _addrs: &[T], _out: &mut [Option<u32>]) -> bool {
        false
    }
    fn bytes(&self) -> Option<usize>;
}

impl<K: LpmKey> Table<K> for LpmTable<K, u32> {
    const NAME: &'static str = "roamer";
    fn build() -> Self {
        LpmTable::new()
    }
    fn insert(&mut self, bits: K, len: u8, v: u32) {
        LpmTable::insert(self, bits, len, v).unwrap();
    }
    fn remove(&mut self, bits: K, len: u8) {
        LpmTable::remove(self, bits, len);
    }
    #[inline]
    fn lookup(&self, addr: K) -> Option<u32> {
        LpmTable::lookup(self, addr)
    }
    fn lookup_batch(&self, addrs: &[K], out: &mut [Option<u32>]) -> bool {
        LpmTable::lookup_batch(self, addrs, out);
        true
    }
    fn bytes(&self) -> Option<usize> {
        Some(self.memory_bytes())
    }
}

/// `A`: `Ipv4Addr` for `u32` keys, `Ipv6Addr` for `u128` ones.
impl<K, A: Address + From<K>> Table<K> for IpLookupTable<A, u32> {
    const NAME: &'static str = "treebitmap";
    fn build() -> Self {
        IpLookupTable::new()
    }
    fn insert(&mut self, bits: K, len: u8, v: u32) {
        IpLookupTable::insert(self, A::from(bits), len.into(), v);
    }
    fn remove(&mut self, bits: K, len: u8) {
        IpLookupTable::remove(self, A::from(bits), len.into());
    }
    #[inline]
    fn lookup(&self, addr: K) -> Option<u32> {
        self.longest_match(A::from(addr)).map(|(_, _, v)| *v)
    }
    fn bytes(&self) -> Option<usize> {
        let (nodes, results) = self.mem_usage();
        Some(nodes + results)
    }
}

impl<K: LpmKey> Table<K> for PrefixMap<(K, u8), u32>
where
    (K, u8): prefix_trie::Prefix,
{
    const NAME: &'static str = "prefix-trie";
    fn build() -> Self {
        PrefixMap::new()
    }
    fn insert(&mut self, bits: K, len: u8, v: u32) {
        PrefixMap::insert(self, (bits, len), v);
    }
    fn remove(&mut self, bits: K, len: u8) {
        PrefixMap::remove(self, &(bits, len));
    }
    #[inline]
    fn lookup(&self, addr: K) -> Option<u32> {
        self.get_lpm(&(addr, K::BITS)).map(|(_, v)| *v)
    }
    fn bytes(&self) -> Option<usize> {
        Some(self.mem_size())
    }
}

/// What one implementation scored on one family; `None` where a bench was filtered out.
#[derive(Default, Clone)]
struct Score {
    name: &'static str,
    build_per_s: f64,
    lookup_ns: Option<f64>,
    /// Per lookup, in bursts of [`BURST`] through `lookup_batch` (roamer only).
    batch_ns: Option<f64>,
    churn_ns: Option<f64>,
    bulk_insert_per_s: f64,
    bulk_remove_per_s: f64,
    bytes: Option<usize>,
    prefixes: usize,
    /// Sum of the values found for the lookup set: equal across implementations or a bug.
    checksum: u64,
}

/// Median of the per-iteration times of criterion's measurement samples (the last
/// `sample_size` calls; earlier calls are its warm-up).
fn median_ns(samples: &[f64], sample_size: usize) -> Option<f64> {
    let mut s: Vec<f64> = samples[samples.len().saturating_sub(sample_size)..].to_vec();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}

/// CPU time of this thread (`CLOCK_THREAD_CPUTIME_ID`, which includes the running slice to
/// the nanosecond; `/proc/thread-self/schedstat` only moves at scheduler events, so short
/// criterion samples read zero from it).
///
/// Other engineers' builds and fuzzers share this 2-core machine; wall time would charge their
/// slices to whichever implementation happened to be running. CPU time still sees their cache
/// pressure, but not the time they held the core. `None` if the clock fails: wall time then.
#[allow(unsafe_code)] // one libc call writing into a local timespec
fn thread_cpu() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// A stopwatch over thread CPU time where available, else wall time.
struct Clock {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Clock {
    fn start() -> Self {
        Self {
            cpu: thread_cpu(),
            wall: Instant::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        let wall = self.wall.elapsed();
        match (self.cpu, thread_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => wall,
        }
    }
}

fn per_s(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

const SAMPLE_SIZE: usize = 100;

/// Addresses per `lookup_batch` call: the software data path's receive batch (64 frames).
const BURST: usize = 64;

/// Runs bench `name` of `g`, whose iterations (`run(iters)` does `iters` of them) are `ops`
/// operations each, on [`Clock`]; the median time per operation of its measurement samples.
fn measure(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: String,
    ops: usize,
    mut run: impl FnMut(u64),
) -> Option<f64> {
    let mut samples = Vec::new();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Clock::start();
            run(iters);
            let e = start.elapsed();
            samples.push(e.as_nanos() as f64 / (iters as f64 * ops as f64));
            e
        })
    });
    median_ns(&samples, SAMPLE_SIZE)
}

fn run_one<T: Copy, Tb: Table<T>>(c: &mut Criterion, family: &str, data: &Data<T>) -> Score {
    let mut score = Score {
        name: Tb::NAME,
        ..Score::default()
    };
    let mut t = Tb::build();
    let start = Clock::start();
    for (i, &(bits, len)) in data.base.iter().enumerate() {
        t.insert(bits, len, i as u32);
    }
    score.build_per_s = per_s(data.base.len(), start.elapsed());
    score.bytes = t.bytes();
    score.prefixes = data.base.len();
    score.checksum = data
        .lookups
        .iter()
        .map(|&a| u64::from(t.lookup(a).unwrap_or(u32::MAX)))
        .sum();

    let mut g = c.benchmark_group(format!("lpm/{family}"));
    g.sample_size(SAMPLE_SIZE);

    let mut k = 0usize;
    score.lookup_ns = measure(&mut g, format!("lookup/{}", Tb::NAME), 1, |iters| {
        let addrs = &data.lookups;
        for _ in 0..iters {
            black_box(t.lookup(addrs[k & (LOOKUPS - 1)]));
            k = k.wrapping_add(1);
        }
    });

    let mut out = [None; BURST];
    if t.lookup_batch(&data.lookups[..BURST], &mut out) {
        let mut k = 0usize;
        let name = format!("lookup_batch{BURST}/{}", Tb::NAME);
        score.batch_ns = measure(&mut g, name, BURST, |iters| {
            let addrs = &data.lookups;
            for _ in 0..iters {
                let s = (k * BURST) & (LOOKUPS - 1);
                t.lookup_batch(&addrs[s..s + BURST], &mut out);
                black_box(&out);
                k = k.wrapping_add(1);
            }
        });
    }

    // Bulk: 1M new prefixes into the 1M table, then out again.
    let start = Clock::start();
    for (i, &(bits, len)) in data.fresh.iter().enumerate() {
        t.insert(bits, len, i as u32);
    }
    score.bulk_insert_per_s = per_s(data.fresh.len(), start.elapsed());
    let start = Clock::start();
    for &(bits, len) in &data.fresh {
        t.remove(bits, len);
    }
    score.bulk_remove_per_s = per_s(data.fresh.len(), start.elapsed());

    // Churn: a window of fresh prefixes slides over the 1M table.
    for &(bits, len) in &data.fresh[..CHURN_WINDOW] {
        t.insert(bits, len, 7);
    }
    let mut j = CHURN_WINDOW;
    score.churn_ns = measure(&mut g, format!("churn/{}", Tb::NAME), 1, |iters| {
        let fresh = &data.fresh;
        for _ in 0..iters {
            let (bits, len) = fresh[j % FRESH];
            t.insert(bits, len, 7);
            let (bits, len) = fresh[(j - CHURN_WINDOW) % FRESH];
            t.remove(bits, len);
            j += 1;
        }
    });
    g.finish();
    score
}

/// Every implementation on the `K` keys of `data` (`A`: their address type), roamer first.
fn run_all<K: LpmKey, A: Address + From<K>>(
    c: &mut Criterion,
    family: &str,
    data: &Data<K>,
) -> Vec<Score>
where
    (K, u8): prefix_trie::Prefix,
{
    vec![
        run_one::<K, LpmTable<K, u32>>(c, family, data),
        run_one::<K, IpLookupTable<A, u32>>(c, family, data),
        run_one::<K, PrefixMap<(K, u8), u32>>(c, family, data),
    ]
}

fn fmt_ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(o), Some(t)) if t > 0.0 => format!("{:.2}x", o / t),
        _ => "n/a".into(),
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.1} {unit}"))
}

fn report(family: &str, scores: &[Score]) {
    let Some(ours) = scores.first() else { return };
    let bpp = |s: &Score| s.bytes.map(|b| b as f64 / s.prefixes as f64);
    let churn_ups = |s: &Score| s.churn_ns.map(|ns| 2e9 / ns);
    println!("{family} ({} prefixes):", ours.prefixes);
    let line = |what: &str, f: &dyn Fn(&Score) -> Option<f64>, unit: &str| {
        let mut l = format!("  {family} {what:<12} {} {}", ours.name, opt(f(ours), unit));
        for s in &scores[1..] {
            let r = fmt_ratio(f(ours), f(s));
            l.push_str(&format!(", {} {} ({r})", s.name, opt(f(s), unit)));
        }
        println!("{l}");
    };
    line("lookup", &|s| s.lookup_ns, "ns");
    line("lookup burst", &|s| s.batch_ns, "ns");
    line("bulk insert", &|s| Some(s.bulk_insert_per_s / 1e6), "M/s");
    line("bulk remove", &|s| Some(s.bulk_remove_per_s / 1e6), "M/s");
    line("churn", &|s| churn_ups(s).map(|u| u / 1e6), "M upd/s");
    line("build", &|s| Some(s.build_per_s / 1e6), "M/s");
    line("memory", &bpp, "B/prefix");
    let same = scores.iter().all(|s| s.checksum == ours.checksum);
    println!(
        "  lookup results identical across implementations: {}",
        if same { "yes" } else { "NO (bug)" }
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let d4 = data_v4(0x4c50_4d34, SIZES);
    let s4 = run_all::<u32, Ipv4Addr>(&mut c, "ipv4", &d4);
    drop(d4);
    let d6 = data_v6(0x4c50_4d36, SIZES);
    let s6 = run_all::<u128, Ipv6Addr>(&mut c, "ipv6", &d6);
    drop(d6);
    c.final_summary();

    println!();
    println!("LPM summary (ratio = roamer / peer: below 1.00x is better for ns and B/prefix,");
    println!("above 1.00x is better for rates):");
    report("ipv4", &s4);
    report("ipv6", &s6);
    println!(
        "  lookup burst = per lookup through lookup_batch, {BURST} addresses per call (the peers \
         have no burst API)"
    );
    println!(
        "  churn = one insert + one remove per iteration at ~{} prefixes; bulk = {} new prefixes \
         into the 1M table, then removed",
        PREFIXES + CHURN_WINDOW,
        FRESH
    );
}
