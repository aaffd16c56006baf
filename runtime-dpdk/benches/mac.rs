//! Cost of the cluster MAC (`auth.rs`) per message: sealing (BLAKE3 keyed hash, truncated,
//! plus the trailer copy) and opening (tag check and replay window), against a plain copy of
//! the same bytes measured in the same run. `cargo bench -p hovercraft-runtime --bench mac`.
#![forbid(unsafe_code)]

use std::hint::black_box;

use hovercraft_runtime::auth::{subkey, Opener, Sealer, WINDOW_BITS};

/// Benchmark timing is the one place here that may read the wall clock: nothing of it reaches
/// a protocol decision.
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn ns_per(iters: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t = now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

fn main() {
    let k = subkey(&[3; 32], 1, "bench");
    println!("size_bytes  copy_ns  seal_ns  open_ns  seal/copy  open/copy");
    for size in [100usize, 1024, 64 * 1024] {
        let mut packet = vec![0xABu8; size];
        packet[2] = 0x50;
        let iters = (200_000_000 / (size as u64 + 200)).clamp(2_000, 1_000_000);
        let mut out = Vec::with_capacity(size + 64);
        let copy = ns_per(iters, || {
            out.clear();
            out.extend_from_slice(black_box(&packet));
            black_box(&out);
        });
        let mut s = Sealer::new(k, 1, 1);
        let seal = ns_per(iters, || {
            s.seal(0, black_box(&packet), &mut out);
            black_box(&out);
        });
        // Open a stream of fresh genuine messages (each accepted once, in order).
        let msgs: Vec<Vec<u8>> = (0..WINDOW_BITS)
            .map(|_| {
                let mut d = Vec::new();
                s.seal(0, &packet, &mut d);
                d
            })
            .collect();
        let mut o = Opener::new(vec![k], 0, 3);
        let mut i = 0;
        let open = ns_per(iters, || {
            // Past the first round, opens are refused as replays after the full tag check
            // (same work: the window is consulted last).
            let r = o.open(black_box(&msgs[i % msgs.len()]));
            black_box(&r);
            i += 1;
        });
        println!(
            "{size:>10}  {copy:>7.1}  {seal:>7.1}  {open:>7.1}  {:>9.1}  {:>9.1}",
            seal / copy,
            open / copy
        );
    }
}
