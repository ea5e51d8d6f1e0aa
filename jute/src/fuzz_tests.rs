//! Property test: every record's decoder, fed random and mutated bytes,
//! returns (`Ok` or `Err`) without panicking, and whatever it accepts
//! re-encodes to at most the bytes it was given and decodes back equal.
//!
//! Inputs are random byte strings and mutations (bit flips, truncations,
//! hostile lengths and counts, inserted, deleted and spliced bytes) of valid
//! encodings of sample values of every record type. A tiny xorshift PRNG keeps
//! the crate free of test dependencies. The seed and the number of rounds come
//! from `JUTE_FUZZ_SEED` and `JUTE_FUZZ_ROUNDS` (a failure prints both and the
//! offending input in hex).

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::*;

/// xorshift64* (Vigna): small, fast, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values a length, count or enum field is most likely to choke on.
fn hostile_i32(rng: &mut Rng, len: usize) -> i32 {
    let len = len as i32;
    let random = rng.next() as i32;
    *rng.pick(&[-1, -2, 0, 1, i32::MIN, i32::MAX, 0x00ff_ffff, 0x0100_0000, 0x7fff_0000, 1 << 20, len, len + 1, len - 4, random])
}

/// Applies 1 to 4 random mutations to `buf`; `other` is another valid encoding to splice from.
fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        let len = buf.len();
        match rng.below(11) {
            // flip one to four bits
            0 if len > 0 => {
                for _ in 0..1 + rng.below(4) {
                    let bit = rng.below(len * 8);
                    buf[bit / 8] ^= 1 << (bit % 8);
                }
            }
            // truncate
            1 => buf.truncate(rng.below(len + 1)),
            // a hostile length / count / discriminant anywhere
            2 if len >= 4 => {
                let pos = rng.below(len - 3);
                let v = hostile_i32(rng, len - pos);
                buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
            }
            // a huge count or length where a small one was (lengths and counts are small ints)
            3 if len >= 4 => {
                let small: Vec<usize> =
                    (0..len - 3).filter(|&p| (0..=32).contains(&i32::from_be_bytes(buf[p..p + 4].try_into().unwrap()))).collect();
                if !small.is_empty() {
                    let pos = *rng.pick(&small);
                    let v = *rng.pick(&[i32::MAX, 0x1000_0000, 1_000_000, 65_536, (len - pos) as i32 + 1]);
                    buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            // overwrite a byte with an edge value or a random one
            4 if len > 0 => {
                let pos = rng.below(len);
                let random = rng.next() as u8;
                buf[pos] = *rng.pick(&[0x00, 0xff, 0x7f, 0x80, 0x01, random]);
            }
            // insert random bytes
            5 => {
                let pos = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let ins = rng.bytes(n);
                buf.splice(pos..pos, ins);
            }
            // delete a range
            6 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(8)).min(len);
                buf.drain(a..b);
            }
            // duplicate a range in place
            7 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                let dup = buf[a..b].to_vec();
                buf.splice(b..b, dup);
            }
            // splice in part of another record's encoding
            8 if !other.is_empty() => {
                let a = rng.below(other.len());
                let b = (a + 1 + rng.below(32)).min(other.len());
                let pos = rng.below(len + 1);
                buf.splice(pos..pos, other[a..b].iter().copied());
            }
            // invalid UTF-8 in place of a byte
            9 if len > 0 => {
                let pos = rng.below(len);
                buf[pos] = *rng.pick(&[0xc3, 0xe2, 0xf0, 0xfe]);
            }
            // random tail
            _ => {
                let n = rng.below(24);
                let tail = rng.bytes(n);
                buf.extend_from_slice(&tail);
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Decodes `input` as `T`: no panic; an accepted value re-encodes to no more
/// bytes than it came from and decodes back to itself. True if accepted.
fn check_decode<T: Record + PartialEq + Debug>(name: &str, input: &[u8], seed: u64) -> bool {
    let decoded = catch_unwind(AssertUnwindSafe(|| T::from_bytes(input)))
        .unwrap_or_else(|_| panic!("{name}::from_bytes panicked (JUTE_FUZZ_SEED={seed}) on input {}", hex(input)));
    if let Ok(value) = decoded {
        let again = value.to_bytes();
        assert!(
            again.len() <= input.len(),
            "{name}: decoded {value:?} re-encodes to {} bytes, more than the {} it came from (seed {seed}, input {})",
            again.len(),
            input.len(),
            hex(input)
        );
        assert_eq!(
            T::from_bytes(&again).as_ref(),
            Ok(&value),
            "{name}: re-encoding does not decode back (seed {seed}, input {})",
            hex(input)
        );
        return true;
    }
    false
}

type Checker = fn(&str, &[u8], u64) -> bool;

/// One record type: its name, its checker, and valid encodings of sample values.
struct Target {
    name: &'static str,
    check: Checker,
    samples: Vec<Vec<u8>>,
}

fn target<T: Record + PartialEq + Debug>(name: &'static str, samples: Vec<T>) -> Target {
    Target { name, check: check_decode::<T>, samples: samples.iter().map(|s| s.to_bytes().to_vec()).collect() }
}

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0002,
        mzxid: 7,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_500,
        version: 3,
        cversion: -2,
        aversion: 1,
        ephemeral_owner: 0x1234_5678_9abc,
        data_length: 5,
        num_children: 2,
        pzxid: 9,
    }
}

