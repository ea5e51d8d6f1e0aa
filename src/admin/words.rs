//! Four-letter words (`ruok`, `srvr`, `mntr`...), answered on the client port
//! in ZooKeeper's own formats so existing monitoring keeps working.

use std::fmt::Write;

use super::{Figure, VERSION};
use crate::server::Server;

const WORDS: [&str; 16] =
    ["ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "envi", "wchs", "wchc", "wchp", "dump", "isro", "srst", "dirs", "hash"];

/// If the first four bytes of a connection spell a known word, that word.
pub fn four_letter_word(first: u32) -> Option<&'static str> {
    let bytes = first.to_be_bytes();
    WORDS.iter().copied().find(|w| w.as_bytes() == bytes)
}

/// The answer to a four-letter word.
pub fn answer(server: &Server, word: &str) -> String {
    if !server.config.four_letter_allowed(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    if !server.answering() && !super::answers_when_not_serving(word) {
        return "This ZooKeeper instance is not currently serving requests\n".into();
    }
    match word {
        "ruok" => "imok".into(),
        "srvr" => srvr(server, false),
        "stat" => srvr(server, true),
        "mntr" => {
            let mut s = String::new();
            for (k, v) in super::monitor(server) {
                let _ = writeln!(s, "zk_{k}\t{v}");
            }
            s
        }
        "conf" => {
            let mut s = String::new();
            for (k, _, v) in super::configuration(server) {
                let _ = writeln!(s, "{k}={v}");
            }
            s
        }
        "cons" => format!("{}\n", server.connections.describe(true)),
        "crst" => {
            server.connections.reset();
            "Connection stats reset.\n".into()
        }
        "envi" => {
            let mut s = String::from("Environment:\n");
            for (k, v) in super::environment() {
                let _ = writeln!(s, "{k}={v}");
            }
            s
        }
        "wchs" => {
            let (conns, paths, watches) = super::watch_summary(server);
            format!("{conns} connections watching {paths} paths\nTotal watches:{watches}\n")
        }
        "wchc" => {
            let mut s = String::new();
            for (session, paths) in super::watches_by_session(server) {
                let _ = writeln!(s, "0x{session:x}");
                for p in paths {
                    let _ = writeln!(s, "\t{p}");
                }
            }
            // ZooKeeper ends the dump with an empty line.
            s.push('\n');
            s
        }
        "wchp" => {
            let mut s = String::new();
            for (path, sessions) in super::watches_by_path(server) {
                let _ = writeln!(s, "{path}");
                for session in sessions {
                    let _ = writeln!(s, "\t0x{session:x}");
                }
            }
            s.push('\n');
            s
        }
        "dump" => dump(server),
        "isro" => if server.read_only_now() { "ro" } else { "rw" }.into(),
        "srst" => {
            super::reset_server_stats(server);
            "Server stats reset.\n".into()
        }
        // As ZooKeeper's `hash`: the digest of the applied tree at its zxid.
        "hash" => {
            let (zxid, digest) = super::tree_hash(server);
            format!("{zxid:x}: {digest}\n")
        }
        "dirs" => format!("datadir_size: {}\nlogdir_size: {}\n", super::dir_size(&server.config.data_dir), super::log_size(server)),
        _ => String::new(),
    }
}

fn srvr(server: &Server, with_clients: bool) -> String {
    let sum = super::summary(server);
    let (min, avg, max) = sum.latency;
    let mut s = format!("Zookeeper version: {VERSION}, built for paddock\n");
    if with_clients {
        s.push_str("Clients:\n");
        let _ = writeln!(s, "{}", server.connections.describe(false));
    }
    let _ = writeln!(s, "Latency min/avg/max: {min}/{}/{max}", Figure::Float(avg));
    let _ = writeln!(s, "Received: {}", sum.received);
    let _ = writeln!(s, "Sent: {}", sum.sent);
    let _ = writeln!(s, "Connections: {}", sum.connections);
    let _ = writeln!(s, "Outstanding: {}", sum.outstanding);
    let _ = writeln!(s, "Zxid: 0x{:x}", sum.zxid);
    let _ = writeln!(s, "Mode: {}", sum.mode);
    let _ = writeln!(s, "Node count: {}", sum.nodes);
    s
}

fn dump(server: &Server) -> String {
    let dump = super::session_dump(server);
    let sessions: usize = dump.expiring.values().map(Vec::len).sum();
    let mut s = format!("SessionTracker dump:\nSession Sets ({})/({sessions}):\n", dump.expiring.len());
    for (at, ids) in &dump.expiring {
        let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(*at));
        for id in ids {
            let _ = writeln!(s, "\t0x{id:x}");
        }
    }
    let _ = writeln!(s, "ephemeral nodes dump:\nSessions with Ephemerals ({}):", dump.ephemerals.len());
    for (id, paths) in &dump.ephemerals {
        let _ = writeln!(s, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    s
}

/// Epoch milliseconds as Java's `Date.toString()` writes them in UTC
/// (`Sat Dec 05 13:17:54 UTC 2026`), the form ZooKeeper's `dump` uses.
fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (a Thursday), in 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_java_writes_them() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_796_477_874_000), "Sat Dec 05 13:37:54 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn recognises_words_only() {
        assert_eq!(four_letter_word(u32::from_be_bytes(*b"ruok")), Some("ruok"));
        assert_eq!(four_letter_word(u32::from_be_bytes(*b"mntr")), Some("mntr"));
        assert_eq!(four_letter_word(45), None);
    }
}
