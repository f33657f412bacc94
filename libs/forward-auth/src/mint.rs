//! Minting tokens for demos and tests: a signing key from a PEM file, its
//! public JWK, and signed tokens. Production tokens come from the identity
//! provider; this is what `projector token` and the tests use.

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use thiserror::Error;

/// Why a key cannot sign or a token cannot be made.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct MintError(String);

/// A private key that signs tokens with one algorithm under one `kid`.
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    key: EncodingKey,
}

impl SigningKey {
    /// A PEM private key (PKCS#8, or PKCS#1 for RSA) for `alg`
    /// (RS256/RS384/RS512/PS256…, ES256/ES384, EdDSA).
    ///
    /// ```no_run
    /// use revocation_forward_auth::{Algorithm, SigningKey};
    /// // openssl genpkey -algorithm ed25519 -out key.pem
    /// let key = SigningKey::from_pem(&std::fs::read("key.pem").unwrap(), Algorithm::EdDSA, "k1").unwrap();
    /// let token = key.sign(&serde_json::json!({"sub": "u1", "sid": "s1", "exp": 4102444800u64})).unwrap();
    /// ```
    pub fn from_pem(pem: &[u8], alg: Algorithm, kid: impl Into<String>) -> Result<Self, MintError> {
        use jsonwebtoken::AlgorithmFamily as F;
        let key = match alg.family() {
            F::Rsa => EncodingKey::from_rsa_pem(pem),
            F::Ec => EncodingKey::from_ec_pem(pem),
            F::Ed => EncodingKey::from_ed_pem(pem),
            F::Hmac => return Err(MintError("HMAC keys are not public-key signing keys".into())),
        }
        .map_err(|e| MintError(format!("not a {alg:?} private key in PEM: {e}")))?;
        Ok(Self { alg, kid: kid.into(), key })
    }

    /// The public key as a JWK, with `kid`, `alg` and `use: sig`.
    pub fn jwk(&self) -> Result<Jwk, MintError> {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).map_err(|e| MintError(e.to_string()))?;
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(jwk)
    }

    /// A token of `claims`, with `kid` in its header.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, MintError> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.key).map_err(|e| MintError(e.to_string()))
    }
}

/// The JWKS publishing `keys`' public halves.
pub fn jwks(keys: &[&SigningKey]) -> Result<JwkSet, MintError> {
    Ok(JwkSet { keys: keys.iter().map(|k| k.jwk()).collect::<Result<_, _>>()? })
}
