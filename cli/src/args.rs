//! A small `--flag value` parser (no dependency): every flag takes one value, given as
//! `--flag value` or `--flag=value`; anything else is a positional argument.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Args {
    pub flags: BTreeMap<String, String>,
    pub positional: Vec<String>,
}

impl Args {
    /// Parses `argv`, accepting only the flags in `known` (names without `--`).
    pub fn parse(argv: &[String], known: &[&str]) -> Result<Args, String> {
        let mut args = Args::default();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            let Some(flag) = a.strip_prefix("--") else {
                args.positional.push(a.clone());
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    let v = it
                        .next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?
                        .clone();
                    (flag.to_string(), v)
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown option --{name}"));
            }
            if args.flags.insert(name.clone(), value).is_some() {
                return Err(format!("--{name} given twice"));
            }
        }
        Ok(args)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_and_positionals() {
        let a = Args::parse(
            &v(&["f.json", "--path", "/mcp", "--now=5"]),
            &["path", "now"],
        )
        .unwrap();
        assert_eq!(a.positional, vec!["f.json"]);
        assert_eq!(a.get("path"), Some("/mcp"));
        assert_eq!(a.get("now"), Some("5"));
        assert!(Args::parse(&v(&["--nope", "x"]), &["path"]).is_err());
        assert!(Args::parse(&v(&["--path"]), &["path"]).is_err());
        assert!(Args::parse(&v(&["--path", "a", "--path", "b"]), &["path"]).is_err());
    }
}
