//! The few GSS-API calls a Kerberos acceptor needs (RFC 2743/2744), from MIT
//! krb5's `libgssapi_krb5.so.2`, loaded when a server is configured for
//! Kerberos and not before: paddock builds and runs without krb5 installed,
//! and only a `Krb5LoginModule` in its JAAS file asks for the library.
//!
//! The unsafe code of the Kerberos support is all here: [`Cred`] (the
//! server's key, from its keytab) and [`Context`] (one client's security
//! context) own their GSS handles and release them on drop.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::OnceLock;

/// The library file (MIT krb5's GSS-API, Debian package libgssapi-krb5-2).
const LIBRARY: &str = "libgssapi_krb5.so.2";

type Minor = u32;
type Major = u32;

/// `gss_buffer_desc`.
#[repr(C)]
struct Buffer {
    length: usize,
    value: *mut c_void,
}

impl Buffer {
    fn empty() -> Self {
        Buffer { length: 0, value: ptr::null_mut() }
    }

    /// A buffer the library reads (never writes) for the call's duration.
    fn borrowing(bytes: &[u8]) -> Self {
        Buffer { length: bytes.len(), value: bytes.as_ptr() as *mut c_void }
    }
}

/// `gss_OID_desc`.
#[repr(C)]
struct Oid {
    length: u32,
    elements: *mut c_void,
}

/// `gss_OID_set_desc`.
#[repr(C)]
struct OidSet {
    count: usize,
    elements: *mut Oid,
}

/// `gss_key_value_element_desc`.
#[repr(C)]
struct KeyValue {
    key: *const c_char,
    value: *const c_char,
}

/// `gss_key_value_set_desc`.
#[repr(C)]
struct KeyValueSet {
    count: u32,
    elements: *mut KeyValue,
}

/// The Kerberos V5 mechanism, 1.2.840.113554.1.2.2.
const KRB5_MECH: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";
/// GSS_KRB5_NT_PRINCIPAL_NAME, 1.2.840.113554.1.2.2.1: a name that is a
/// whole principal, `service/host@REALM`.
const KRB5_PRINCIPAL_NAME: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
const GSS_C_INITIATE: c_int = 1;
const GSS_C_ACCEPT: c_int = 2;
/// GSS_C_MUTUAL_FLAG: the acceptor proves itself too.
const GSS_C_MUTUAL_FLAG: u32 = 2;
const GSS_C_INDEFINITE: u32 = 0xffff_ffff;
const GSS_S_CONTINUE_NEEDED: u32 = 1;
const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;

fn is_error(major: Major) -> bool {
    major & 0xffff_0000 != 0
}

fn oid(bytes: &'static [u8]) -> Oid {
    Oid { length: bytes.len() as u32, elements: bytes.as_ptr() as *mut c_void }
}

type ImportName = unsafe extern "C" fn(*mut Minor, *mut Buffer, *mut Oid, *mut *mut c_void) -> Major;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut Minor,
    *mut c_void,
    u32,
    *mut OidSet,
    c_int,
    *const KeyValueSet,
    *mut *mut c_void,
    *mut *mut OidSet,
    *mut u32,
) -> Major;
type AcceptSecContext = unsafe extern "C" fn(
    *mut Minor,
    *mut *mut c_void,
    *mut c_void,
    *mut Buffer,
    *mut c_void,
    *mut *mut c_void,
    *mut *mut Oid,
    *mut Buffer,
    *mut u32,
    *mut u32,
    *mut *mut c_void,
) -> Major;
type DisplayName = unsafe extern "C" fn(*mut Minor, *mut c_void, *mut Buffer, *mut *mut Oid) -> Major;
type Wrap = unsafe extern "C" fn(*mut Minor, *mut c_void, c_int, u32, *mut Buffer, *mut c_int, *mut Buffer) -> Major;
type Unwrap = unsafe extern "C" fn(*mut Minor, *mut c_void, *mut Buffer, *mut Buffer, *mut c_int, *mut u32) -> Major;
type ReleaseBuffer = unsafe extern "C" fn(*mut Minor, *mut Buffer) -> Major;
type ReleaseHandle = unsafe extern "C" fn(*mut Minor, *mut *mut c_void) -> Major;
type DeleteSecContext = unsafe extern "C" fn(*mut Minor, *mut *mut c_void, *mut Buffer) -> Major;
type DisplayStatus = unsafe extern "C" fn(*mut Minor, u32, c_int, *mut Oid, *mut u32, *mut Buffer) -> Major;
type InitSecContext = unsafe extern "C" fn(
    *mut Minor,
    *mut c_void,
    *mut *mut c_void,
    *mut c_void,
    *mut Oid,
    u32,
    u32,
    *mut c_void,
    *mut Buffer,
    *mut *mut Oid,
    *mut Buffer,
    *mut u32,
    *mut u32,
) -> Major;

