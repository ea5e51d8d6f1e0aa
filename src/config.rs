//! Server configuration: defaults that need no file, ZooKeeper's own zoo.cfg
//! format, and command-line overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A value is malformed.
    #[error("{file}:{line}: {key}: {reason}")]
    Value {
        /// The file.
        file: String,
        /// Line number.
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The settings contradict each other.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// One ensemble member, from a `server.N=host:peerPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Host name or address.
    pub host: String,
    /// Port paddock's Raft and forwarding traffic uses (ZooKeeper's quorum port).
    pub peer_port: u16,
    /// The client port, if the line names one.
    pub client_port: Option<u16>,
    /// The client port's address, if the line names one (`;host:port`).
    pub client_host: Option<String>,
    /// An observer (`:observer`): it receives every write and serves clients
    /// but never votes, so it adds no weight to a quorum (a Raft learner).
    pub observer: bool,
    /// The line's value as written (`host:peer:election[:role][;client]`).
    pub spec: String,
}

impl Peer {
    /// `host:peerPort`.
    pub fn peer_addr(&self) -> String {
        format!("{}:{}", self.host, self.peer_port)
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the client port binds to.
    pub client_address: String,
    /// Client port (0 picks a free one).
    pub client_port: u16,
    /// Where RocksDB keeps the state (and the log, unless `data_log_dir`).
    pub data_dir: PathBuf,
    /// Where the Raft log goes instead (ZooKeeper's `dataLogDir`: a disk of
    /// its own keeps the log's fsyncs clear of snapshot and state writes).
    pub data_log_dir: Option<PathBuf>,
    /// ZooKeeper's basic time unit, ms.
    pub tick_time_ms: u64,
    /// Ticks a server may be out of touch with a quorum before it stops
    /// serving clients (ZooKeeper's `syncLimit`).
    pub sync_limit: u64,
    /// Ticks a server joining through reconfig may take to catch up
    /// (ZooKeeper's `initLimit`: the time a follower has to sync).
    pub init_limit: u64,
    /// Lowest session timeout granted, ms (default 2 x tick).
    pub min_session_timeout_ms: Option<u64>,
    /// Highest session timeout granted, ms (default 20 x tick).
    pub max_session_timeout_ms: Option<u64>,
    /// Largest request accepted (jute.maxbuffer), bytes.
    pub max_buffer: usize,
    /// This server's id (ZooKeeper's myid).
    pub server_id: u64,
    /// Four-letter words answered (`*` for all).
    pub four_letter_whitelist: Vec<String>,
    /// How often the leader looks for empty containers and expired TTL nodes, ms
    /// (ZooKeeper's `znode.container.checkIntervalMs`).
    pub container_check_interval_ms: u64,
    /// Transactions between snapshots (ZooKeeper's `snapCount`); older log is purged.
    pub snap_count: u64,
    /// Ensemble members by id (empty: a single node).
    pub peers: std::collections::BTreeMap<u64, Peer>,
    /// Serve reads to clients that allow it while out of touch with a
    /// quorum (ZooKeeper's `readonlymode.enabled`).
    pub read_only_mode: bool,
    /// Bind the peer port on every address rather than the `server.N` line's
    /// host (ZooKeeper's `quorumListenOnAllIPs`, for hosts behind NAT or
    /// with several interfaces).
    pub quorum_listen_on_all_ips: bool,
    /// ZooKeeper's `peerType` (true: observer), checked against this
    /// server's own `server.N` line, which wins as on ZooKeeper.
    pub peer_type_observer: Option<bool>,
    /// The `super` identity's digest (`super:base64hash`), as ZooKeeper's
    /// `zookeeper.DigestAuthenticationProvider.superDigest`.
    pub super_digest: Option<String>,
    /// A JAAS file whose `Server` section lists SASL users (zoo.cfg
    /// `jaasLoginConfig`, or `java.security.auth.login.config` as ZooKeeper's
    /// JVM property is named). None: SASL authentication is refused.
    pub jaas_login_config: Option<PathBuf>,
    /// The JAAS section read for SASL users (ZooKeeper's
    /// `zookeeper.sasl.serverconfig`, default `Server`).
    pub sasl_server_section: String,
    /// How Kerberos client principals become `sasl` identities
    /// (`zookeeper.security.auth_to_local`,
    /// `zookeeper.kerberos.removeHostFromPrincipal`, `...RealmFromPrincipal`);
    /// its default realm is filled in from `krb5_conf` at start.
    pub kerberos_naming: crate::sasl::KerberosNaming,
    /// The krb5.conf whose default realm the `DEFAULT` rule compares with
    /// (`java.security.krb5.conf`; else KRB5_CONFIG, else /etc/krb5.conf),
    /// also given to the Kerberos library as KRB5_CONFIG when that is unset.
    pub krb5_conf: Option<PathBuf>,
    /// Quorum SASL between members (`quorum.auth.*`).
    pub quorum_auth: QuorumAuthConfig,
    /// `enforce.auth.enabled`: only connections holding an identity of one
    /// of `enforce_auth_schemes` may send requests other than auth and sasl.
    pub enforce_auth: bool,
    /// `enforce.auth.schemes` (comma-separated); `sasl` alone with
    /// `sessionRequireClientSASLAuth=true`, which also turns enforcement on.
    pub enforce_auth_schemes: Vec<String>,
    /// `sessionRequireClientSASLAuth`: as `enforce.auth` with `sasl`, and
    /// a failed SASL exchange is answered SessionClosedRequireSasl.
    pub require_sasl: bool,
    /// `allowSaslFailedClients`: a failed SASL exchange keeps the connection
    /// (unless SASL is required).
    pub allow_sasl_failed: bool,
    /// `letAnySaslUserDoX`: the `sasl` ACL id every SASL user holds.
    pub any_sasl_user_id: Option<String>,
    /// `SASLAuthenticationProvider.superPassword`: DIGEST-MD5 password of
    /// the SASL user `super` (which matches every `sasl` entry).
    pub sasl_super_password: Option<String>,
    /// Whether the `reconfig` op may change membership (ZooKeeper's
    /// `reconfigEnabled`, default false).
    pub reconfig_enabled: bool,
    /// ZooKeeper's `standaloneEnabled` (default true): while set, a reconfig
    /// may not leave fewer than two participants.
    pub standalone_enabled: bool,
    /// SASL user names that are also super users (ZooKeeper's
    /// `zookeeper.superUser`, `superUser` in zoo.cfg).
    pub sasl_super_users: Vec<String>,
    /// Most connections one client IP address may hold open (ZooKeeper's
    /// `maxClientCnxns`, default 60; 0 for no limit).
    pub max_client_cnxns: usize,
    /// Most client connections the server holds open in all (ZooKeeper's
    /// `maxCnxns`, default 0: no limit).
    pub max_cnxns: usize,
    /// Pending connections the client ports queue before they are accepted
    /// (ZooKeeper's `clientPortListenBacklog`, default -1: the system's
    /// limit, net.core.somaxconn).
    pub client_port_listen_backlog: i64,
    /// An fsync of the log slower than this many milliseconds is counted and
    /// warned of (ZooKeeper's `fsync.warningthresholdms`, default 1000).
    pub fsync_warning_threshold_ms: i64,
    /// The TLS client port (ZooKeeper's `secureClientPort`; 0 picks a free one).
    pub secure_client_port: Option<u16>,
    /// Address the TLS client port binds to (`secureClientPortAddress`); None: the client address.
    pub secure_client_address: Option<String>,
    /// The secure port's certificate chain and private key (`ssl.keyStore.location`).
    pub ssl_key_store: Option<PathBuf>,
    /// The CA certificates client certificates must chain to (`ssl.trustStore.location`).
    pub ssl_trust_store: Option<PathBuf>,
    /// The key store's type and password (`ssl.keyStore.type`, `.password`, `.passwordPath`).
    pub ssl_key_store_secrets: StoreSecrets,
    /// The trust store's type and password.
    pub ssl_trust_store_secrets: StoreSecrets,
    /// The quorum key store's type and password (`ssl.quorum.keyStore.*`).
    pub ssl_quorum_key_store_secrets: StoreSecrets,
    /// The quorum trust store's type and password.
    pub ssl_quorum_trust_store_secrets: StoreSecrets,
    /// Whether clients must present a certificate (`ssl.clientAuth`, default need).
    pub ssl_client_auth: ClientAuth,
    /// TLS between ensemble members (`sslQuorum`).
    pub ssl_quorum: bool,
    /// Read the quorum's stores again when their files change
    /// (`sslQuorumReloadCertFiles`, ZooKeeper 3.8; default off).
    pub ssl_quorum_reload: bool,
    /// Read the client port's stores again when their files change
    /// (`client.certReload`, ZooKeeper 3.9; default off).
    pub client_cert_reload: bool,
    /// Key store (key and certificate chain) members present to each
    /// other (`ssl.quorum.keyStore.location`).
    pub ssl_quorum_key_store: Option<PathBuf>,
    /// Store of the CAs that members' certificates must chain to
    /// (`ssl.quorum.trustStore.location`).
    pub ssl_quorum_trust_store: Option<PathBuf>,
    /// Whether a member's certificate must name the address it is dialled at
    /// (`ssl.quorum.hostnameVerification`, default true).
    pub ssl_quorum_hostname_verification: bool,
    /// No ACL is checked, for anyone (ZooKeeper's `skipACL=yes`, its
    /// `zookeeper.skipACL` property): every client may do everything.
    pub skip_acl: bool,
    /// Hard quotas refuse the writes that would break them (ZooKeeper's
    /// `enforceQuota`, `zookeeper.enforceQuota`; default false).
    pub enforce_quota: bool,
    /// Every read waits for the leader's read point first, so it sees every
    /// write acknowledged before it anywhere (`linearizableReads`, paddock's
    /// own key; ZooKeeper's reads are only sequentially consistent).
    pub linearizable_reads: bool,
    /// Write the audit log (`audit.enable`, ZooKeeper 3.6+; see `audit`).
    pub audit_enabled: bool,
    /// Whether the peer port also takes TLS when members dial plain, or
    /// plain when they dial TLS (ZooKeeper's `portUnification`): the middle
    /// steps of moving a running ensemble to (or from) `sslQuorum`.
    pub quorum_port_unification: bool,
    /// Whether the plain client port also accepts TLS connections
    /// (ZooKeeper's `client.portUnification`), with the `ssl.*` settings.
    pub port_unification: bool,
    /// A client certificate subject (RFC 2253) that is also a super user
    /// (ZooKeeper's `zookeeper.X509AuthenticationProvider.superUser`).
    pub x509_super_user: Option<String>,
    /// Whether the HTTP admin server runs (ZooKeeper's `admin.enableServer`, default true).
    pub admin_enabled: bool,
    /// Address the admin server binds to (`admin.serverAddress`); None: the client address.
    pub admin_address: Option<String>,
    /// The admin server's port (`admin.serverPort`, default 8080; 0 picks a free one).
    pub admin_port: u16,
    /// Where the admin commands live (`admin.commandURL`, default `/commands`).
    pub admin_command_url: String,
    /// Whether `/metrics` is served in Prometheus's text format
    /// (`metricsProvider.className=...PrometheusMetricsProvider`).
    pub metrics_enabled: bool,
    /// Address the metrics port binds to (`metricsProvider.httpHost`; default:
    /// the client port's address).
    pub metrics_address: Option<String>,
    /// The metrics port (`metricsProvider.httpPort`, default 7000).
    pub metrics_port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_address: "127.0.0.1".into(),
            client_port: 2181,
            data_dir: PathBuf::from("data"),
            data_log_dir: None,
            tick_time_ms: 2000,
            sync_limit: 5,
            init_limit: 10,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            max_buffer: 0xfffff,
            server_id: 1,
            four_letter_whitelist: vec!["*".into()],
            container_check_interval_ms: 60_000,
            super_digest: None,
            reconfig_enabled: false,
            standalone_enabled: true,
            jaas_login_config: None,
            sasl_server_section: "Server".into(),
            kerberos_naming: Default::default(),
            quorum_auth: QuorumAuthConfig::default(),
            enforce_auth: false,
            enforce_auth_schemes: Vec::new(),
            require_sasl: false,
            allow_sasl_failed: false,
            any_sasl_user_id: None,
            sasl_super_password: None,
            krb5_conf: None,
            sasl_super_users: Vec::new(),
            peers: std::collections::BTreeMap::new(),
            peer_type_observer: None,
            quorum_listen_on_all_ips: false,
            read_only_mode: false,
            snap_count: 100_000,
            max_client_cnxns: 60,
            max_cnxns: 0,
            client_port_listen_backlog: -1,
            fsync_warning_threshold_ms: 1000,
            secure_client_port: None,
            secure_client_address: None,
            ssl_key_store: None,
            ssl_trust_store: None,
            ssl_key_store_secrets: StoreSecrets::default(),
            ssl_trust_store_secrets: StoreSecrets::default(),
            ssl_quorum_key_store_secrets: StoreSecrets::default(),
            ssl_quorum_trust_store_secrets: StoreSecrets::default(),
            ssl_client_auth: ClientAuth::Need,
            ssl_quorum: false,
            ssl_quorum_reload: false,
            client_cert_reload: false,
            ssl_quorum_key_store: None,
            ssl_quorum_trust_store: None,
            ssl_quorum_hostname_verification: true,
            quorum_port_unification: false,
            linearizable_reads: false,
            audit_enabled: false,
            skip_acl: false,
            enforce_quota: false,
            x509_super_user: None,
            port_unification: false,
            admin_enabled: true,
            admin_address: None,
            admin_port: 8080,
            admin_command_url: "/commands".into(),
            metrics_enabled: false,
            metrics_address: None,
            metrics_port: 7000,
        }
    }
}

