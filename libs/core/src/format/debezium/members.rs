//! [`Members`]: the named members of a JSON object, kept raw, with every
//! other member checked exactly as the tree reader ([`serde_json::Value`])
//! checks it — numbers in range, strings valid, nesting within serde_json's
//! limit — but not kept. `streamed.rs` reads the common record through it,
//! so a record the tree reader refuses is never read here.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Picks the members named `names` of an object (an error for anything
/// else, or for a name given twice). `scalar_rest`: the other members must
/// be scalars (for a value read out of its document again, whose nesting
/// serde_json would count from zero).
pub(super) struct Members<const N: usize> {
    pub(super) names: [&'static str; N],
    pub(super) scalar_rest: bool,
}

impl<'de, const N: usize> DeserializeSeed<'de> for Members<N> {
    type Value = [Option<&'de RawValue>; N];

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Members<N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut picked = [None; N];
        while let Some(named) = map.next_key_seed(Name(&self.names))? {
            match named {
                Some(i) if picked[i].is_some() => {
                    return Err(de::Error::custom(format_args!("`{}` twice", self.names[i])));
                }
                Some(i) => picked[i] = Some(map.next_value::<&'de RawValue>()?),
                None => map.next_value_seed(Checked { scalar: self.scalar_rest })?,
            }
        }
        Ok(picked)
    }
}

/// A member's name, as which of `names` it is (no allocation: a name with
/// escapes is compared once unescaped, as the tree reader keys it).
struct Name<'n, const N: usize>(&'n [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for Name<'_, N> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<const N: usize> Visitor<'_> for Name<'_, N> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member's name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| *n == name))
    }
}

/// Any JSON value, read through and dropped (`scalar`: only a scalar).
#[derive(Clone, Copy)]
struct Checked {
    scalar: bool,
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.scalar {
            return Err(de::Error::custom("an array where a scalar was expected"));
        }
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.scalar {
            return Err(de::Error::custom("an object where a scalar was expected"));
        }
        while map.next_key_seed(Checked { scalar: true })?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// `text`'s named members (see [`Members`]); `None` when `text` is not one
/// JSON object as the tree reader would read it.
pub(super) fn pick<'a, const N: usize>(
    text: &'a [u8],
    names: [&'static str; N],
    scalar_rest: bool,
) -> Option<[Option<&'a RawValue>; N]> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let picked = Members { names, scalar_rest }.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(picked)
}
