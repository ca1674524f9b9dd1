//! A strict reader of the Prometheus text exposition format 0.0.4, for checking what
//! `StatsSnapshot::prometheus_text` writes (`tests/stats.rs` and the `stats_text` target).
//!
//! Strict means: anything the format forbids is an error, and so is anything shardcast never
//! writes even where the format would allow it (comments other than `# HELP` / `# TYPE`,
//! blank lines, timestamps, more than one space between tokens). In detail:
//!
//! - lines end in `\n` (the last one too) and nothing else ends a line: a raw line feed in
//!   a label value shows up as an unterminated value;
//! - `# HELP name text` (escapes `\\` and `\n` only) and `# TYPE name kind` at most once
//!   per family, both before the family's first sample, and every family has both;
//! - a family's samples form one group (no family comes back after another began);
//! - metric names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`, no label
//!   twice in one sample; label values `"..."` with escapes `\\`, `\"`, `\n` only, unescaped
//!   back;
//! - counters are named `*_total` (shardcast's convention, OpenMetrics' rule); a summary's
//!   samples are `name{...,quantile="q"}`, `name_sum`, `name_count` (a histogram's
//!   `name_bucket{...,le="b"}`, `name_sum`, `name_count`);
//! - the value is `NaN`, `+Inf`, `-Inf` or a decimal number, after exactly one space, and
//!   ends the line.
//!
//! Errors are values ([`ParseError`], with the line), never panics, so a fuzz target can
//! report the text that broke.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// 1-based line number in the text.
    pub line: usize,
    /// Metric name as written (`shardcast_x_total`, `shardcast_y_seconds_sum`, ...).
    pub name: String,
    /// The family it belongs to (the name, or a summary's / histogram's base name).
    pub family: String,
    /// Label values, unescaped.
    pub labels: BTreeMap<String, String>,
    /// The value as written.
    pub value_text: String,
    /// The value.
    pub value: f64,
}

/// A whole exposition: families' `TYPE` and `HELP`, and the samples in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Family name → `counter`, `gauge`, `summary`, `histogram` or `untyped`.
    pub types: BTreeMap<String, String>,
    /// Family name → help text, unescaped.
    pub help: BTreeMap<String, String>,
    /// Every sample line, in order.
    pub samples: Vec<Sample>,
}

/// Why a text is not valid exposition format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number (one past the last line for an error about the end).
    pub line: usize,
    /// The offending line as written.
    pub text: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {:?}", self.line, self.message, self.text)
    }
}

impl std::error::Error for ParseError {}

/// The kinds `# TYPE` may name.
pub const KINDS: [&str; 5] = ["counter", "gauge", "summary", "histogram", "untyped"];

/// Metric names shardcast writes start with this.
pub const PREFIX: &str = "shardcast_";

/// A sample's labels: name → unescaped value.
pub type Labels = BTreeMap<String, String>;

/// Reads shardcast's text strictly: [`parse`], and every metric name starts with
/// [`PREFIX`]. Returns `(name, labels, value)` per sample.
pub fn parse_prometheus(text: &str) -> Result<Vec<(String, Labels, f64)>, ParseError> {
    let e = parse(text)?;
    check_prefix(&e, text)?;
    Ok(e.samples.into_iter().map(|s| (s.name, s.labels, s.value)).collect())
}

/// Every family and sample of `e` (read from `text`) is named `shardcast_*`.
pub fn check_prefix(e: &Exposition, text: &str) -> Result<(), ParseError> {
    let line_of = |n: usize| text.split('\n').nth(n - 1).unwrap_or_default();
    if let Some(s) = e.samples.iter().find(|s| !s.name.starts_with(PREFIX)) {
        return Err(err(s.line, line_of(s.line), format!("metric name without {PREFIX}")));
    }
    if let Some(family) = e.types.keys().find(|f| !f.starts_with(PREFIX)) {
        return Err(err(0, "", format!("family {family} without {PREFIX}")));
    }
    Ok(())
}

/// Is `n` a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars().enumerate().all(|(i, c)| {
            c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
        })
}

/// Is `n` a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
}

/// Is `v` a value the format allows: `NaN`, `+Inf`, `-Inf`, or a decimal float
/// (`[+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?`).
fn valid_value(v: &str) -> bool {
    if matches!(v, "NaN" | "+Inf" | "-Inf") {
        return true;
    }
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let mut s = v.strip_prefix(['+', '-']).unwrap_or(v);
    let int = digits(s);
    s = &s[int..];
    let mut frac = 0;
    if let Some(rest) = s.strip_prefix('.') {
        frac = digits(rest);
        s = &rest[frac..];
    }
    if int + frac == 0 {
        return false;
    }
    if let Some(rest) = s.strip_prefix(['e', 'E']) {
        let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        let exp = digits(rest);
        if exp == 0 {
            return false;
        }
        s = &rest[exp..];
    }
    s.is_empty()
}