impl Config {
    /// Reads a zoo.cfg file over the defaults.
    pub fn from_zoo_cfg(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        // As ZooKeeper: without clientPortAddress the client port (and so
        // the admin and metrics ports) listens on every interface, so the
        // zoo.cfg of a real deployment serves its remote clients unchanged.
        let mut cfg = Config { client_address: ALL_INTERFACES.into(), ..Config::default() };
        cfg.apply_zoo_cfg(&text, &path.display().to_string())?;
        if let Some(dynamic) = zoo_cfg_value(&text, "dynamicConfigFile") {
            cfg.apply_dynamic_cfg(path, dynamic)?;
        }
        if !cfg.peers.is_empty() {
            cfg.server_id = read_myid(&cfg.data_dir)?;
            // ZooKeeper 3.5+ configs give each member's client port (and
            // address) on its server.N line, in place of clientPort and
            // clientPortAddress: those, when present, win.
            if let Some(me) = cfg.peers.get(&cfg.server_id) {
                let given = |key: &str| zoo_cfg_value(&text, key).is_some();
                if let (Some(port), false) = (me.client_port, given("clientPort")) {
                    cfg.client_port = port;
                }
                if let (Some(host), false) = (me.client_host.clone(), given("clientPortAddress")) {
                    cfg.client_address = host;
                }
            }
        }
        cfg.validate()?;
        if let (Some(declared), Some(me)) = (cfg.peer_type_observer, cfg.peers.get(&cfg.server_id)) {
            if declared != me.observer {
                let name = |observer: bool| if observer { "observer" } else { "participant" };
                tracing::warn!(
                    "peerType={} does not match server.{}'s {}: following the server.N line, as ZooKeeper does",
                    name(declared),
                    cfg.server_id,
                    name(me.observer)
                );
            }
        }
        Ok(cfg)
    }

