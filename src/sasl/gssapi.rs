//! The server side of the SASL GSSAPI mechanism (RFC 4752: Kerberos V5), as
//! the JDK's `GssKrb5Server` runs it for ZooKeeper:
//!
//! 1. the client's tokens go to gss_accept_sec_context until the context is
//!    established; each output token (the AP-REP of mutual authentication)
//!    is the reply;
//! 2. then the server offers its security layers in a wrapped four-byte
//!    message: a bit mask (only "no security layer": ZooKeeper negotiates
//!    `auth` and protects nothing after) and its largest buffer. When the
//!    context's last step had no output token this is the reply to that
//!    step, else to the client's next (empty) token;
//! 3. the client answers with a wrapped four-byte choice, optionally
//!    followed by an authorization id; the exchange is complete and the
//!    reply token is null. As ZooKeeper's callback handler, the identity
//!    comes from the authenticated principal, whatever authorization id the
//!    client asked for.

use super::gss::{Context, Cred, GssError};

/// The "no security layer" bit of the layer mask.
const NO_SECURITY_LAYER: u8 = 1;
/// The largest message the server says it takes, as the JDK's default.
const MAX_BUFFER: u32 = 65536;

/// Why a GSSAPI exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum GssapiError {
    /// A GSS-API call failed (a ticket for another principal, a replay, ...).
    #[error(transparent)]
    Gss(#[from] GssError),
    /// The client's layer choice was not four bytes or more.
    #[error("security layer message of {0} bytes")]
    ShortChoice(usize),
    /// The client chose a security layer the server did not offer.
    #[error("client chose security layer {0:#04x}; only none (0x01) is offered")]
    Layer(u8),
    /// The client sent a token after the exchange completed.
    #[error("GSSAPI authentication already complete")]
    Complete,
}

/// Where an exchange stands.
#[derive(Debug)]
enum Stage {
    /// Context tokens are being exchanged.
    Accepting,
    /// Established; the next client token is empty and the offer answers it.
    Established,
    /// The layer offer was sent; the client's choice is next.
    Offered,
    /// Done.
    Complete,
}

/// What one step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A token for the client; more steps follow.
    Continue(Vec<u8>),
    /// Authenticated as this principal; the reply has no token (null).
    Complete(String),
}

/// One connection's GSSAPI exchange, server side.
#[derive(Debug)]
pub struct GssapiServer {
    context: Context,
    stage: Stage,
}

impl Default for GssapiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl GssapiServer {
    /// A new exchange.
    pub fn new() -> Self {
        GssapiServer { context: Context::new(), stage: Stage::Accepting }
    }

    /// Runs the client's next token.
    pub fn step(&mut self, cred: &Cred, token: &[u8]) -> Result<Step, GssapiError> {
        match self.stage {
            Stage::Accepting => {
                let accepted = self.context.accept(cred, token)?;
                if !accepted.established {
                    return Ok(Step::Continue(accepted.token));
                }
                if !accepted.token.is_empty() {
                    self.stage = Stage::Established;
                    return Ok(Step::Continue(accepted.token));
                }
                self.offer()
            }
            // The client's token here is empty (its context had nothing more to say).
            Stage::Established => self.offer(),
            Stage::Offered => {
                let choice = self.context.unwrap(token)?;
                check_choice(&choice)?;
                self.stage = Stage::Complete;
                let peer = self.context.peer().unwrap_or_default().to_string();
                Ok(Step::Complete(peer))
            }
            Stage::Complete => Err(GssapiError::Complete),
        }
    }

    fn offer(&mut self) -> Result<Step, GssapiError> {
        let wrapped = self.context.wrap(&layer_offer())?;
        self.stage = Stage::Offered;
        Ok(Step::Continue(wrapped))
    }
}

/// One member's GSSAPI exchange towards another, client side (the JDK's
/// `GssKrb5Client` with `auth` only): context tokens until established,
/// then the server's wrapped offer is answered with a wrapped choice of no
/// security layer and no authorization id.
#[derive(Debug)]
pub struct GssapiClient {
    context: Context,
    target: String,
    established: bool,
    chosen: bool,
}

impl GssapiClient {
    /// An exchange towards the service principal `target`.
    pub fn new(target: &str) -> Self {
        GssapiClient { context: Context::new(), target: target.to_string(), established: false, chosen: false }
    }

    /// The first token (GSSAPI has an initial response: the AP-REQ).
    pub fn start(&mut self, cred: &Cred) -> Result<Vec<u8>, GssapiError> {
        self.respond(cred, &[])
    }

    /// The answer to the server's next token.
    pub fn respond(&mut self, cred: &Cred, token: &[u8]) -> Result<Vec<u8>, GssapiError> {
        if !self.established {
            let step = self.context.initiate(cred, &self.target, token)?;
            self.established = step.established;
            // Established with nothing to send: an empty token asks for the offer.
            return Ok(step.token);
        }
        if self.chosen {
            return Err(GssapiError::Complete);
        }
        let offer = self.context.unwrap(token)?;
        let Some(&layers) = offer.first().filter(|_| offer.len() >= 4) else {
            return Err(GssapiError::ShortChoice(offer.len()));
        };
        if layers & NO_SECURITY_LAYER == 0 {
            return Err(GssapiError::Layer(layers));
        }
        self.chosen = true;
        Ok(self.context.wrap(&[NO_SECURITY_LAYER, 0, 0, 0])?)
    }

    /// True once the choice was sent: the server's last answer completes it.
    pub fn is_done(&self) -> bool {
        self.chosen
    }
}

/// The server's security-layer offer before wrapping: the layer mask, then
/// the largest buffer in three bytes, big-endian.
fn layer_offer() -> [u8; 4] {
    let size = MAX_BUFFER.to_be_bytes();
    [NO_SECURITY_LAYER, size[1], size[2], size[3]]
}

/// Checks the client's unwrapped choice: one layer, and one we offered.
fn check_choice(choice: &[u8]) -> Result<(), GssapiError> {
    let Some(&layer) = choice.first().filter(|_| choice.len() >= 4) else {
        return Err(GssapiError::ShortChoice(choice.len()));
    };
    if layer != NO_SECURITY_LAYER {
        return Err(GssapiError::Layer(layer));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_is_no_layer_and_a_64k_buffer() {
        assert_eq!(layer_offer(), [1, 1, 0, 0]);
    }

    #[test]
    fn the_client_must_choose_no_layer() {
        assert!(check_choice(&[1, 0, 0, 0]).is_ok());
        assert!(check_choice(b"\x01\x00\x10\x00client@PADDOCK.TEST").is_ok());
        assert!(matches!(check_choice(&[2, 0, 0, 0]), Err(GssapiError::Layer(2))));
        assert!(matches!(check_choice(&[4, 0, 0, 0]), Err(GssapiError::Layer(4))));
        assert!(matches!(check_choice(&[1, 0]), Err(GssapiError::ShortChoice(2))));
        assert!(matches!(check_choice(&[]), Err(GssapiError::ShortChoice(0))));
    }
}