fn acls() -> Vec<Acl> {
    vec![
        Acl::new(perms::ALL, Id::anyone()),
        Acl::new(perms::READ | perms::WRITE, Id::new("digest", "user1:+7K83PhyQ3ijGj0ADmljf0quVwQ=")),
        Acl::new(perms::READ, Id::new("ip", "10.0.0.0/8")),
    ]
}

fn create(path: &str, flags: i32) -> CreateRequest {
    CreateRequest { path: path.into(), data: Some(b"data".to_vec()), acl: acls(), flags }
}

/// Every record type of the crate, each with a few sample values.
fn targets() -> Vec<Target> {
    let s = stat();
    let strings = |n: usize| (0..n).map(|i| format!("/a/path/{i}")).collect::<Vec<_>>();
    let ttl = CreateTtlRequest { path: "/t".into(), data: None, acl: acls(), flags: 5, ttl: 60_000 };
    vec![
        // data
        target("Stat", vec![s, Stat::default()]),
        target("Id", vec![Id::anyone(), Id::new("digest", "u:p"), Id::default()]),
        target("Acl", acls()),
        // session
        target(
            "ConnectRequest",
            vec![
                ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0x32,
                    timeout: 6000,
                    session_id: 0,
                    passwd: vec![0; 16],
                    read_only: Some(false),
                },
                ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 1,
                    timeout: 30_000,
                    session_id: 0x72,
                    passwd: vec![9; 16],
                    read_only: None,
                },
            ],
        ),
        target(
            "ConnectResponse",
            vec![
                ConnectResponse { protocol_version: 0, timeout: 6000, session_id: 0x1234, passwd: vec![3; 16], read_only: Some(false) },
                ConnectResponse { protocol_version: 0, timeout: 0, session_id: 0, passwd: vec![0; 16], read_only: None },
            ],
        ),
        target("RequestHeader", vec![RequestHeader { xid: 7, op: 4 }, RequestHeader { xid: xid::PING, op: 11 }]),
        target("ReplyHeader", vec![ReplyHeader { xid: 7, zxid: 0x99, err: 0 }, ReplyHeader { xid: -1, zxid: -1, err: -101 }]),
        target("WatcherEvent", vec![WatcherEvent { event_type: 3, state: 3, path: "/w".into() }]),
        // requests
        target("CreateRequest", vec![create("/c", 0), create("/s-", 2), CreateRequest::default()]),
        target("CreateTtlRequest", vec![ttl.clone()]),
        target("DeleteRequest", vec![DeleteRequest { path: "/d".into(), version: -1 }]),
        target("ExistsRequest", vec![ExistsRequest { path: "/e".into(), watch: true }]),
        target("GetDataRequest", vec![GetDataRequest { path: "/g".into(), watch: false }]),
        target(
            "SetDataRequest",
            vec![
                SetDataRequest { path: "/s".into(), data: Some(vec![1, 2, 3]), version: 4 },
                SetDataRequest { path: "/s".into(), data: None, version: -1 },
            ],
        ),
        target("GetAclRequest", vec![GetAclRequest { path: "/acl".into() }]),
        target("SetAclRequest", vec![SetAclRequest { path: "/acl".into(), acl: acls(), version: 2 }]),
        target("GetChildrenRequest", vec![GetChildrenRequest { path: "/k".into(), watch: true }]),
        target("GetChildren2Request", vec![GetChildren2Request { path: "/k".into(), watch: false }]),
        target("SyncRequest", vec![SyncRequest { path: "/".into() }]),
        target("CheckVersionRequest", vec![CheckVersionRequest { path: "/v".into(), version: 5 }]),
        target("GetAllChildrenNumberRequest", vec![GetAllChildrenNumberRequest { path: "/n".into() }]),
        target("GetEphemeralsRequest", vec![GetEphemeralsRequest { prefix_path: "/e".into() }]),
        target("AddWatchRequest", vec![AddWatchRequest { path: "/w".into(), mode: 1 }]),
        target("RemoveWatchesRequest", vec![RemoveWatchesRequest { path: "/w".into(), watch_type: 3 }]),
        target("CheckWatchesRequest", vec![CheckWatchesRequest { path: "/w".into(), watch_type: 1 }]),
        target(
            "SetWatches",
            vec![SetWatches { relative_zxid: 0x77, data_watches: strings(3), exist_watches: strings(1), child_watches: vec![] }],
        ),
        target(
            "SetWatches2",
            vec![SetWatches2 {
                relative_zxid: 0x77,
                data_watches: strings(2),
                exist_watches: vec![],
                child_watches: strings(1),
                persistent_watches: strings(2),
                persistent_recursive_watches: strings(3),
            }],
        ),
        target("AuthPacket", vec![AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"user1:pass1".to_vec()) }]),
        target("GetSaslRequest", vec![GetSaslRequest { token: vec![0x60, 0x82, 1, 2] }]),
        target(
            "ReconfigRequest",
            vec![
                ReconfigRequest {
                    joining_servers: "server.4=h:2888:3888".into(),
                    leaving_servers: "".into(),
                    new_members: "".into(),
                    cur_config_id: -1,
                },
                ReconfigRequest::default(),
            ],
        ),
        target(
            "MultiRequest",
            vec![
                MultiRequest {
                    ops: vec![
                        MultiOp::Create(create("/m", 0)),
                        MultiOp::Create2(create("/m2", 2)),
                        MultiOp::CreateContainer(create("/mc", 4)),
                        MultiOp::CreateTtl(ttl.clone()),
                        MultiOp::Delete(DeleteRequest { path: "/m".into(), version: -1 }),
                        MultiOp::SetData(SetDataRequest { path: "/m2".into(), data: Some(vec![7]), version: 0 }),
                        MultiOp::Check(CheckVersionRequest { path: "/m2".into(), version: 1 }),
                    ],
                },
                MultiRequest {
                    ops: vec![
                        MultiOp::GetData(GetDataRequest { path: "/r".into(), watch: false }),
                        MultiOp::GetChildren(GetChildrenRequest { path: "/r".into(), watch: false }),
                    ],
                },
                MultiRequest::default(),
            ],
        ),
        target("MultiHeader", vec![MultiHeader { op: 1, done: false, err: -1 }, MultiHeader::END]),
        // responses
        target("CreateResponse", vec![CreateResponse { path: "/c0000000001".into() }]),
        target("Create2Response", vec![Create2Response { path: "/c".into(), stat: s }]),
        target("ExistsResponse", vec![ExistsResponse { stat: s }]),
        target(
            "GetDataResponse",
            vec![GetDataResponse { data: Some(b"hello".to_vec()), stat: s }, GetDataResponse { data: None, stat: s }],
        ),
        target("SetDataResponse", vec![SetDataResponse { stat: s }]),
        target("GetAclResponse", vec![GetAclResponse { acl: acls(), stat: s }]),
        target("SetAclResponse", vec![SetAclResponse { stat: s }]),
        target("GetChildrenResponse", vec![GetChildrenResponse { children: vec!["a".into(), "b".into(), "".into()] }]),
        target("GetChildren2Response", vec![GetChildren2Response { children: vec!["x".into()], stat: s }]),
        target("SyncResponse", vec![SyncResponse { path: "/".into() }]),
        target("GetAllChildrenNumberResponse", vec![GetAllChildrenNumberResponse { total_number: 42 }]),
        target("GetEphemeralsResponse", vec![GetEphemeralsResponse { ephemerals: strings(4) }]),
        target("SetSaslResponse", vec![SetSaslResponse { token: Some(vec![1, 2, 3]) }, SetSaslResponse { token: None }]),
        target("ClientInfo", vec![ClientInfo { auth_scheme: "ip".into(), user: "127.0.0.1".into() }]),
        target(
            "WhoAmIResponse",
            vec![WhoAmIResponse {
                client_info: vec![
                    ClientInfo { auth_scheme: "ip".into(), user: "127.0.0.1".into() },
                    ClientInfo { auth_scheme: "digest".into(), user: "user1".into() },
                ],
            }],
        ),
        target("ErrorResponse", vec![ErrorResponse { err: -101 }]),
        target(
            "MultiResponse",
            vec![
                MultiResponse {
                    results: vec![
                        MultiResult::Create("/a".into()),
                        MultiResult::Create2 { path: "/b".into(), stat: s },
                        MultiResult::Delete,
                        MultiResult::SetData(s),
                        MultiResult::Check,
                        MultiResult::GetData { data: Some(b"x".to_vec()), stat: s },
                        MultiResult::GetChildren(vec!["c".into()]),
                        MultiResult::Error(-101),
                    ],
                },
                MultiResponse { results: vec![MultiResult::Error(0), MultiResult::Error(-103), MultiResult::Error(-2)] },
            ],
        ),
    ]
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn every_decoder_survives_random_and_mutated_bytes() {
    let seed = env_u64("JUTE_FUZZ_SEED", 0x00c0_ffee);
    let rounds = env_u64("JUTE_FUZZ_ROUNDS", 20_000) as usize;
    let targets = targets();
    let all: Vec<&Vec<u8>> = targets.iter().flat_map(|t| t.samples.iter()).collect();
    let mut rng = Rng::new(seed);
    let (mut inputs, mut accepted) = (0usize, 0usize);
    for t in &targets {
        // every sample itself, and each of its prefixes
        for s in &t.samples {
            for cut in 0..=s.len() {
                (t.check)(t.name, &s[..cut], seed);
            }
        }
        for _ in 0..rounds {
            let input = match rng.below(10) {
                // pure noise, mostly short, sometimes long
                0 | 1 => {
                    let n = if rng.one_in(8) { rng.below(4096) } else { rng.below(64) };
                    rng.bytes(n)
                }
                // another type's encoding, mutated (wrong record for the bytes)
                2 => {
                    let mut b = rng.pick(&all).to_vec();
                    let other = rng.pick(&all).to_vec();
                    mutate(&mut rng, &mut b, &other);
                    b
                }
                // this type's encoding, mutated
                _ => {
                    let mut b = rng.pick(&t.samples).clone();
                    let other = rng.pick(&all).to_vec();
                    mutate(&mut rng, &mut b, &other);
                    b
                }
            };
            accepted += (t.check)(t.name, &input, seed) as usize;
            inputs += 1;
        }
    }
    // Both sides of the property are exercised: many inputs decode, many don't.
    assert!(accepted * 20 > inputs && (inputs - accepted) * 20 > inputs, "{accepted} of {inputs} inputs decoded");
}

