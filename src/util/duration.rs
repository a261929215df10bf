//! Durations in the protobuf JSON form Envoy uses: `"5s"`, `"0.5s"`, `"600s"`.

use std::time::Duration;

/// Parses `"<seconds>[.<fraction>]s"`. Negative values, other units and more than nine
/// fractional digits are refused.
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like \"5s\" or \"0.25s\"");
    let body = s.strip_suffix('s').ok_or_else(bad)?;
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, f),
        None => (body, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (body.contains('.') && frac.is_empty())
    {
        return Err(bad());
    }
    let secs: u64 = whole.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_protobuf_json_durations() {
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("0.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("600s"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1.000000001s"), Ok(Duration::new(1, 1)));
        for bad in [
            "5",
            "5m",
            "-1s",
            "s",
            ".5s",
            "5.s",
            "1.0000000001s",
            "5 s",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