/// The first two samples with the same name and labels, if any: the format says a name
/// and label set must appear at most once ("otherwise, the ingestion behavior is
/// undefined"), and Prometheus drops the repeats of a scrape as duplicates.
pub fn first_duplicate<'a>(
    samples: impl IntoIterator<Item = &'a Sample>,
) -> Option<(&'a Sample, &'a Sample)> {
    let mut seen: HashMap<(&str, &BTreeMap<String, String>), &Sample> = HashMap::new();
    for s in samples {
        if let Some(first) = seen.insert((s.name.as_str(), &s.labels), s) {
            return Some((first, s));
        }
    }
    None
}

/// Reads `text` strictly (see the module docs).
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    if text.is_empty() {
        return Ok(out);
    }
    let Some(body) = text.strip_suffix('\n') else {
        let line = text.split('\n').count();
        let last = text.rsplit('\n').next().unwrap_or_default();
        return Err(err(line, last, "the text does not end in a line feed".into()));
    };
    // Families whose samples have begun, and the one being written now.
    let mut started: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    for (i, line) in body.split('\n').enumerate() {
        let n = i + 1;
        let fail = |message: String| err(n, line, message);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').unwrap_or((rest, ""));
            if !valid_metric_name(name) {
                return Err(fail(format!("bad metric name {name:?} in HELP")));
            }
            if started.contains(name) {
                return Err(fail(format!("HELP for {name} after its samples")));
            }
            let doc = unescape_help(doc).map_err(fail)?;
            if out.help.insert(name.to_owned(), doc).is_some() {
                return Err(fail(format!("HELP twice for {name}")));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            let [name, kind] = parts[..] else {
                return Err(fail("TYPE is not `# TYPE name kind`".into()));
            };
            if !valid_metric_name(name) {
                return Err(fail(format!("bad metric name {name:?} in TYPE")));
            }
            if !KINDS.contains(&kind) {
                return Err(fail(format!("unknown kind {kind:?}")));
            }
            if started.contains(name) {
                return Err(fail(format!("TYPE for {name} after its samples")));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(fail(format!("counter {name} does not end in _total")));
            }
            if out.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(fail(format!("TYPE twice for {name}")));
            }
            continue;
        }
        if line.is_empty() {
            return Err(fail("empty line".into()));
        }
        if line.starts_with('#') {
            return Err(fail("a comment other than HELP or TYPE".into()));
        }
        let sample = parse_sample(n, line, &out.types).map_err(fail)?;
        if !out.help.contains_key(&sample.family) {
            return Err(fail(format!("sample of {} without a HELP before it", sample.family)));
        }
        if current.as_deref() != Some(sample.family.as_str()) {
            if !started.insert(sample.family.clone()) {
                return Err(fail(format!("samples of {} are not one group", sample.family)));
            }
            current = Some(sample.family.clone());
        }
        out.samples.push(sample);
    }
    for name in out.types.keys() {
        if !out.help.contains_key(name) {
            return Err(err(
                body.split('\n').count() + 1,
                "",
                format!("{name}: TYPE without HELP"),
            ));
        }
    }
    for name in out.help.keys() {
        if !out.types.contains_key(name) {
            return Err(err(
                body.split('\n').count() + 1,
                "",
                format!("{name}: HELP without TYPE"),
            ));
        }
    }
    Ok(out)
}

fn err(line: usize, text: &str, message: String) -> ParseError {
    ParseError { line, text: text.to_owned(), message }
}

/// HELP text: `\\` and `\n` are the only escapes.
fn unescape_help(doc: &str) -> Result<String, String> {
    let mut out = String::with_capacity(doc.len());
    let mut chars = doc.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            other => return Err(format!("bad escape {other:?} in HELP text")),
        }
    }
    Ok(out)
}

/// One sample line, given the families typed so far.
fn parse_sample(
    line_no: usize,
    line: &str,
    types: &BTreeMap<String, String>,
) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let (name, mut rest) = line.split_at(name_end);
    if !valid_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        rest = parse_labels(body, &mut labels)?;
    }
    let value_text = rest.strip_prefix(' ').ok_or("no single space before the value")?;
    if !valid_value(value_text) {
        return Err(format!("bad value {value_text:?} (a timestamp or other text after it?)"));
    }
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|e| format!("bad value {v:?}: {e}"))?,
    };

    // The family: the name itself, or a summary's / histogram's base name.
    let kind_of = |f: &str| types.get(f).map(String::as_str);
    let family = [("_sum", None), ("_count", None), ("_bucket", Some("histogram"))]
        .iter()
        .find_map(|(suffix, only)| {
            let base = name.strip_suffix(suffix)?;
            let kind = kind_of(base)?;
            let ok = match only {
                Some(k) => kind == *k,
                None => kind == "summary" || kind == "histogram",
            };
            ok.then_some(base)
        })
        .unwrap_or(name);
    let kind = kind_of(family).ok_or_else(|| format!("sample {name} without a TYPE before it"))?;
    let required = match (kind, name == family) {
        ("summary", true) => Some("quantile"),
        ("histogram", false) if name.ends_with("_bucket") => Some("le"),
        _ => None,
    };
    for special in ["quantile", "le"] {
        match labels.get(special) {
            Some(v) if required == Some(special) && !valid_value(v) => {
                return Err(format!("{special}={v:?} is not a number"));
            }
            Some(_) if required == Some(special) => {}
            Some(_) => return Err(format!("label {special} on a {kind} sample {name}")),
            None if required == Some(special) => {
                return Err(format!("{kind} sample {name} without a {special} label"));
            }
            None => {}
        }
    }
    Ok(Sample {
        line: line_no,
        name: name.to_owned(),
        family: family.to_owned(),
        labels,
        value_text: value_text.to_owned(),
        value,
    })
}

