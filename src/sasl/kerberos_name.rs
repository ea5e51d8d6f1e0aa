//! From an authenticated Kerberos principal to the `sasl` identity a
//! connection gains, as ZooKeeper's `SaslServerCallbackHandler` and
//! `KerberosName` make it: the principal's short name by the
//! `auth_to_local` rules (`zookeeper.security.auth_to_local`, default
//! `DEFAULT`: the first component when the realm is the default realm),
//! then `/host` and `@REALM` appended back unless
//! `zookeeper.kerberos.removeHostFromPrincipal` /
//! `removeRealmFromPrincipal` say otherwise. So by default
//! `client@EXAMPLE.COM` stays `client@EXAMPLE.COM`.
//!
//! When no rule gives a simple name ZooKeeper keeps the client's
//! authorization id, which its clients leave to be the principal: here the
//! principal itself, untouched.

use regex::Regex;

/// Why `auth_to_local` rules could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid auth_to_local rule: {0}")]
pub struct RuleError(String);

/// One `auth_to_local` rule.
#[derive(Debug, Clone)]
enum Rule {
    /// `DEFAULT`: the first component of a principal of the default realm.
    Default,
    /// `RULE:[n:format](match)s/from/to/g`.
    Custom {
        components: usize,
        format: String,
        /// Anchored at both ends.
        matches: Option<Regex>,
        substitution: Option<(Regex, String, bool)>,
    },
}

/// The mapping from principals to `sasl` identities.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
    default_realm: String,
    remove_host: bool,
    remove_realm: bool,
}

/// A principal's parts: `service/host@REALM`.
struct Name<'a> {
    service: &'a str,
    host: Option<&'a str>,
    realm: Option<&'a str>,
}

impl<'a> Name<'a> {
    /// Splits as KerberosName does; `None` for a name with an `@` that is
    /// not `a[/b]@c` with no further `/` or `@`.
    fn parse(principal: &'a str) -> Option<Self> {
        let Some((left, realm)) = principal.split_once('@') else {
            return Some(Name { service: principal, host: None, realm: None });
        };
        if realm.contains(['/', '@']) {
            return None;
        }
        let (service, host) = match left.split_once('/') {
            Some((s, h)) if !h.contains('/') => (s, Some(h)),
            Some(_) => return None,
            None => (left, None),
        };
        Some(Name { service, host, realm: Some(realm) })
    }
}

impl PrincipalMapper {
    /// A mapper from the rule text (`DEFAULT` when unset), the default
    /// realm (from krb5.conf; empty when there is none) and the two removal
    /// switches.
    pub fn new(rules: &str, default_realm: &str, remove_host: bool, remove_realm: bool) -> Result<Self, RuleError> {
        Ok(PrincipalMapper { rules: parse_rules(rules)?, default_realm: default_realm.to_string(), remove_host, remove_realm })
    }

    /// The `sasl` identity of an authenticated `principal`.
    pub fn authorized_id(&self, principal: &str) -> String {
        let Some(name) = Name::parse(principal) else { return principal.to_string() };
        let Some(mut id) = self.short_name(&name) else { return principal.to_string() };
        if let (false, Some(host)) = (self.remove_host, name.host) {
            id.push('/');
            id.push_str(host);
        }
        if let (false, Some(realm)) = (self.remove_realm, name.realm) {
            id.push('@');
            id.push_str(realm);
        }
        id
    }

    /// KerberosName.getShortName: the first rule that gives a name; `None`
    /// when none does, or the name it gives is not simple.
    fn short_name(&self, name: &Name) -> Option<String> {
        let Some(realm) = name.realm else { return Some(name.service.to_string()) };
        let mut params = vec![realm, name.service];
        params.extend(name.host);
        for rule in &self.rules {
            let result = match rule {
                Rule::Default => (self.default_realm == realm).then(|| name.service.to_string()),
                Rule::Custom { components, format, matches, substitution } => {
                    if params.len() - 1 != *components {
                        continue;
                    }
                    let base = fill(format, &params)?;
                    if matches.as_ref().is_some_and(|m| !m.is_match(&base)) {
                        None
                    } else {
                        Some(match substitution {
                            None => base,
                            Some((from, to, true)) => from.replace_all(&base, to.as_str()).into_owned(),
                            Some((from, to, false)) => from.replace(&base, to.as_str()).into_owned(),
                        })
                    }
                }
            };
            if let Some(result) = result {
                return (!result.contains(['/', '@'])).then_some(result);
            }
        }
        None
    }
}

/// A rule's format with `$0` (realm), `$1`, `$2` (components) filled in;
/// `None` for a `$` without a number or a number past the components (the
/// rule then fails, as KerberosName's BadFormatString).
fn fill(format: &str, params: &[&str]) -> Option<String> {
    let mut out = String::new();
    let mut rest = format;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let n: usize = after[..digits].parse().ok()?;
        out.push_str(params.get(n)?);
        rest = &after[digits..];
    }
    out.push_str(rest);
    Some(out)
}

