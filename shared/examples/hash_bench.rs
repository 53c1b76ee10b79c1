//! What the hash path costs: an admin password (argon2id, OWASP parameters),
//! a legacy API key (argon2id, m = 8 MiB, t = 1) and a new API key (SHA-256).
//! Run it at a Lambda's CPU share to size a function (see template.yaml's
//! LoginMemorySize), e.g. in a cgroup with cpu.cfs_quota_us set.
//!
//!   cargo run --release -p pulsara-shared --example hash_bench [runs]

use std::time::Instant;

use pulsara_shared::domain::api_key;
use pulsara_shared::domain::hashing;

fn time_ms(runs: u32, mut f: impl FnMut()) -> (f64, f64) {
    let (mut best, mut total) = (f64::MAX, 0.0);
    for _ in 0..runs {
        let t = Instant::now();
        f();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        best = best.min(ms);
        total += ms;
    }
    (best, total / runs as f64)
}

fn main() {
    let runs: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let password = hashing::hash_password("correct horse battery staple");
    let (best, mean) = time_ms(runs, || {
        assert!(hashing::verify("correct horse battery staple", &password));
    });
    println!("admin password verify (argon2id m=19 MiB t=2): best {best:.1} ms, mean {mean:.1} ms");

    let legacy = "$argon2id$v=19$m=8192,t=1,p=1$A7lNpNpjZUzXPdYFQzuG9A$GQacfzJMbIeMWT8TS3FOMk3WqMXZpEHJD4P8Xp5GXTA";
    let legacy_key = "psk_live_AbCdEfGh0123456789abcdefGHIJKLMN";
    let (best, mean) = time_ms(runs, || {
        assert!(hashing::verify_api_key(legacy_key, legacy));
    });
    println!("legacy api key verify (argon2id m=8 MiB t=1): best {best:.1} ms, mean {mean:.1} ms");

    let key = api_key::generate();
    let n = 100_000;
    let t = Instant::now();
    for _ in 0..n {
        assert!(hashing::verify_api_key(&key.plaintext, &key.hash));
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("api key verify (sha256): {us:.2} us");
}