    /// Reads the members from `dynamicConfigFile` (ZooKeeper 3.5+, which
    /// moves the `server.N` lines of a reconfigurable ensemble there and
    /// names the file in zoo.cfg). As on ZooKeeper, zoo.cfg must then have
    /// no `server.N` lines and the file no `version` (its name carries it);
    /// other keys in it are ignored. A relative path is tried from the
    /// working directory, as ZooKeeper does, then beside zoo.cfg.
    fn apply_dynamic_cfg(&mut self, zoo_cfg: &Path, dynamic: &str) -> Result<(), ConfigError> {
        if !self.peers.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{} names a dynamicConfigFile, so its server.N lines must be in that file ({dynamic}), as ZooKeeper requires",
                zoo_cfg.display()
            )));
        }
        let mut file = PathBuf::from(dynamic);
        if file.is_relative() && !file.exists() {
            if let Some(beside) = zoo_cfg.parent().map(|dir| dir.join(dynamic)).filter(|p| p.exists()) {
                file = beside;
            }
        }
        let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read { path: file.clone(), source })?;
        if zoo_cfg_value(&text, "version").is_some() {
            return Err(ConfigError::Invalid(format!(
                "{}: a dynamic config file has no version line (ZooKeeper takes the version from the file name)",
                file.display()
            )));
        }
        // Only the members; blank lines keep the line numbers of errors.
        let member = |key: &str| ["server.", "group.", "weight."].iter().any(|p| key.starts_with(p));
        let members: String = text
            .lines()
            .map(|l| if l.split_once('=').is_some_and(|(k, _)| member(k.trim())) { l } else { "" })
            .collect::<Vec<_>>()
            .join("\n");
        self.apply_zoo_cfg(&members, &file.display().to_string())
    }

    /// Applies zoo.cfg `key=value` lines; unknown keys are ignored as ZooKeeper does.
    pub fn apply_zoo_cfg(&mut self, text: &str, file: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            let (key, value) = (key.trim(), value.trim());
            let err = |reason: String| ConfigError::Value { file: file.to_string(), line: i + 1, key: key.to_string(), reason };
            let num = |v: &str| v.parse::<u64>().map_err(|e| err(e.to_string()));
            let signed = |v: &str| v.parse::<i64>().map_err(|e| err(e.to_string()));
            if let Some((secrets, field)) = self.store_setting(key) {
                match field {
                    "type" => {
                        let kind = StoreKind::parse(value);
                        secrets.kind = Some(kind.ok_or_else(|| err(format!("{value} stores are not read: PEM, PKCS12 or JKS")))?);
                    }
                    "password" => secrets.password = Some(value.to_string()),
                    _ => secrets.password_path = Some(PathBuf::from(value)),
                }
                continue;
            }
            match key {
                "clientPort" => self.client_port = u16::try_from(num(value)?).map_err(|e| err(e.to_string()))?,
                "clientPortAddress" => self.client_address = value.to_string(),
                "dataDir" => self.data_dir = PathBuf::from(value),
                "dataLogDir" => self.data_log_dir = Some(PathBuf::from(value)),
                "tickTime" => self.tick_time_ms = num(value)?,
                "initLimit" => self.init_limit = num(value)?.max(1),
                "syncLimit" => self.sync_limit = num(value)?.max(1),
                "minSessionTimeout" => self.min_session_timeout_ms = Some(num(value)?),
                "maxSessionTimeout" => self.max_session_timeout_ms = Some(num(value)?),
                "jute.maxbuffer" => self.max_buffer = num(value)? as usize,
                "maxClientCnxns" => self.max_client_cnxns = num(value)? as usize,
                "clientPortListenBacklog" => self.client_port_listen_backlog = signed(value)?,
                "fsync.warningthresholdms" | "zookeeper.fsync.warningthresholdms" => self.fsync_warning_threshold_ms = signed(value)?,
                // As ZooKeeper: a negative limit means the default, none.
                "maxCnxns" | "zookeeper.maxCnxns" => self.max_cnxns = signed(value)?.max(0) as usize,
                "znode.container.checkIntervalMs" => self.container_check_interval_ms = num(value)?.max(1),
                "zookeeper.DigestAuthenticationProvider.superDigest" | "superDigest" => self.super_digest = Some(value.to_string()),
                "jaasLoginConfig" | "java.security.auth.login.config" => self.jaas_login_config = Some(PathBuf::from(value)),
                "sasl.serverconfig" | "zookeeper.sasl.serverconfig" => self.sasl_server_section = value.to_string(),
                "security.auth_to_local" | "zookeeper.security.auth_to_local" => {
                    self.kerberos_naming.auth_to_local = Some(value.to_string())
                }
                "kerberos.removeHostFromPrincipal" | "zookeeper.kerberos.removeHostFromPrincipal" => {
                    self.kerberos_naming.remove_host = value == "true"
                }
                "kerberos.removeRealmFromPrincipal" | "zookeeper.kerberos.removeRealmFromPrincipal" => {
                    self.kerberos_naming.remove_realm = value == "true"
                }
                "java.security.krb5.conf" => self.krb5_conf = Some(PathBuf::from(value)),
                "quorum.auth.enableSasl" => self.quorum_auth.enable_sasl = value == "true",
                "quorum.auth.learnerRequireSasl" => self.quorum_auth.learner_require_sasl = value == "true",
                "quorum.auth.serverRequireSasl" => self.quorum_auth.server_require_sasl = value == "true",
                "quorum.auth.learner.saslLoginContext" => self.quorum_auth.learner_context = value.to_string(),
                "quorum.auth.server.saslLoginContext" => self.quorum_auth.server_context = value.to_string(),
                "quorum.auth.kerberos.servicePrincipal" => self.quorum_auth.kerberos_service_principal = value.to_string(),
                "enforce.auth.enabled" | "zookeeper.enforce.auth.enabled" => self.enforce_auth = value == "true",
                "enforce.auth.schemes" | "zookeeper.enforce.auth.schemes" => {
                    self.enforce_auth_schemes = value.split(',').map(|s| s.trim().to_string()).collect()
                }
                "sessionRequireClientSASLAuth" | "zookeeper.sessionRequireClientSASLAuth" => {
                    self.require_sasl = value.eq_ignore_ascii_case("true")
                }
                "letAnySaslUserDoX" | "zookeeper.letAnySaslUserDoX" => self.any_sasl_user_id = Some(value.to_string()),
                "SASLAuthenticationProvider.superPassword" | "zookeeper.SASLAuthenticationProvider.superPassword" => {
                    self.sasl_super_password = Some(value.to_string())
                }
                "allowSaslFailedClients" | "zookeeper.allowSaslFailedClients" => {
                    self.allow_sasl_failed = value.eq_ignore_ascii_case("true")
                }
                key if is_super_user_key(key) => self.sasl_super_users.push(value.to_string()),
                "reconfigEnabled" => self.reconfig_enabled = value.eq_ignore_ascii_case("true"),
                "standaloneEnabled" => self.standalone_enabled = !value.eq_ignore_ascii_case("false"),
                "4lw.commands.whitelist" => {
                    self.four_letter_whitelist = value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
                }
                // ZooKeeper's forceSync=no acknowledges writes before they
                // are on disk; paddock never does (DESIGN.md), so say so.
                "forceSync" | "zookeeper.forceSync" if value.eq_ignore_ascii_case("no") => {
                    tracing::warn!("{file}:{}: forceSync=no is ignored: a write is acknowledged only once it is on disk", i + 1)
                }
                key if key.starts_with("group.") || key.starts_with("weight.") => {
                    tracing::warn!(
                        "{file}:{}: {key}: hierarchical quorums are not supported; a majority of the participants decides",
                        i + 1
                    )
                }
                key if key.starts_with("server.") => {
                    let id = key["server.".len()..].parse::<u64>().map_err(|e| err(e.to_string()))?;
                    let peer = parse_server_line(value).map_err(err)?;
                    self.peers.insert(id, peer);
                }
                "myid" => self.server_id = num(value)?,
                "readonlymode.enabled" | "zookeeper.readonlymode.enabled" => self.read_only_mode = value.eq_ignore_ascii_case("true"),
                "quorumListenOnAllIPs" => self.quorum_listen_on_all_ips = value.eq_ignore_ascii_case("true"),
                "peerType" => {
                    self.peer_type_observer = match value.to_ascii_lowercase().as_str() {
                        "observer" => Some(true),
                        "participant" => Some(false),
                        other => return Err(err(format!("unrecognised peer type {other:?}: participant or observer"))),
                    }
                }
                "snapCount" => self.snap_count = num(value)?.max(10),
                "secureClientPort" => self.secure_client_port = Some(u16::try_from(num(value)?).map_err(|e| err(e.to_string()))?),
                "secureClientPortAddress" => self.secure_client_address = Some(value.to_string()),
                "client.portUnification" | "zookeeper.client.portUnification" => self.port_unification = value.eq_ignore_ascii_case("true"),
                // ZooKeeper reads these as `zookeeper.ssl.*` properties.
                "ssl.keyStore.location" | "zookeeper.ssl.keyStore.location" => self.ssl_key_store = Some(value.into()),
                "ssl.trustStore.location" | "zookeeper.ssl.trustStore.location" => self.ssl_trust_store = Some(value.into()),
                "sslQuorum" => self.ssl_quorum = value.eq_ignore_ascii_case("true"),
                "sslQuorumReloadCertFiles" => self.ssl_quorum_reload = value.eq_ignore_ascii_case("true"),
                "client.certReload" | "zookeeper.client.certReload" => self.client_cert_reload = value.eq_ignore_ascii_case("true"),
                "linearizableReads" => self.linearizable_reads = value.eq_ignore_ascii_case("true"),
                "audit.enable" | "zookeeper.audit.enable" => self.audit_enabled = value.eq_ignore_ascii_case("true"),
                // ZooKeeper compares with "yes" exactly.
                "skipACL" | "zookeeper.skipACL" => self.skip_acl = value == "yes",
                "enforceQuota" | "zookeeper.enforceQuota" => self.enforce_quota = value.eq_ignore_ascii_case("true"),
                "portUnification" | "zookeeper.portUnification" => self.quorum_port_unification = value.eq_ignore_ascii_case("true"),
                "ssl.quorum.keyStore.location" | "zookeeper.ssl.quorum.keyStore.location" => self.ssl_quorum_key_store = Some(value.into()),
                "ssl.quorum.trustStore.location" | "zookeeper.ssl.quorum.trustStore.location" => {
                    self.ssl_quorum_trust_store = Some(value.into())
                }
                "ssl.quorum.hostnameVerification" | "zookeeper.ssl.quorum.hostnameVerification" => {
                    self.ssl_quorum_hostname_verification = !value.eq_ignore_ascii_case("false")
                }
                "X509AuthenticationProvider.superUser" | "zookeeper.X509AuthenticationProvider.superUser" => {
                    self.x509_super_user = Some(value.to_string())
                }
                "ssl.clientAuth" | "zookeeper.ssl.clientAuth" => {
                    self.ssl_client_auth = match value.to_ascii_lowercase().as_str() {
                        "need" | "required" => ClientAuth::Need,
                        "want" => ClientAuth::Want,
                        "none" => ClientAuth::None,
                        other => return Err(err(format!("{other} is not need, want or none"))),
                    }
                }
                "metricsProvider.className" => self.metrics_enabled = value.ends_with("PrometheusMetricsProvider"),
                "metricsProvider.httpHost" => self.metrics_address = Some(value.to_string()),
                "metricsProvider.httpPort" => self.metrics_port = u16::try_from(num(value)?).map_err(|e| err(e.to_string()))?,
                // ZooKeeper reads these as `zookeeper.admin.*` properties.
                "admin.enableServer" | "zookeeper.admin.enableServer" => self.admin_enabled = value.eq_ignore_ascii_case("true"),
                "admin.serverAddress" | "zookeeper.admin.serverAddress" => self.admin_address = Some(value.to_string()),
                "admin.serverPort" | "zookeeper.admin.serverPort" => {
                    self.admin_port = u16::try_from(num(value)?).map_err(|e| err(e.to_string()))?
                }
                "admin.commandURL" | "zookeeper.admin.commandURL" => {
                    let url = value.trim_end_matches('/');
                    self.admin_command_url = if url.starts_with('/') { url.to_string() } else { format!("/{url}") };
                }
                _ => {}
            }
        }
        self.validate_times()
    }

    /// The store secrets and field (`type`, `password`, `passwordPath`) a
    /// zoo.cfg key sets, if it is one of the four stores' (with or without
    /// the `zookeeper.` prefix of its system-property form).
    fn store_setting(&mut self, key: &str) -> Option<(&mut StoreSecrets, &'static str)> {
        let key = key.strip_prefix("zookeeper.").unwrap_or(key);
        let (store, field) = key.rsplit_once('.')?;
        let field = ["type", "password", "passwordPath"].into_iter().find(|f| *f == field)?;
        let secrets = match store {
            "ssl.keyStore" => &mut self.ssl_key_store_secrets,
            "ssl.trustStore" => &mut self.ssl_trust_store_secrets,
            "ssl.quorum.keyStore" => &mut self.ssl_quorum_key_store_secrets,
            "ssl.quorum.trustStore" => &mut self.ssl_quorum_trust_store_secrets,
            _ => return None,
        };
        Some((secrets, field))
    }

    /// The schemes a connection must hold an identity of before it may send
    /// requests other than auth and sasl; `None` when that is not enforced.
    pub fn enforced_auth_schemes(&self) -> Option<Vec<String>> {
        if self.require_sasl {
            Some(vec!["sasl".to_string()])
        } else if self.enforce_auth {
            Some(self.enforce_auth_schemes.clone())
        } else {
            None
        }
    }

    /// Checks the settings hang together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_times()?;
        if self.tls_wanted() {
            if self.ssl_key_store.is_none() {
                return Err(ConfigError::Invalid("secureClientPort and client.portUnification need ssl.keyStore.location".into()));
            }
            if self.ssl_client_auth != ClientAuth::None && self.ssl_trust_store.is_none() {
                return Err(ConfigError::Invalid("ssl.clientAuth=need or want (need is the default) needs ssl.trustStore.location".into()));
            }
        }
        if self.ssl_quorum || self.quorum_port_unification {
            let what = if self.ssl_quorum { "sslQuorum=true" } else { "portUnification=true" };
            let stores = [("keyStore", &self.ssl_quorum_key_store), ("trustStore", &self.ssl_quorum_trust_store)];
            for (name, store) in stores {
                if store.is_none() {
                    return Err(ConfigError::Invalid(format!("{what} needs ssl.quorum.{name}.location")));
                }
            }
        }
        let q = &self.quorum_auth;
        for (set, key) in [(q.learner_require_sasl, "learnerRequireSasl"), (q.server_require_sasl, "serverRequireSasl")] {
            if set && !q.enable_sasl {
                // As ZooKeeper's QuorumPeerConfig.
                return Err(ConfigError::Invalid(format!("quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.{key}")));
            }
        }
        if let Some(schemes) = self.enforced_auth_schemes() {
            // As ZooKeeper's AuthenticationHelper: the schemes must be named and known.
            if schemes.is_empty() || schemes.iter().all(|s| s.is_empty()) {
                return Err(ConfigError::Invalid("enforce.auth.enabled is true: enforce.auth.schemes must be configured".into()));
            }
            if let Some(unknown) = schemes.iter().find(|s| !AUTH_SCHEMES.contains(&s.as_str())) {
                return Err(ConfigError::Invalid(format!("authentication scheme {unknown} is not available")));
            }
        }
        if !self.peers.is_empty() && !self.peers.contains_key(&self.server_id) {
            return Err(ConfigError::Invalid(format!("myid {} is not among the server.N lines", self.server_id)));
        }
        if !self.peers.is_empty() && self.participants().next().is_none() {
            return Err(ConfigError::Invalid("every server.N line is an observer: an ensemble needs participants".into()));
        }
        Ok(())
    }

    /// The directory holding the Raft log: `dataLogDir`, else `dataDir`.
    pub fn log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }

    /// The ensemble's voting members (`server.N` lines that are not observers).
    pub fn participants(&self) -> impl Iterator<Item = (&u64, &Peer)> {
        self.peers.iter().filter(|(_, p)| !p.observer)
    }

    /// Log entries kept behind the newest snapshot: a tenth of `snapCount`
    /// (at most 10 000), so a follower a little behind catches up from the
    /// log, and only one far behind (or wiped) needs the whole snapshot.
    pub fn log_keep(&self) -> u64 {
        (self.snap_count / 10).min(10_000)
    }

    fn validate_times(&self) -> Result<(), ConfigError> {
        if self.tick_time_ms == 0 {
            return Err(ConfigError::Invalid("tickTime must be positive".into()));
        }
        if self.min_session_timeout() > self.max_session_timeout() {
            return Err(ConfigError::Invalid("minSessionTimeout exceeds maxSessionTimeout".into()));
        }
        Ok(())
    }

    /// Raft's heartbeat interval and election timeout range, ms.
    ///
    /// ZooKeeper judges peers in ticks (syncLimit x tickTime, 10 s by
    /// default) because its followers notice a dead leader's TCP connection
    /// closing; Raft notices missed heartbeats instead. A heartbeat every
    /// tickTime/20 (100 ms at the default 2 s tick, kept within 20..=500 ms)
    /// and an election after 4 to 8 missed ones fail over in about a second
    /// at the defaults, always well inside the shortest session timeout
    /// (2 x tickTime), so a failover does not expire sessions. A lagging
    /// follower catches up from the log or a snapshot with no deadline;
    /// syncLimit bounds how long a server out of touch with a quorum keeps
    /// serving (see `serving`), and initLimit how long a server joining
    /// through reconfig may take to catch up (see [`Config::catch_up_limit`]).
    pub fn raft_timing(&self) -> (u64, u64, u64) {
        if self.peers.is_empty() {
            // A lone node elects itself quickly after a restart.
            return (50, 150, 300);
        }
        let heartbeat = (self.tick_time_ms / 20).clamp(20, 500);
        (heartbeat, 4 * heartbeat, 8 * heartbeat)
    }

    /// How long a server joining through reconfig may take to catch up
    /// before the change is given up: initLimit ticks, as ZooKeeper gives a
    /// follower to sync (20 s at the defaults).
    pub fn catch_up_limit(&self) -> Duration {
        Duration::from_millis(self.init_limit.saturating_mul(self.tick_time_ms))
    }

    /// Lowest session timeout granted.
    pub fn min_session_timeout(&self) -> Duration {
        Duration::from_millis(self.min_session_timeout_ms.unwrap_or(2 * self.tick_time_ms))
    }

    /// Highest session timeout granted.
    pub fn max_session_timeout(&self) -> Duration {
        Duration::from_millis(self.max_session_timeout_ms.unwrap_or(20 * self.tick_time_ms))
    }

    /// The timeout a client asking for `requested_ms` gets.
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        let min = self.min_session_timeout().as_millis() as i64;
        let max = self.max_session_timeout().as_millis() as i64;
        (requested_ms as i64).clamp(min, max) as i32
    }

    /// The client listener address.
    pub fn client_addr(&self) -> Result<SocketAddr, ConfigError> {
        socket_addr("client address", &self.client_address, self.client_port)
    }

    /// Whether any client port takes TLS connections.
    pub fn tls_wanted(&self) -> bool {
        self.secure_client_port.is_some() || self.port_unification
    }

    /// The TLS client port's address, if there is one.
    pub fn secure_client_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(port) = self.secure_client_port else { return Ok(None) };
        let host = self.secure_client_address.as_deref().unwrap_or(&self.client_address);
        socket_addr("secure client address", host, port).map(Some)
    }

    /// The admin server's address, if it is enabled.
    pub fn admin_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if !self.admin_enabled {
            return Ok(None);
        }
        let host = self.admin_address.as_deref().unwrap_or(&self.client_address);
        socket_addr("admin server address", host, self.admin_port).map(Some)
    }

    /// The Prometheus metrics port's address, if it is enabled.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if !self.metrics_enabled {
            return Ok(None);
        }
        let host = self.metrics_address.as_deref().unwrap_or(&self.client_address);
        socket_addr("metrics address", host, self.metrics_port).map(Some)
    }

    /// Whether a four-letter word may be answered.
    pub fn four_letter_allowed(&self, word: &str) -> bool {
        self.four_letter_whitelist.iter().any(|w| w == "*" || w == word)
    }
}