/// Java's replacement text (`$1` is group 1 however many digits follow in
/// the group count) for the regex crate, where `$1a` would name group "1a".
fn replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(next);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{digits}}}"));
            }
            c => out.push(c),
        }
    }
    out
}

/// Parses `auth_to_local` text: `DEFAULT` and `RULE:...` entries separated by white space.
fn parse_rules(text: &str) -> Result<Vec<Rule>, RuleError> {
    let rule = Regex::new(r"^\s*(?:(DEFAULT)|RULE:\[(\d*):([^\]]*)\](?:\(([^)]*)\))?(?:s/([^/]*)/([^/]*)/(g)?)?)")
        .map_err(|e| RuleError(e.to_string()))?;
    let compile = |p: &str| Regex::new(p).map_err(|e| RuleError(format!("{p}: {e}")));
    let mut rules = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let caps = rule.captures(rest).ok_or_else(|| RuleError(rest.to_string()))?;
        if caps.get(1).is_some() {
            rules.push(Rule::Default);
        } else {
            let components = caps[2].parse().map_err(|_| RuleError(rest.to_string()))?;
            let substitution = match (caps.get(5), caps.get(6)) {
                (Some(from), Some(to)) => Some((compile(from.as_str())?, replacement(to.as_str()), caps.get(7).is_some())),
                _ => None,
            };
            rules.push(Rule::Custom {
                components,
                format: caps[3].to_string(),
                // Anchored: Java's `Matcher.matches` takes the whole text.
                matches: caps.get(4).map(|m| compile(&format!("^(?:{})$", m.as_str()))).transpose()?,
                substitution,
            });
        }
        rest = rest[caps[0].len()..].trim_start();
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper(rules: &str, host: bool, realm: bool) -> PrincipalMapper {
        PrincipalMapper::new(rules, "EXAMPLE.COM", host, realm).unwrap()
    }

    #[test]
    fn by_default_the_principal_is_kept_whole() {
        let m = mapper("DEFAULT", false, false);
        assert_eq!(m.authorized_id("client@EXAMPLE.COM"), "client@EXAMPLE.COM");
        assert_eq!(m.authorized_id("svc/host.example.com@EXAMPLE.COM"), "svc/host.example.com@EXAMPLE.COM");
        // Another realm: no rule applies and the principal is the identity.
        assert_eq!(m.authorized_id("client@OTHER.ORG"), "client@OTHER.ORG");
    }

    #[test]
    fn removal_switches_drop_host_and_realm() {
        assert_eq!(mapper("DEFAULT", false, true).authorized_id("client@EXAMPLE.COM"), "client");
        assert_eq!(mapper("DEFAULT", true, false).authorized_id("svc/h@EXAMPLE.COM"), "svc@EXAMPLE.COM");
        assert_eq!(mapper("DEFAULT", true, true).authorized_id("svc/h@EXAMPLE.COM"), "svc");
        // Outside the default realm DEFAULT gives no short name: kept whole.
        assert_eq!(mapper("DEFAULT", true, true).authorized_id("svc/h@OTHER.ORG"), "svc/h@OTHER.ORG");
    }

    #[test]
    fn custom_rules_map_short_names() {
        let rules = "RULE:[1:$1@$0](.*@OTHER\\.ORG)s/@.*// RULE:[2:$1](hbase)s/.*/hadoop/ DEFAULT";
        let m = mapper(rules, true, true);
        assert_eq!(m.authorized_id("alice@OTHER.ORG"), "alice");
        assert_eq!(m.authorized_id("hbase/rs1@EXAMPLE.COM"), "hadoop");
        assert_eq!(m.authorized_id("yarn/rs1@EXAMPLE.COM"), "yarn");
        assert_eq!(m.authorized_id("bob@EXAMPLE.COM"), "bob");
        // The realm is appended back unless removed.
        assert_eq!(mapper(rules, false, false).authorized_id("alice@OTHER.ORG"), "alice@OTHER.ORG");
        // A rule whose result is not simple gives no short name.
        let m = mapper("RULE:[1:$1@$0]", true, true);
        assert_eq!(m.authorized_id("bob@EXAMPLE.COM"), "bob@EXAMPLE.COM");
    }

    #[test]
    fn java_replacements_and_formats() {
        assert_eq!(replacement("$1x\\$"), "${1}x$$");
        assert_eq!(fill("$1@$0", &["R", "a"]).as_deref(), Some("a@R"));
        assert_eq!(fill("$2", &["R", "a"]), None);
        assert_eq!(fill("$x", &["R", "a"]), None);
        let m = mapper("RULE:[1:$1](a.*)s/a(.)/$1z/g", true, true);
        assert_eq!(m.authorized_id("abab@EXAMPLE.COM"), "bzbz");
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(PrincipalMapper::new("RULE:nonsense", "", false, false).is_err());
        assert!(PrincipalMapper::new("RULE:[1:$1](unclosed[)", "", false, false).is_err());
        assert_eq!(mapper("", false, true).authorized_id("c@EXAMPLE.COM"), "c@EXAMPLE.COM");
    }
}