/// `body` starts after `{`; fills `labels` and returns what follows the closing `}`.
fn parse_labels<'a>(
    body: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    let mut rest = body;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("a label without `=`")?;
        let key = &rest[..eq];
        if !valid_label_name(key) {
            return Err(format!("bad label name {key:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or_else(|| format!("label {key}: no `\"`"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => {
                        return Err(format!("label {key}: bad escape {:?}", other.map(|c| c.1)))
                    }
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {key}: unterminated value")),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        rest = &rest[end + 1..];
        match rest.as_bytes().first() {
            Some(b',') => rest = &rest[1..],
            Some(b'}') => {}
            _ => return Err(format!("after label {key}: neither `,` nor `}}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "# HELP a_total A \\\\ b\\n.\n# TYPE a_total counter\na_total 1\n\
        a_total{x=\"q\\\"\\n\\\\\",y=\"\"} 2\n\
        # TYPE l_seconds summary\n# HELP l_seconds L.\nl_seconds{quantile=\"0.5\"} NaN\n\
        l_seconds_sum +Inf\nl_seconds_count 0\nl_seconds{s=\"a\",quantile=\"0.5\"} -1.5e3\n";

    #[test]
    fn reads_valid_text() {
        let e = parse(OK).unwrap();
        assert_eq!(e.help["a_total"], "A \\ b\n.");
        assert_eq!(e.samples.len(), 6);
        assert_eq!(e.samples[1].labels["x"], "q\"\n\\");
        assert_eq!(e.samples[1].labels["y"], "");
        assert!(e.samples[2].value.is_nan());
        assert_eq!(e.samples[3].family, "l_seconds");
        assert_eq!(e.samples[5].value, -1500.0);
        assert!(first_duplicate(&e.samples).is_none());
        assert_eq!(parse_prometheus("").unwrap(), vec![]);
        assert!(parse_prometheus(OK).is_err(), "names without shardcast_");
        let ours =
            "# HELP shardcast_a_total A.\n# TYPE shardcast_a_total counter\nshardcast_a_total 1\n";
        assert_eq!(parse_prometheus(ours).unwrap().len(), 1);
    }

    #[test]
    fn rejects_what_the_format_forbids() {
        let head = "# HELP a_total A.\n# TYPE a_total counter\n";
        for (bad, why) in [
            ("a_total 1", "no final line feed"),
            ("a_total{x=\"a\nb\"} 1\n", "raw line feed in a label value"),
            ("a_total{x=\"a\\tb\"} 1\n", "unknown escape"),
            ("a_total{x=\"a\",x=\"b\"} 1\n", "label twice"),
            ("a_total{x:y=\"a\"} 1\n", "colon in a label name"),
            ("a_total{x=\"a\"  } 1\n", "junk in the label list"),
            ("a_total  1\n", "two spaces"),
            ("a_total 1 123\n", "timestamp"),
            ("a_total 0x1p3\n", "hex float"),
            ("a_total inf\n", "Go-only spelling of infinity"),
            ("a_total\n", "no value"),
            ("b_total 1\n", "no TYPE"),
            ("a_total 1\n\n", "blank line"),
            ("a_total 1\n# comment\n", "comment"),
            ("a_total 1\n# TYPE a_total counter\n", "TYPE twice / after samples"),
        ] {
            let text = format!("{head}{bad}");
            assert!(parse(&text).is_err(), "{why}: accepted {text:?}");
        }
        for (bad, why) in [
            ("# TYPE a counter\n# HELP a A.\na 1\n", "counter without _total"),
            ("# TYPE a gauge\na 1\n", "no HELP"),
            ("# HELP s S.\n# TYPE s summary\ns 1\n", "summary sample without quantile"),
            ("# HELP s S.\n# TYPE s summary\ns_sum{quantile=\"1\"} 1\n", "quantile on _sum"),
            ("# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\nb 1\na 2\n", "group"),
        ] {
            assert!(parse(bad).is_err(), "{why}: accepted {bad:?}");
        }
    }

    #[test]
    fn finds_duplicate_series() {
        let text = "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 2\n";
        let e = parse(text).unwrap();
        let (first, again) = first_duplicate(&e.samples).unwrap();
        assert_eq!((first.line, again.line), (3, 5));
    }
}