/// The library's entry points.
struct Api {
    import_name: ImportName,
    acquire_cred_from: AcquireCredFrom,
    accept_sec_context: AcceptSecContext,
    display_name: DisplayName,
    wrap: Wrap,
    unwrap: Unwrap,
    release_buffer: ReleaseBuffer,
    release_name: ReleaseHandle,
    release_cred: ReleaseHandle,
    delete_sec_context: DeleteSecContext,
    display_status: DisplayStatus,
    init_sec_context: InitSecContext,
}

/// What failed in a GSS-API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GssError {
    /// The library is not installed (or lacks a call).
    #[error("Kerberos needs {LIBRARY} (Debian: apt-get install libgssapi-krb5-2): {0}")]
    Library(String),
    /// A call returned an error; the text is the library's own.
    #[error("{call}: {message}")]
    Call {
        /// The GSS-API function.
        call: &'static str,
        /// gss_display_status of the major and minor codes.
        message: String,
    },
    /// A name or path held a NUL byte.
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
}

fn api() -> Result<&'static Api, GssError> {
    static API: OnceLock<Result<Api, GssError>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Api, GssError> {
    let name = CString::new(LIBRARY).map_err(|_| GssError::Nul("library name"))?;
    // SAFETY: dlopen with a valid C string; the handle is kept for the
    // process's life (never dlclose'd), so the symbols below stay valid.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(GssError::Library(dl_error()));
    }
    let symbol = |name: &'static str| -> Result<*mut c_void, GssError> {
        let c = CString::new(name).map_err(|_| GssError::Nul("symbol name"))?;
        // SAFETY: a valid handle and C string.
        let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
        if p.is_null() {
            Err(GssError::Library(format!("{name} not found")))
        } else {
            Ok(p)
        }
    };
    // SAFETY: each symbol is transmuted to the signature RFC 2744 (and MIT's
    // gssapi_ext.h for gss_acquire_cred_from) gives it.
    unsafe {
        Ok(Api {
            import_name: std::mem::transmute::<*mut c_void, ImportName>(symbol("gss_import_name")?),
            acquire_cred_from: std::mem::transmute::<*mut c_void, AcquireCredFrom>(symbol("gss_acquire_cred_from")?),
            accept_sec_context: std::mem::transmute::<*mut c_void, AcceptSecContext>(symbol("gss_accept_sec_context")?),
            display_name: std::mem::transmute::<*mut c_void, DisplayName>(symbol("gss_display_name")?),
            wrap: std::mem::transmute::<*mut c_void, Wrap>(symbol("gss_wrap")?),
            unwrap: std::mem::transmute::<*mut c_void, Unwrap>(symbol("gss_unwrap")?),
            release_buffer: std::mem::transmute::<*mut c_void, ReleaseBuffer>(symbol("gss_release_buffer")?),
            release_name: std::mem::transmute::<*mut c_void, ReleaseHandle>(symbol("gss_release_name")?),
            release_cred: std::mem::transmute::<*mut c_void, ReleaseHandle>(symbol("gss_release_cred")?),
            delete_sec_context: std::mem::transmute::<*mut c_void, DeleteSecContext>(symbol("gss_delete_sec_context")?),
            display_status: std::mem::transmute::<*mut c_void, DisplayStatus>(symbol("gss_display_status")?),
            init_sec_context: std::mem::transmute::<*mut c_void, InitSecContext>(symbol("gss_init_sec_context")?),
        })
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "dlopen failed".into()
    } else {
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

impl Api {
    /// Copies a buffer the library allocated and releases it.
    fn take(&self, mut buffer: Buffer) -> Vec<u8> {
        let bytes = if buffer.value.is_null() || buffer.length == 0 {
            Vec::new()
        } else {
            // SAFETY: the library filled `length` bytes at `value`.
            unsafe { std::slice::from_raw_parts(buffer.value as *const u8, buffer.length) }.to_vec()
        };
        let mut minor = 0;
        // SAFETY: a buffer the library allocated (or empty).
        unsafe { (self.release_buffer)(&mut minor, &mut buffer) };
        bytes
    }

    /// The library's text for a failed call's codes.
    fn status(&self, major: Major, minor: Minor) -> String {
        let mut parts = Vec::new();
        for (code, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
            if code == 0 {
                continue;
            }
            let mut context = 0u32;
            // A few messages per code at most; bounded against a library that never ends the list.
            for _ in 0..8 {
                let mut m = 0;
                let mut text = Buffer::empty();
                let mut mech = oid(KRB5_MECH);
                // SAFETY: out-pointers to locals.
                let r = unsafe { (self.display_status)(&mut m, code, kind, &mut mech, &mut context, &mut text) };
                if is_error(r) {
                    break;
                }
                let t = String::from_utf8_lossy(&self.take(text)).into_owned();
                if !t.is_empty() {
                    parts.push(t);
                }
                if context == 0 {
                    break;
                }
            }
        }
        if parts.is_empty() {
            format!("major {major:#x}, minor {minor}")
        } else {
            parts.join(": ")
        }
    }

    fn check(&self, call: &'static str, major: Major, minor: Minor) -> Result<(), GssError> {
        if is_error(major) {
            Err(GssError::Call { call, message: self.status(major, minor) })
        } else {
            Ok(())
        }
    }
}

/// The server's acceptor credential: the keys of one principal from a keytab.
pub struct Cred {
    handle: *mut c_void,
}

// SAFETY: MIT krb5 locks its credential records; a credential may be used by
// several contexts on several threads.
unsafe impl Send for Cred {}
// SAFETY: as above.
unsafe impl Sync for Cred {}

impl std::fmt::Debug for Cred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cred")
    }
}

