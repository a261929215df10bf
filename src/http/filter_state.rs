//! What a decision may publish to the rest of Envoy as filter state (proxy-wasm properties;
//! Envoy's key is `wasm.` + the name), and which of those values a configuration asked for.
//! Each published value is one host call (about 4,600 instructions), so nothing is published
//! unless `filter_state` names it.

pub const SUBJECT: &str = "mcp_edge_auth.subject";
pub const CLIENT_ID: &str = "mcp_edge_auth.client_id";
pub const TENANT: &str = "mcp_edge_auth.tenant";
pub const PROVIDER: &str = "mcp_edge_auth.provider";
pub const SCOPES: &str = "mcp_edge_auth.scopes";
pub const MCP_METHOD: &str = "mcp_edge_auth.mcp_method";
pub const TOOL: &str = "mcp_edge_auth.tool";
pub const DECISION: &str = "mcp_edge_auth.decision";
pub const REASON: &str = "mcp_edge_auth.reason";
/// Every name, in the order a decision publishes them.
pub const ALL: [&str; 9] = [
    SUBJECT, CLIENT_ID, TENANT, PROVIDER, SCOPES, MCP_METHOD, TOOL, DECISION, REASON,
];
/// The prefix every name has; configurations name values without it (`"subject"`).
pub const PREFIX: &str = "mcp_edge_auth.";

/// The values a configuration publishes: a bit per entry of [`ALL`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Published(u16);

impl Published {
    /// Every value.
    pub const EVERY: Published = Published((1 << ALL.len()) - 1);

    /// From short names (`"subject"`, `"tool"`, …), or `"*"` for every value. An unknown name
    /// is an error naming it (a repeated one changes nothing).
    pub fn parse(names: &[String]) -> Result<Published, String> {
        let mut bits = 0u16;
        for name in names {
            if name == "*" {
                bits |= Published::EVERY.0;
                continue;
            }
            let Some(i) = ALL
                .iter()
                .position(|n| n.strip_prefix(PREFIX) == Some(name))
            else {
                let known: Vec<&str> = ALL.iter().filter_map(|n| n.strip_prefix(PREFIX)).collect();
                return Err(format!(
                    "unknown value \"{}\"; known: {}, or \"*\" for all",
                    crate::util::text::printable(name),
                    known.join(", ")
                ));
            };
            bits |= 1u16 << i;
        }
        Ok(Published(bits))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the value named `name` (one of [`ALL`]) is published.
    pub fn contains(self, name: &str) -> bool {
        ALL.iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_takes_short_names_and_star() {
        let p = Published::parse(&names(&["subject", "tool"])).unwrap();
        assert!(p.contains(SUBJECT) && p.contains(TOOL));
        assert!(!p.contains(DECISION) && !p.contains("mcp_edge_auth.other"));
        let all = Published::parse(&names(&["*"])).unwrap();
        assert_eq!(all, Published::EVERY);
        assert!(ALL.iter().all(|n| all.contains(n)));
        assert!(Published::parse(&[]).unwrap().is_empty());
        assert!(Published::default().is_empty());
    }

    #[test]
    fn parse_refuses_unknown_names() {
        let e = Published::parse(&names(&["sub"])).unwrap_err();
        assert!(
            e.contains("unknown value \"sub\"") && e.contains("subject"),
            "{e}"
        );
        let e = Published::parse(&names(&["mcp_edge_auth.subject"])).unwrap_err();
        assert!(e.contains("unknown value"), "{e}");
        let twice = Published::parse(&names(&["tool", "tool", "*"])).unwrap();
        assert_eq!(twice, Published::EVERY);
    }
}
