//! Fault injection: real paddock processes, proxies that partition them,
//! clients that record what they saw, and faults (kill -9, SIGSTOP, cut
//! links) injected while they run. The recorded histories go to `check`.

pub mod ensemble;
pub mod lock_client;
pub mod procs;
pub mod proxy;
pub mod register;
pub mod run;
pub mod sim;
pub mod store;
