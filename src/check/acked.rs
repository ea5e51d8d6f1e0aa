//! Acknowledged creates: none lost, sequential names never handed out twice.

use std::collections::BTreeMap;

use super::Anomaly;

/// One create the server acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedCreate {
    /// The path the server answered (with its sequential suffix).
    pub path: String,
    /// The unique data the client wrote.
    pub data: Vec<u8>,
}

/// What the acked checker looked at.
#[derive(Debug, Default)]
pub struct AckedReport {
    /// Acknowledged creates.
    pub acked: usize,
    /// Servers whose final state was compared.
    pub servers: usize,
    /// Violations.
    pub anomalies: Vec<Anomaly>,
}

/// Checks the acknowledged creates against each server's final contents of
/// their parent (`final_states`: server name → path → data).
pub fn check(acked: &[AckedCreate], final_states: &BTreeMap<String, BTreeMap<String, Vec<u8>>>) -> AckedReport {
    let mut r = AckedReport { acked: acked.len(), servers: final_states.len(), ..Default::default() };
    let mut seen: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for a in acked {
        if let Some(prev) = seen.insert(&a.path, &a.data) {
            r.anomalies.push(Anomaly {
                kind: "sequential-name-duplicated",
                detail: format!(
                    "{} acknowledged to two creates ({:?} and {:?})",
                    a.path,
                    String::from_utf8_lossy(prev),
                    String::from_utf8_lossy(&a.data)
                ),
            });
        }
    }
    for (server, state) in final_states {
        let mut missing = Vec::new();
        for a in acked {
            match state.get(&a.path) {
                None => missing.push(a.path.clone()),
                Some(d) if *d != a.data && seen.get(a.path.as_str()) == Some(&a.data.as_slice()) => r.anomalies.push(Anomaly {
                    kind: "acked-create-changed",
                    detail: format!(
                        "{server}: {} holds {:?}, acknowledged with {:?}",
                        a.path,
                        String::from_utf8_lossy(d),
                        String::from_utf8_lossy(&a.data)
                    ),
                }),
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            let n = missing.len();
            missing.truncate(5);
            r.anomalies.push(Anomaly {
                kind: "acked-create-lost",
                detail: format!("{server}: {n} acknowledged creates missing, e.g. {missing:?}"),
            });
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(path: &str, data: &str) -> AckedCreate {
        AckedCreate { path: path.into(), data: data.as_bytes().to_vec() }
    }
    fn state(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries.iter().map(|(p, d)| (p.to_string(), d.as_bytes().to_vec())).collect()
    }

    #[test]
    fn all_present_is_clean_and_a_lost_or_duplicated_create_is_caught() {
        let acked = [a("/s/n0000000000", "x"), a("/s/n0000000001", "y")];
        let full = state(&[("/s/n0000000000", "x"), ("/s/n0000000001", "y"), ("/s/n0000000002", "unacked")]);
        let ok = check(&acked, &BTreeMap::from([("s1".to_string(), full.clone())]));
        assert!(ok.anomalies.is_empty(), "{:?}", ok.anomalies);

        let lost = state(&[("/s/n0000000000", "x")]);
        let r = check(&acked, &BTreeMap::from([("s1".to_string(), full), ("s2".to_string(), lost)]));
        assert_eq!(r.anomalies.len(), 1);
        assert_eq!(r.anomalies[0].kind, "acked-create-lost");
        assert!(r.anomalies[0].detail.starts_with("s2"));

        let dup = [a("/s/n0000000000", "x"), a("/s/n0000000000", "z")];
        let r = check(&dup, &BTreeMap::new());
        assert_eq!(r.anomalies[0].kind, "sequential-name-duplicated");
    }
}