impl Cred {
    /// Acquires `principal`'s (`service/host@REALM`) accepting credential
    /// from `keytab`, or from the default keytab (KRB5_KTNAME,
    /// /etc/krb5.keytab) when `None`. Fails when the keytab lacks the
    /// principal: a misconfiguration is found at start, not at the first client.
    pub fn acquire(principal: &str, keytab: Option<&str>) -> Result<Cred, GssError> {
        let keytab = keytab.map(CString::new).transpose().map_err(|_| GssError::Nul("keytab path"))?;
        let store: Vec<(&CStr, &CStr)> = keytab.iter().map(|k| (c"keytab", k.as_c_str())).collect();
        Self::acquire_from(principal, GSS_C_ACCEPT, &store)
    }

    /// An initiating credential of `principal`, whose tickets come from its
    /// key in `keytab` (or the default client keytab) into a ccache of this
    /// process's memory: nothing is written to the user's ticket cache.
    pub fn initiator(principal: &str, keytab: Option<&str>) -> Result<Cred, GssError> {
        let keytab = keytab.map(CString::new).transpose().map_err(|_| GssError::Nul("keytab path"))?;
        let ccache = CString::new(format!("MEMORY:paddock-{}-{}", std::process::id(), rand::random::<u32>()))
            .map_err(|_| GssError::Nul("ccache name"))?;
        let mut store: Vec<(&CStr, &CStr)> = vec![(c"ccache", ccache.as_c_str())];
        store.extend(keytab.iter().map(|k| (c"client_keytab", k.as_c_str())));
        Self::acquire_from(principal, GSS_C_INITIATE, &store)
    }

