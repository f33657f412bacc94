//! [`pick`]: the named members of a JSON object, as their raw text, with
//! every byte in between checked — and a give-up (`None`) wherever
//! `serde_json`'s tree reader might refuse what this would accept. So a
//! record the tree reader refuses is never read by `streamed.rs`.
//!
//! Hand-written because skipping a ~650 B envelope through serde's visitors
//! cost ~3.7 µs of CPU a record, most of a Debezium cold start; this is a
//! plain byte loop. What it gives up on rather than judge as serde_json
//! would: `\u` escapes (lone surrogates), numbers with a fraction, an
//! exponent or more than [`MAX_DIGITS`] digits (they can overflow), member names with
//! escapes, a picked name given twice, nesting deeper than [`MAX_DEPTH`].
//! A property test holds it to `serde_json` on arbitrary JSON-like text.

/// The deepest nesting read before giving up (serde_json refuses past 128).
const MAX_DEPTH: u32 = 32;

/// The longest integer read before giving up: any shorter one is a finite
/// `f64` at worst.
const MAX_DIGITS: usize = 300;

/// Each picked member's raw JSON text, in the order of the names asked for.
pub(super) type Picked<'a, const N: usize> = [Option<&'a str>; N];

/// `text`'s members named `names`, each as its raw JSON text; `None` when
/// `text` is not one JSON object this scanner is sure serde_json reads, or
/// when a picked name is given twice.
pub(super) fn pick<'a, const N: usize>(text: &'a [u8], names: [&str; N]) -> Option<Picked<'a, N>> {
    let (picked, _) = pick_nested(text, names, "", [])?;
    Some(picked)
}

/// [`pick`], and the members named `columns` of the object under `nested`
/// (when it is an object), read in the same pass.
pub(super) fn pick_nested<'a, const N: usize, const M: usize>(
    text: &'a [u8],
    names: [&str; N],
    nested: &str,
    columns: [&str; M],
) -> Option<(Picked<'a, N>, Option<Picked<'a, M>>)> {
    // Valid UTF-8 throughout is what serde_json asks of strings; anywhere
    // else a byte past ASCII is a syntax error either way.
    let text = std::str::from_utf8(text).ok()?;
    let mut scan = Scan { text, bytes: text.as_bytes(), at: 0 };
    let mut inner = None;
    scan.whitespace();
    let picked = scan.members(1, names, |scan, name| {
        if name != nested || scan.peek() != Some(b'{') {
            return Some(false);
        }
        inner = Some(scan.members(2, columns, |_, _| Some(false))?);
        Some(true)
    })?;
    scan.whitespace();
    (scan.at == scan.bytes.len()).then_some((picked, inner))
}

/// A picked member that must be text or null: `Some(None)` for null,
/// `None` for anything else (a number, an object, text with an escape).
pub(super) fn text(raw: &str) -> Option<Option<&str>> {
    if raw == "null" {
        return Some(None);
    }
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    // `pick` checked the string; without a backslash it is its own value.
    (!inner.contains('\\')).then_some(Some(inner))
}