/// Whether clients must present a certificate on the TLS port (ZooKeeper's `ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a certificate signed by the trust store is refused.
    Need,
    /// A certificate is asked for and checked if given, not required.
    Want,
    /// None is asked for.
    None,
}

/// The address that binds every interface (IPv4).
const ALL_INTERFACES: &str = "0.0.0.0";

/// The format of a TLS key or trust store file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// PEM: certificates and an unencrypted private key.
    Pem,
    /// PKCS#12 (`.p12`, `.pfx`).
    Pkcs12,
    /// Java's JKS (`.jks`).
    Jks,
}

impl StoreKind {
    /// A `ssl.*.type` value (case-insensitive), if it names a format read here.
    pub fn parse(value: &str) -> Option<StoreKind> {
        match value.to_ascii_uppercase().as_str() {
            "PEM" => Some(StoreKind::Pem),
            "PKCS12" => Some(StoreKind::Pkcs12),
            "JKS" => Some(StoreKind::Jks),
            _ => None,
        }
    }

    /// The format of the store at `path`: the configured type, else from
    /// the file's extension as ZooKeeper tells it (anything but `.jks`,
    /// `.p12` and `.pfx` is read as PEM).
    pub fn of(path: &Path, secrets: &StoreSecrets) -> StoreKind {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        secrets.kind.unwrap_or(match ext.as_str() {
            "jks" => StoreKind::Jks,
            "p12" | "pfx" => StoreKind::Pkcs12,
            _ => StoreKind::Pem,
        })
    }
}

