//! Private keys for signing test tokens, made by the `openssl` command line
//! (as an operator would make them), in PEM.

use std::process::Command;

/// A key type the forward-auth endpoint verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA 2048 (RS256).
    Rsa,
    /// ECDSA P-256 (ES256).
    Ec,
    /// Ed25519 (EdDSA).
    Ed25519,
}

/// A fresh private key of `kind`, PKCS#8 PEM. Panics, naming the command,
/// when `openssl` is missing or fails.
pub fn private_key_pem(kind: KeyKind) -> Vec<u8> {
    let args: &[&str] = match kind {
        KeyKind::Rsa => &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        KeyKind::Ec => &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeyKind::Ed25519 => &["genpkey", "-algorithm", "ed25519"],
    };
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `openssl {}` (install openssl): {e}", args.join(" ")));
    assert!(out.status.success(), "`openssl {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out.stdout
}
