//! Text that is safe to print: hostile values (header names, claims, JSON members) made
//! fit for a log line or an `error_description`.

/// Keeps a hostile value safe to print in a log line or an error description.
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect();
    if s.len() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_strips_controls_and_caps_length() {
        assert_eq!(printable("a\"b\r\nc"), "a\"bc");
        assert_eq!(printable(&"x".repeat(100)).chars().count(), 65);
    }
}