/// The type and password zoo.cfg gives one TLS store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSecrets {
    /// `ssl.*.type` (None: from the file's extension).
    pub kind: Option<StoreKind>,
    /// `ssl.*.password`.
    pub password: Option<String>,
    /// `ssl.*.passwordPath`: a file holding the password.
    pub password_path: Option<PathBuf>,
}

impl StoreSecrets {
    /// The password: `password`, else the first line of `passwordPath`'s
    /// file, else none.
    pub fn password(&self) -> std::io::Result<Option<String>> {
        match (&self.password, &self.password_path) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)?;
                Ok(Some(text.lines().next().unwrap_or("").to_string()))
            }
            (None, None) => Ok(None),
        }
    }
}

/// `host:port` as a socket address, with or without brackets around an IPv6 host.
fn socket_addr(what: &str, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .map_err(|e: std::net::AddrParseError| ConfigError::Invalid(format!("{what}: {e}")))
}

/// `superUser`, `superUser.N` and their `zookeeper.`-prefixed forms: zoo.cfg
/// keys ZooKeeper turns into the `zookeeper.superUser*` properties it reads.
/// Quorum SASL settings (ZooKeeper's `quorum.auth.*`).
#[derive(Debug, Clone)]
pub struct QuorumAuthConfig {
    /// `quorum.auth.enableSasl`: members authenticate as they dial.
    pub enable_sasl: bool,
    /// `quorum.auth.learnerRequireSasl`: never talk to a member that does not.
    pub learner_require_sasl: bool,
    /// `quorum.auth.serverRequireSasl`: refuse members that dial without it.
    pub server_require_sasl: bool,
    /// `quorum.auth.learner.saslLoginContext`: the JAAS section logged in with.
    pub learner_context: String,
    /// `quorum.auth.server.saslLoginContext`: the JAAS section of accepted members.
    pub server_context: String,
    /// `quorum.auth.kerberos.servicePrincipal`: whom a member dialling
    /// with Kerberos asks a ticket for (`_HOST`: the dialled member's host).
    pub kerberos_service_principal: String,
}