    fn acquire_from(principal: &str, usage: c_int, store: &[(&CStr, &CStr)]) -> Result<Cred, GssError> {
        let api = api()?;
        let mut minor = 0;
        let name = Name::import(principal)?;
        let mut elements: Vec<KeyValue> = store.iter().map(|(k, v)| KeyValue { key: k.as_ptr(), value: v.as_ptr() }).collect();
        let store = KeyValueSet { count: elements.len() as u32, elements: elements.as_mut_ptr() };
        let mut mech = oid(KRB5_MECH);
        let mut mechs = OidSet { count: 1, elements: &mut mech };
        let mut handle: *mut c_void = ptr::null_mut();
        // SAFETY: the name from gss_import_name; store, mechs and their
        // strings outlive the call; out-pointers to locals.
        let major = unsafe {
            (api.acquire_cred_from)(
                &mut minor,
                name.handle,
                GSS_C_INDEFINITE,
                &mut mechs,
                usage,
                &store,
                &mut handle,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        drop(name);
        api.check("gss_acquire_cred_from", major, minor)?;
        Ok(Cred { handle })
    }
}

/// An imported principal name, released on drop.
struct Name {
    handle: *mut c_void,
}

impl Name {
    /// `service/host@REALM` (the default realm when none is given).
    fn import(principal: &str) -> Result<Name, GssError> {
        let api = api()?;
        let mut minor = 0;
        let mut name = Name { handle: ptr::null_mut() };
        let mut buffer = Buffer::borrowing(principal.as_bytes());
        let mut name_type = oid(KRB5_PRINCIPAL_NAME);
        // SAFETY: valid in-buffers for the call, out-pointer to our handle.
        let major = unsafe { (api.import_name)(&mut minor, &mut buffer, &mut name_type, &mut name.handle) };
        api.check("gss_import_name", major, minor)?;
        Ok(name)
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        if self.handle.is_null() {
            return;
        }
        if let Ok(api) = api() {
            let mut minor = 0;
            // SAFETY: our name, released once.
            unsafe { (api.release_name)(&mut minor, &mut self.handle) };
        }
    }
}

impl Drop for Cred {
    fn drop(&mut self) {
        if let Ok(api) = api() {
            let mut minor = 0;
            // SAFETY: our handle, released once.
            unsafe { (api.release_cred)(&mut minor, &mut self.handle) };
        }
    }
}

/// One client's security context, accepting side.
pub struct Context {
    handle: *mut c_void,
    /// The client's principal, once the context is established.
    peer: Option<String>,
}

// SAFETY: a context is used by one connection task at a time (never shared);
// MIT's contexts carry no thread affinity.
unsafe impl Send for Context {}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("peer", &self.peer).finish()
    }
}

/// What one context step (accepting or initiating) gave.
#[derive(Debug)]
pub struct Accepted {
    /// The token for the client (empty when the mechanism has none).
    pub token: Vec<u8>,
    /// True once the context is established.
    pub established: bool,
}

impl Context {
    /// A context not yet started.
    pub fn new() -> Context {
        Context { handle: ptr::null_mut(), peer: None }
    }