/// The `Reader` primitives fail without consuming anything, whatever the bytes.
#[test]
fn reader_primitives_consume_nothing_on_failure() {
    let seed = env_u64("JUTE_FUZZ_SEED", 0x00c0_ffee);
    let mut rng = Rng::new(seed ^ 0x5a5a);
    for _ in 0..20_000 {
        let n = rng.below(40);
        let mut bytes = rng.bytes(n);
        if bytes.len() >= 4 && rng.one_in(2) {
            // a plausible length prefix: small, -1, or just past the end
            let v = *rng.pick(&[-1i32, 0, 1, 2, (n as i32) - 4, (n as i32) - 3, -2, i32::MIN]);
            bytes[..4].copy_from_slice(&v.to_be_bytes());
        }
        let mut r = Reader::new(&bytes);
        while !r.is_empty() {
            let before = r.remaining();
            let ok = match rng.below(6) {
                0 => r.read_i32().is_ok(),
                1 => r.read_i64().is_ok(),
                2 => r.read_bool().is_ok(),
                3 => r.read_buffer().is_ok(),
                4 => r.read_opt_buffer().is_ok(),
                _ => r.read_string().is_ok(),
            };
            if !ok {
                assert_eq!(r.remaining(), before, "a failed read consumed bytes of {}", hex(&bytes));
                break;
            }
            assert!(r.remaining() < before, "a successful read consumed nothing");
        }
    }
}