impl Default for QuorumAuthConfig {
    fn default() -> Self {
        QuorumAuthConfig {
            enable_sasl: false,
            learner_require_sasl: false,
            server_require_sasl: false,
            learner_context: "QuorumLearner".into(),
            server_context: "QuorumServer".into(),
            kerberos_service_principal: "zkquorum/localhost".into(),
        }
    }
}

/// The authentication schemes a connection can gain an identity of here.
const AUTH_SCHEMES: &[&str] = &["ip", "digest", "sasl", "x509"];

fn is_super_user_key(key: &str) -> bool {
    let key = key.strip_prefix("zookeeper.").unwrap_or(key);
    key == "superUser" || key.strip_prefix("superUser.").is_some_and(|rest| !rest.is_empty())
}

/// Reads a `server.N=` value: `host:peerPort:electionPort[:role][;[clientHost:]clientPort]`.
pub fn parse_server_line(value: &str) -> Result<Peer, String> {
    let (servers, client) = match value.split_once(';') {
        Some((s, c)) => (s, Some(c)),
        None => (value, None),
    };
    let parts: Vec<&str> = servers.split(':').collect();
    if parts.len() < 2 {
        return Err(format!("expected host:peerPort:electionPort, got {value:?}"));
    }
    let peer_port = parts[1].parse::<u16>().map_err(|e| format!("peer port: {e}"))?;
    let observer = match parts.get(3).map(|r| r.trim().to_ascii_lowercase()) {
        None => false,
        Some(role) if role == "participant" => false,
        Some(role) if role == "observer" => true,
        Some(role) => return Err(format!("unrecognised peer type {role:?}: participant or observer")),
    };
    let (client_host, client_port) = match client.map(str::trim) {
        Some(c) => {
            let (host, port) = match c.rsplit_once(':') {
                Some((host, port)) => (Some(host.trim_start_matches('[').trim_end_matches(']').to_string()), port),
                None => (None, c),
            };
            (host, Some(port.trim().parse::<u16>().map_err(|e| format!("client port: {e}"))?))
        }
        None => (None, None),
    };
    let host = parts[0].trim().to_string();
    Ok(Peer { host, peer_port, client_port, client_host, observer, spec: value.trim().to_string() })
}

/// Reads ZooKeeper's `myid` file from the data directory.
/// The value of `key` in zoo.cfg-style `text`, if a line sets it.
fn zoo_cfg_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().filter_map(|l| l.split_once('=')).find(|(k, _)| k.trim() == key).map(|(_, v)| v.trim())
}