    /// Feeds the client's token to gss_accept_sec_context with `cred`.
    pub fn accept(&mut self, cred: &Cred, token: &[u8]) -> Result<Accepted, GssError> {
        let api = api()?;
        let mut minor = 0;
        let mut input = Buffer::borrowing(token);
        let mut output = Buffer::empty();
        let mut source: *mut c_void = ptr::null_mut();
        // SAFETY: our context handle (null at first), the credential's
        // handle, a borrowed input and out-pointers to locals.
        let major = unsafe {
            (api.accept_sec_context)(
                &mut minor,
                &mut self.handle,
                cred.handle,
                &mut input,
                ptr::null_mut(),
                &mut source,
                ptr::null_mut(),
                &mut output,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let token = api.take(output);
        let result = api.check("gss_accept_sec_context", major, minor);
        let established = result.is_ok() && major & GSS_S_CONTINUE_NEEDED == 0;
        if established && !source.is_null() {
            let mut text = Buffer::empty();
            let mut m = 0;
            // SAFETY: the source name the call returned; out-pointers to locals.
            let r = unsafe { (api.display_name)(&mut m, source, &mut text, ptr::null_mut()) };
            if !is_error(r) {
                self.peer = Some(String::from_utf8_lossy(&api.take(text)).into_owned());
            }
        }
        if !source.is_null() {
            let mut m = 0;
            // SAFETY: the returned name, released once.
            unsafe { (api.release_name)(&mut m, &mut source) };
        }
        result?;
        if established && self.peer.is_none() {
            return Err(GssError::Call { call: "gss_display_name", message: "no client name".into() });
        }
        Ok(Accepted { token, established })
    }

    /// Runs gss_init_sec_context towards `target` (`service/host@REALM`)
    /// with `cred`, feeding the acceptor's last token (empty at first),
    /// asking for mutual authentication.
    pub fn initiate(&mut self, cred: &Cred, target: &str, token: &[u8]) -> Result<Accepted, GssError> {
        let api = api()?;
        let name = Name::import(target)?;
        let mut minor = 0;
        let mut input = Buffer::borrowing(token);
        let mut output = Buffer::empty();
        let mut mech = oid(KRB5_MECH);
        // SAFETY: our context handle (null at first), the credential's and
        // the name's handles, a borrowed input and out-pointers to locals.
        let major = unsafe {
            (api.init_sec_context)(
                &mut minor,
                cred.handle,
                &mut self.handle,
                name.handle,
                &mut mech,
                GSS_C_MUTUAL_FLAG,
                0,
                ptr::null_mut(),
                &mut input,
                ptr::null_mut(),
                &mut output,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let token = api.take(output);
        api.check("gss_init_sec_context", major, minor)?;
        Ok(Accepted { token, established: major & GSS_S_CONTINUE_NEEDED == 0 })
    }

    /// The authenticated client principal, once established.
    pub fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    /// gss_wrap with integrity only (no confidentiality), as the SASL
    /// GSSAPI mechanism sends its security-layer offer.
    pub fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        let api = api()?;
        let mut minor = 0;
        let mut input = Buffer::borrowing(message);
        let mut output = Buffer::empty();
        // SAFETY: an established context; borrowed input; out-pointers to locals.
        let major = unsafe { (api.wrap)(&mut minor, self.handle, 0, 0, &mut input, ptr::null_mut(), &mut output) };
        let out = api.take(output);
        api.check("gss_wrap", major, minor)?;
        Ok(out)
    }

    /// gss_unwrap of a client message.
    pub fn unwrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        let api = api()?;
        let mut minor = 0;
        let mut input = Buffer::borrowing(message);
        let mut output = Buffer::empty();
        // SAFETY: an established context; borrowed input; out-pointers to locals.
        let major = unsafe { (api.unwrap)(&mut minor, self.handle, &mut input, &mut output, ptr::null_mut(), ptr::null_mut()) };
        let out = api.take(output);
        api.check("gss_unwrap", major, minor)?;
        Ok(out)
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.handle.is_null() {
            return;
        }
        if let Ok(api) = api() {
            let mut minor = 0;
            // SAFETY: our context, deleted once; no output token wanted.
            unsafe { (api.delete_sec_context)(&mut minor, &mut self.handle, ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keytab_without_the_principal_is_refused_with_the_library_s_reason() {
        // Where the library is installed (it is wherever krb5 is), acquiring
        // from a keytab that does not exist names the failure.
        let dir = std::env::temp_dir().join(format!("paddock-gss-{}", std::process::id()));
        let keytab = dir.join("missing.keytab");
        match Cred::acquire("zookeeper/localhost@PADDOCK.TEST", keytab.to_str()) {
            Err(GssError::Call { call, message }) => {
                assert_eq!(call, "gss_acquire_cred_from");
                assert!(!message.is_empty());
            }
            Err(GssError::Library(_)) => {} // no krb5 on this machine
            other => panic!("acquired from a missing keytab: {other:?}"),
        }
    }
}
