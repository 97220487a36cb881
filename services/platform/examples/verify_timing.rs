//! Time of one token signature check (Ed25519 + claims), which the gateway and every service do on each call.
//! `cargo run -p id77-platform --example verify_timing [--release]`. Why the crypto crates are optimised in the
//! dev profile (Cargo.toml): 16.7 ms per check unoptimised, 0.12 ms optimised, on this 2-vCPU machine.

use id77_platform::auth::{Claims, Jwks, KeyPair, Role, Verifier};

fn main() -> anyhow::Result<()> {
    let key = KeyPair::generate()?;
    let verifier = Verifier::from_jwks(&Jwks { keys: vec![key.jwk()] });
    let mut claims = Claims::new(uuid::Uuid::now_v7(), Role::MemberAdmin, 1_000_000);
    claims.member_id = Some(uuid::Uuid::now_v7().to_string());
    let token = key.sign(&claims);
    const N: u32 = 200;
    let started = std::time::Instant::now();
    for _ in 0..N {
        verifier.verify(&token, 1_000_010).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    println!("token check: {:?} each ({N} checks)", started.elapsed() / N);
    Ok(())
}