fn read_myid(data_dir: &Path) -> Result<u64, ConfigError> {
    let path = data_dir.join("myid");
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    text.trim().parse::<u64>().map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_timing_follows_tick_time_within_bounds() {
        let mut c = Config::default();
        assert_eq!(c.raft_timing(), (50, 150, 300), "single node");
        c.apply_zoo_cfg("server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\ninitLimit=10\nsyncLimit=5\n", "zoo.cfg").unwrap();
        assert_eq!(c.raft_timing(), (100, 400, 800), "default 2 s tick");
        assert_eq!(c.catch_up_limit(), Duration::from_secs(20), "initLimit ticks");
        c.tick_time_ms = 100;
        assert_eq!(c.raft_timing(), (20, 80, 160));
        c.tick_time_ms = 60_000;
        assert_eq!(c.raft_timing(), (500, 2000, 4000));
        for tick in [100, 2000, 60_000] {
            c.tick_time_ms = tick;
            assert!(c.raft_timing().2 < c.min_session_timeout().as_millis() as u64, "elections fit in a session timeout");
        }
        assert!(c.apply_zoo_cfg("syncLimit=five\n", "zoo.cfg").is_err());
    }

    #[test]
    fn reads_zoo_cfg_and_negotiates_timeouts() {
        let mut c = Config::default();
        c.apply_zoo_cfg("# comment\ntickTime=1000\nclientPort=2999\ndataDir=/tmp/x\nserver.1=a:1:2\n", "zoo.cfg").unwrap();
        assert_eq!(c.client_port, 2999);
        assert_eq!(c.max_client_cnxns, 60);
        c.apply_zoo_cfg("maxClientCnxns=0\n", "zoo.cfg").unwrap();
        assert_eq!(c.max_client_cnxns, 0);
        assert_eq!(c.max_cnxns, 0);
        c.apply_zoo_cfg("maxCnxns=5\n", "zoo.cfg").unwrap();
        assert_eq!(c.max_cnxns, 5);
        c.apply_zoo_cfg("maxCnxns=-1\n", "zoo.cfg").unwrap();
        assert_eq!(c.max_cnxns, 0);
        assert_eq!(c.client_port_listen_backlog, -1);
        c.apply_zoo_cfg("clientPortListenBacklog=50\n", "zoo.cfg").unwrap();
        assert_eq!(c.client_port_listen_backlog, 50);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.negotiate_timeout(100), 2000);
        assert_eq!(c.negotiate_timeout(5000), 5000);
        assert_eq!(c.negotiate_timeout(999_999), 20_000);
        assert!(c.apply_zoo_cfg("tickTime=abc", "zoo.cfg").is_err());
    }

    #[test]
    fn a_zoo_cfg_without_client_port_address_listens_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, "clientPort=2999\n").unwrap();
        let c = Config::from_zoo_cfg(&path).unwrap();
        assert_eq!(c.client_addr().unwrap(), "0.0.0.0:2999".parse().unwrap());
        assert_eq!(c.admin_addr().unwrap(), Some("0.0.0.0:8080".parse().unwrap()));
        std::fs::write(&path, "clientPort=2999\nclientPortAddress=127.0.0.1\n").unwrap();
        assert_eq!(Config::from_zoo_cfg(&path).unwrap().client_addr().unwrap(), "127.0.0.1:2999".parse().unwrap());
        // A 3.5-style member line gives the client port and address.
        std::fs::create_dir_all(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/myid"), "2\n").unwrap();
        let lines = "server.1=a:1:2;2181\nserver.2=b:1:2;10.1.2.3:2182\nserver.3=c:1:2;[::1]:2183\n";
        std::fs::write(&path, format!("dataDir={}\n{lines}", dir.path().join("d").display())).unwrap();
        assert_eq!(Config::from_zoo_cfg(&path).unwrap().client_addr().unwrap(), "10.1.2.3:2182".parse().unwrap());
        std::fs::write(&path, format!("dataDir={}\nclientPort=3000\n{lines}", dir.path().join("d").display())).unwrap();
        assert_eq!(Config::from_zoo_cfg(&path).unwrap().client_addr().unwrap(), "10.1.2.3:3000".parse().unwrap());
        assert_eq!(parse_server_line("c:1:2;[::1]:2183").unwrap().client_host.as_deref(), Some("::1"));
        // No zoo.cfg at all: loopback, as `make run` documents.
        assert_eq!(Config::default().client_addr().unwrap(), "127.0.0.1:2181".parse().unwrap());
    }

    #[test]
    fn reads_admin_server_keys() {
        let mut c = Config::default();
        assert_eq!(c.admin_addr().unwrap(), Some("127.0.0.1:8080".parse().unwrap()));
        c.apply_zoo_cfg("admin.serverPort=9090\nadmin.commandURL=ops/\nclientPortAddress=::1\n", "zoo.cfg").unwrap();
        assert_eq!(c.admin_addr().unwrap(), Some("[::1]:9090".parse().unwrap()));
        assert_eq!(c.admin_command_url, "/ops");
        c.apply_zoo_cfg("zookeeper.admin.serverAddress=0.0.0.0\n", "zoo.cfg").unwrap();
        assert_eq!(c.admin_addr().unwrap(), Some("0.0.0.0:9090".parse().unwrap()));
        c.apply_zoo_cfg("admin.enableServer=false\n", "zoo.cfg").unwrap();
        assert_eq!(c.admin_addr().unwrap(), None);
        assert!(c.apply_zoo_cfg("admin.serverPort=70000\n", "zoo.cfg").is_err());
    }

    #[test]
    fn reads_tls_keys() {
        let mut c = Config::default();
        assert_eq!(c.secure_client_addr().unwrap(), None);
        c.apply_zoo_cfg("secureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.keyStore.type=PEM\n", "zoo.cfg").unwrap();
        assert_eq!(c.secure_client_addr().unwrap(), Some("127.0.0.1:2281".parse().unwrap()));
        // need is the default, and needs a trust store
        assert!(c.validate().is_err());
        c.apply_zoo_cfg("zookeeper.ssl.trustStore.location=/ca.pem\n", "zoo.cfg").unwrap();
        assert!(c.validate().is_ok());
        c.apply_zoo_cfg("ssl.clientAuth=want\nsecureClientPortAddress=0.0.0.0\n", "zoo.cfg").unwrap();
        assert_eq!((c.ssl_client_auth, c.secure_client_addr().unwrap()), (ClientAuth::Want, Some("0.0.0.0:2281".parse().unwrap())));
        assert!(c.apply_zoo_cfg("ssl.keyStore.type=BCFKS\n", "zoo.cfg").is_err());
        c.apply_zoo_cfg("ssl.keyStore.type=pkcs12\nzookeeper.ssl.keyStore.password=s3cret\n", "zoo.cfg").unwrap();
        c.apply_zoo_cfg("ssl.trustStore.passwordPath=/run/pw\n", "zoo.cfg").unwrap();
        assert_eq!(c.ssl_key_store_secrets.kind, Some(StoreKind::Pkcs12));
        assert_eq!(c.ssl_key_store_secrets.password.as_deref(), Some("s3cret"));
        assert_eq!(c.ssl_trust_store_secrets.password_path, Some(PathBuf::from("/run/pw")));
        assert_eq!(StoreKind::of(Path::new("/t.jks"), &StoreSecrets::default()), StoreKind::Jks);
        assert_eq!(StoreKind::of(Path::new("/t.PFX"), &StoreSecrets::default()), StoreKind::Pkcs12);
        assert_eq!(StoreKind::of(Path::new("/t.crt"), &StoreSecrets::default()), StoreKind::Pem);
        c.apply_zoo_cfg("zookeeper.X509AuthenticationProvider.superUser=CN=admin,O=x\n", "zoo.cfg").unwrap();
        assert_eq!(c.x509_super_user.as_deref(), Some("CN=admin,O=x"));
        assert!(c.apply_zoo_cfg("ssl.clientAuth=maybe\n", "zoo.cfg").is_err());
        c.apply_zoo_cfg("ssl.keyStore.location=/k.jks\n", "zoo.cfg").unwrap();
        assert!(c.validate().is_ok(), "JKS, PKCS12 and PEM are all read");
        let mut u = Config::default();
        u.apply_zoo_cfg("client.portUnification=true\n", "zoo.cfg").unwrap();
        assert!(u.tls_wanted() && u.validate().is_err(), "port unification without a key store");
    }

    #[test]
    fn reads_sasl_keys() {
        let mut c = Config::default();
        assert_eq!(c.sasl_server_section, "Server");
        let text = "jaasLoginConfig=/etc/jaas.conf\nsuperUser=admin\nzookeeper.superUser.2=root\nsasl.serverconfig=ZkServer\n";
        c.apply_zoo_cfg(text, "zoo.cfg").unwrap();
        assert_eq!(c.jaas_login_config, Some(PathBuf::from("/etc/jaas.conf")));
        assert_eq!(c.sasl_super_users, vec!["admin".to_string(), "root".to_string()]);
        assert_eq!(c.sasl_server_section, "ZkServer");
        c.apply_zoo_cfg("java.security.auth.login.config=j.conf\nsuperUserX=no\n", "zoo.cfg").unwrap();
        assert_eq!(c.jaas_login_config, Some(PathBuf::from("j.conf")));
        assert_eq!(c.sasl_super_users.len(), 2);
        assert!(!c.kerberos_naming.remove_host && !c.kerberos_naming.remove_realm);
        let text = "zookeeper.kerberos.removeHostFromPrincipal=true\nkerberos.removeRealmFromPrincipal=true\n\
                    security.auth_to_local=RULE:[1:$1] DEFAULT\njava.security.krb5.conf=/k/krb5.conf\n";
        c.apply_zoo_cfg(text, "zoo.cfg").unwrap();
        assert!(c.kerberos_naming.remove_host && c.kerberos_naming.remove_realm);
        assert_eq!(c.kerberos_naming.auth_to_local.as_deref(), Some("RULE:[1:$1] DEFAULT"));
        assert_eq!(c.krb5_conf, Some(PathBuf::from("/k/krb5.conf")));
    }

    #[test]
    fn reads_ensemble_lines() {
        let mut c = Config::default();
        let text = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889;2182\nserver.3=h3:2890:3890:participant;0.0.0.0:2183\n";
        c.apply_zoo_cfg(text, "zoo.cfg").unwrap();
        assert_eq!(c.peers.len(), 3);
        assert_eq!(
            c.peers[&1],
            Peer {
                host: "127.0.0.1".into(),
                peer_port: 2888,
                client_port: None,
                client_host: None,
                observer: false,
                spec: "127.0.0.1:2888:3888".into()
            }
        );
        assert_eq!(c.peers[&2].client_port, Some(2182));
        assert_eq!(c.peers[&3].peer_addr(), "h3:2890");
        assert!(c.validate().is_ok());
        c.server_id = 9;
        assert!(c.validate().is_err());
    }

    #[test]
    fn quorum_tls_needs_both_stores() {
        let mut c = Config::default();
        c.apply_zoo_cfg("sslQuorum=true\nssl.quorum.keyStore.location=k.pem\n", "zoo.cfg").unwrap();
        assert!(c.validate().is_err(), "no trust store");
        c.apply_zoo_cfg("ssl.quorum.trustStore.location=t.pem\nssl.quorum.hostnameVerification=false\n", "zoo.cfg").unwrap();
        assert!(c.validate().is_ok());
        assert!(c.ssl_quorum && !c.ssl_quorum_hostname_verification);
        let mut u = Config::default();
        u.apply_zoo_cfg("portUnification=true\n", "zoo.cfg").unwrap();
        assert!(u.quorum_port_unification && u.validate().is_err(), "port unification takes TLS: it needs the stores");
        c.apply_zoo_cfg("ssl.quorum.trustStore.type=JKS\nssl.quorum.trustStore.password=pw\n", "zoo.cfg").unwrap();
        assert_eq!(c.ssl_quorum_trust_store_secrets.kind, Some(StoreKind::Jks));
        assert!(Config::default().apply_zoo_cfg("ssl.quorum.keyStore.type=BKS\n", "zoo.cfg").is_err());
    }

    #[test]
    fn reads_observers_and_refuses_unknown_roles() {
        let mut c = Config::default();
        let text = "server.1=a:1:2\nserver.2=b:1:2:participant\nserver.3=c:1:2:observer;2183\npeerType=observer\n";
        c.apply_zoo_cfg(text, "zoo.cfg").unwrap();
        assert!(!c.peers[&1].observer && !c.peers[&2].observer && c.peers[&3].observer);
        assert_eq!(c.peers[&3].client_port, Some(2183));
        assert_eq!(c.participants().map(|(id, _)| *id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(c.peer_type_observer, Some(true));
        c.server_id = 3;
        assert!(c.validate().is_ok());
        assert!(parse_server_line("a:1:2:voter").is_err());
        assert!(Config::default().apply_zoo_cfg("peerType=leader\n", "zoo.cfg").is_err());
        let mut only_observers = Config::default();
        only_observers.apply_zoo_cfg("server.1=a:1:2:observer\n", "zoo.cfg").unwrap();
        assert!(only_observers.validate().is_err());
    }

    #[test]
    fn reads_members_from_a_dynamic_config_file() {
        // As ZooKeeper 3.8 rewrites the zoo.cfg of a reconfigurable
        // ensemble: the members moved to zoo.cfg.dynamic.<version>.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        let dynamic = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                       server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
                       server.3=127.0.0.1:2890:3890:observer;2183\n";
        std::fs::write(dir.path().join("zoo.cfg.dynamic.100000000"), dynamic).unwrap();
        let zoo_cfg = dir.path().join("zoo.cfg");
        let write_cfg = |extra: &str, dynamic_file: &str| {
            let text =
                format!("tickTime=2000\ndataDir={}\nreconfigEnabled=true\ndynamicConfigFile={dynamic_file}\n{extra}", dir.path().display());
            std::fs::write(&zoo_cfg, text).unwrap();
        };
        // A relative name is found beside zoo.cfg.
        write_cfg("", "zoo.cfg.dynamic.100000000");
        let c = Config::from_zoo_cfg(&zoo_cfg).unwrap();
        assert_eq!(c.peers.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(c.peers[&3].observer);
        assert_eq!((c.server_id, c.client_port, c.client_address.as_str()), (2, 2182, "127.0.0.1"));
        // server.N lines in zoo.cfg as well: refused, as by ZooKeeper.
        write_cfg("server.4=127.0.0.1:2891:3891\n", "zoo.cfg.dynamic.100000000");
        assert!(matches!(Config::from_zoo_cfg(&zoo_cfg), Err(ConfigError::Invalid(m)) if m.contains("must be in that file")));
        // A missing file stops the start rather than making a standalone server.
        write_cfg("", "zoo.cfg.dynamic.200000000");
        assert!(matches!(Config::from_zoo_cfg(&zoo_cfg), Err(ConfigError::Read { .. })));
        // A version inside the file: refused, as by ZooKeeper.
        std::fs::write(dir.path().join("zoo.cfg.dynamic.100000000"), format!("{dynamic}version=100000000\n")).unwrap();
        write_cfg("", &dir.path().join("zoo.cfg.dynamic.100000000").display().to_string());
        assert!(matches!(Config::from_zoo_cfg(&zoo_cfg), Err(ConfigError::Invalid(m)) if m.contains("no version line")));
    }
}