/// A cursor over text already known to be UTF-8.
struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    /// An object at nesting `depth`: its members named `names`, raw. `read`
    /// may read a picked member's value itself (and say so); any other
    /// value is checked and passed over.
    fn members<const N: usize>(
        &mut self,
        depth: u32,
        names: [&str; N],
        mut read: impl FnMut(&mut Self, &str) -> Option<bool>,
    ) -> Option<Picked<'a, N>> {
        let mut picked = [None; N];
        self.eat(b'{')?;
        self.whitespace();
        if self.eat_if(b'}') {
            return Some(picked);
        }
        loop {
            self.whitespace();
            let (name, escaped) = self.string()?;
            self.whitespace();
            self.eat(b':')?;
            self.whitespace();
            let start = self.at;
            match names.iter().position(|n| n.as_bytes() == name) {
                // A name with an escape might unescape to a picked one.
                _ if escaped && N > 0 => return None,
                Some(i) if picked[i].is_some() => return None,
                Some(i) => {
                    if !read(self, names[i])? {
                        self.value(depth)?;
                    }
                    picked[i] = Some(&self.text[start..self.at]);
                }
                None => self.value(depth)?,
            }
            self.whitespace();
            match self.next()? {
                b',' => {}
                b'}' => return Some(picked),
                _ => return None,
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn eat_if(&mut self, byte: u8) -> bool {
        let here = self.peek() == Some(byte);
        self.at += usize::from(here);
        here
    }

    /// JSON's four whitespace bytes, as serde_json skips them.
    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// Any JSON value at nesting `depth`, checked and passed over.
    fn value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' if depth > MAX_DEPTH => None,
            b'{' => self.members(depth + 1, [], |_, _| Some(false)).map(drop),
            b'[' => {
                self.at += 1;
                self.whitespace();
                if self.eat_if(b']') {
                    return Some(());
                }
                loop {
                    self.whitespace();
                    self.value(depth + 1)?;
                    self.whitespace();
                    match self.next()? {
                        b',' => {}
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// An integer without a leading zero. serde_json reads one past `u64`
    /// as an `f64`, finite below 309 digits; a fraction or an exponent
    /// (which can overflow) is given up on.
    fn number(&mut self) -> Option<()> {
        self.eat_if(b'-');
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        let more = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        (digits > 0 && digits <= MAX_DIGITS && !leading_zero && !more).then_some(())
    }

    /// A string: its raw content and whether it holds an escape. Control
    /// bytes are refused as serde_json refuses them; `\u` is given up on.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            self.plain_text();
            match self.next()? {
                b'"' => return Some((&self.bytes[start..self.at - 1], escaped)),
                b'\\' => {
                    escaped = true;
                    match self.next()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => {}
            }
        }
    }
}

impl Scan<'_> {
    /// Passes over a string's bytes that need no look — not a quote, a
    /// backslash or a control byte — eight at a time (most of an envelope
    /// is text; byte by byte this was a fifth of its reading).
    fn plain_text(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        // A byte's high bit is set where it is zero (or below 0x20), and,
        // by the borrow, maybe in bytes after it, never before: the lowest
        // one found is exact.
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
        while let Some(chunk) = self.bytes.get(self.at..self.at + 8) {
            let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            let look = zero(x ^ (ONES * u64::from(b'"')))
                | zero(x ^ (ONES * u64::from(b'\\')))
                | (x.wrapping_sub(ONES * 0x20) & !x & HIGHS);
            if look != 0 {
                self.at += (look.trailing_zeros() / 8) as usize;
                return;
            }
            self.at += 8;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// JSON-like text: valid and invalid pieces, nested.
    fn json_like() -> impl Strategy<Value = String> {
        let leaf = proptest::sample::select(vec![
            "null",
            "true",
            "false",
            "nul",
            "0",
            "-0",
            "01",
            "-",
            "12",
            "123456789012345678",
            "12345678901234567890123",
            "-99999999999999999999",
            "1.5",
            "1e400",
            "2E3",
            "\"\"",
            "\"a\"",
            "\"a\\\"b\"",
            "\"\\u0041\"",
            "\"\\ud800\"",
            "\"\\x\"",
            "\"\t\"",
            "\"é\"",
            "\"a",
            " ",
            "\n",
            ",",
            ":",
            "}",
            "]",
            "x",
        ])
        .prop_map(str::to_owned);
        leaf.prop_recursive(8, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec((key(inner.clone()), inner.clone()), 0..5).prop_map(|members| {
                    let members: Vec<String> = members.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
                proptest::collection::vec(inner.clone(), 0..5).prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec(inner, 1..4).prop_map(|parts| parts.concat()),
            ]
        })
    }

    /// A nested object's member name: a picked one or anything.
    fn key(inner: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = String> {
        prop_oneof![proptest::sample::select(vec!["a", "b", "x"]).prop_map(str::to_owned), inner]
    }

    /// A member's name: one of the picked ones, one like them, or anything.
    fn name() -> impl Strategy<Value = String> {
        let names = proptest::sample::select(vec!["a", "x", "b", "a\\", "\\u0061", "\\\"a"]).prop_map(str::to_owned);
        prop_oneof![3 => names, 1 => json_like()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]
        /// Whatever it accepts, serde_json's tree reader accepts, with the
        /// same picked members.
        #[test]
        fn what_it_accepts_serde_json_accepts(members in proptest::collection::vec((name(), json_like()), 0..6)) {
            let members: Vec<String> = members.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", members.join(","));
            let read = |raw: Option<&str>| raw.map(|r| serde_json::from_str::<serde_json::Value>(r).expect("a picked member"));
            if let Some((picked, nested)) = pick_nested(text.as_bytes(), ["a", "x"], "a", ["b", "x"]) {
                let tree: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                for (name, raw) in ["a", "x"].iter().zip(picked) {
                    prop_assert_eq!(read(raw), tree.get(name).cloned(), "{}", text);
                }
                // The object under `a`, read in the same pass, as the tree has it.
                prop_assert_eq!(nested.is_some(), tree.get("a").is_some_and(serde_json::Value::is_object), "{}", text);
                for (column, raw) in ["b", "x"].iter().zip(nested.unwrap_or_default()) {
                    prop_assert_eq!(read(raw), tree["a"].get(column).cloned(), "{}", text);
                }
            }
        }
    }

    #[test]
    fn it_reads_an_envelope_and_gives_up_where_unsure() {
        let picked = pick(
            br#" {"op":"c","after":{"id":"s"},"source":{"seq":"[\"1\"]","n":-12,"x":[true,null]}} "#,
            ["op", "after", "none"],
        );
        assert_eq!(picked, Some([Some(r#""c""#), Some(r#"{"id":"s"}"#), None]));
        for text in [
            r#"{"op":"c","op":"d"}"#,
            r#"{"o\u0070":"c"}"#,
            r#"{"op":"\u0063"}"#,
            r#"{"op":1.0}"#,
            r#"{"op":1e2}"#,
            r#"{"op":0123}"#,
            r#"{"op":"c",}"#,
            r#"{"op":"c"} x"#,
            r#"{"op":[1,]}"#,
        ] {
            assert_eq!(pick(text.as_bytes(), ["op"]), None, "{text}");
        }
        let deep = format!(r#"{{"op":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
        assert_eq!(pick(deep.as_bytes(), ["op"]), None);
        assert_eq!(pick(b"{\"op\":\"\xff\"}", ["op"]), None);
        assert_eq!(text(r#""a\"b""#), None);
        assert_eq!(text("null"), Some(None));
        assert_eq!(text(r#""c""#), Some(Some("c")));
        assert_eq!(text("1"), None);
    }
}
