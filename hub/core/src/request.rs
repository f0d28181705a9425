//! A peer's channel-message request (`POST /v1/hub/channels/{id}/messages`, docs/hub.md) read
//! into what the hub acts on: the message bytes and their decoding, the pipelined next
//! message, the context the signature covers and the signature itself.
//!
//! Pure: it owns the parsing and the shape rules of the body (hex, exact decoding, a `next`
//! only after a `Confirm`, 1 to [`MAX_SPLIT_SHARES`] split shares) and the hash the peer signs.
//! It must not look anything up (which channel, whose stream) nor verify the signature: the
//! REST layer does both with the hub's state. Being pure, it is fuzzed from raw JSON bodies.

use crate::auth::{message_auth_hash, pipelined_auth_hash, SignedContext};
use crate::io::MAX_SPLIT_SHARES;
use crate::records::StreamShare;
use doin_api::hub::MessageRequest;
use doin_channels::Message;
use doin_types::{ChainId, Hash256, Msat, SignatureBytes};

/// Why a request body is refused, as the client sees it: a problem `kind` and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct BodyError {
    pub kind: &'static str,
    pub detail: String,
}

fn refuse(kind: &'static str, detail: impl Into<String>) -> BodyError {
    BodyError {
        kind,
        detail: detail.into(),
    }
}

fn hash(text: &str, what: &str) -> Result<Hash256, BodyError> {
    Hash256::from_hex(text).map_err(|e| refuse("invalid-hash", format!("{what}: {e}")))
}

fn decode_message(text: &str, what: &str) -> Result<(Vec<u8>, Message), BodyError> {
    let bytes = hex::decode(text).map_err(|e| refuse("invalid-hex", format!("{what}: {e}")))?;
    let msg =
        Message::decode(&bytes).map_err(|e| refuse("malformed-message", format!("{what}: {e}")))?;
    Ok((bytes, msg))
}

/// A message request, parsed and shape-checked (not yet authenticated).
#[derive(Clone, Debug)]
pub struct MessageBody {
    /// The message's bytes as the peer signed them, and the message.
    pub message: (Vec<u8>, Message),
    /// Pipelining: the message after the `Confirm`, with its bytes.
    pub next: Option<(Vec<u8>, Message)>,
    pub stream: Option<Hash256>,
    pub invoice: Option<String>,
    pub vote_optimae: Option<Hash256>,
    pub split: Vec<StreamShare>,
    pub fund_optimae: Option<Hash256>,
    pub signature: SignatureBytes,
}

impl MessageBody {
    pub fn parse(req: MessageRequest) -> Result<MessageBody, BodyError> {
        let message = decode_message(&req.message, "message")?;
        let next = match &req.next {
            None => None,
            Some(text) => {
                let next = decode_message(text, "next")?;
                if !matches!(message.1, Message::Confirm { .. }) {
                    return Err(refuse(
                        "invalid-request",
                        "only a Confirm can be followed by a next message",
                    ));
                }
                Some(next)
            }
        };
        let stream = req
            .stream
            .as_deref()
            .map(|s| hash(s, "stream"))
            .transpose()?;
        let split_given = req.split.is_some();
        let shares = req.split.unwrap_or_default();
        if split_given && (shares.is_empty() || shares.len() > MAX_SPLIT_SHARES) {
            return Err(refuse(
                "invalid-request",
                format!("split names 1 to {MAX_SPLIT_SHARES} shares"),
            ));
        }
        let split = shares
            .iter()
            .map(|share| {
                Ok(StreamShare {
                    stream: hash(&share.stream, "split stream")?,
                    amount_msat: share.amount_msat.parse().map(Msat::new).map_err(|_| {
                        refuse(
                            "invalid-amount",
                            "split amount_msat: a whole number of milli-units",
                        )
                    })?,
                    vote_optimae: share
                        .vote_optimae
                        .as_deref()
                        .map(|o| hash(o, "split vote_optimae"))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, BodyError>>()?;
        let signature = hex::decode(&req.signature)
            .map_err(|e| refuse("invalid-hex", format!("signature: {e}")))?
            .try_into()
            .map(SignatureBytes)
            .map_err(|_| refuse("invalid-signature", "signature: 64 bytes"))?;
        Ok(MessageBody {
            message,
            next,
            stream,
            invoice: req.invoice,
            vote_optimae: req
                .vote_optimae
                .as_deref()
                .map(|s| hash(s, "vote_optimae"))
                .transpose()?,
            split,
            fund_optimae: req
                .fund_optimae
                .as_deref()
                .map(|s| hash(s, "fund_optimae"))
                .transpose()?,
            signature,
        })
    }

    /// What the peer's signature covers besides the messages.
    pub fn signed_context(&self) -> SignedContext<'_> {
        SignedContext {
            stream: self.stream.as_ref(),
            invoice: self.invoice.as_deref(),
            vote_optimae: self.vote_optimae.as_ref(),
            split: &self.split,
            fund_optimae: self.fund_optimae.as_ref(),
        }
    }

    /// The hash the channel's peer must have signed for this request on `channel`.
    pub fn auth_hash(&self, chain_id: &ChainId, channel: &Hash256) -> Hash256 {
        let ctx = self.signed_context();
        match &self.next {
            None => message_auth_hash(chain_id, channel, &self.message.0, &ctx),
            Some((next, _)) => pipelined_auth_hash(chain_id, channel, &self.message.0, next, &ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use doin_api::hub::ShareRequest;

    fn hex_of(m: &Message) -> String {
        hex::encode(m.encode().unwrap())
    }

    fn confirm() -> Message {
        Message::Confirm {
            channel_id: Hash256([1; 32]),
            seq: 2,
            sig: SignatureBytes([3; 64]),
        }
    }

    fn reject() -> Message {
        Message::Reject {
            channel_id: Hash256([1; 32]),
            seq: 3,
            reason: "no".into(),
        }
    }

    fn request(message: &Message) -> MessageRequest {
        MessageRequest {
            message: hex_of(message),
            stream: None,
            invoice: None,
            vote_optimae: None,
            next: None,
            split: None,
            fund_optimae: None,
            signature: hex::encode([7u8; 64]),
        }
    }

    fn share(stream: u8) -> ShareRequest {
        ShareRequest {
            stream: hex::encode([stream; 32]),
            amount_msat: "5".into(),
            vote_optimae: None,
        }
    }

    #[test]
    fn a_plain_message_is_signed_over_its_bytes_and_context() {
        let mut req = request(&reject());
        req.stream = Some(hex::encode([4u8; 32]));
        let body = MessageBody::parse(req).unwrap();
        let chain = ChainId(Hash256([9; 32]));
        let channel = Hash256([1; 32]);
        let stream = Hash256([4; 32]);
        let ctx = SignedContext {
            stream: Some(&stream),
            ..SignedContext::default()
        };
        let expected = message_auth_hash(&chain, &channel, &reject().encode().unwrap(), &ctx);
        assert_eq!(body.auth_hash(&chain, &channel), expected);
        assert_eq!(body.signature, SignatureBytes([7; 64]));
    }

    #[test]
    fn a_next_message_follows_only_a_confirm_and_changes_what_is_signed() {
        let mut req = request(&confirm());
        req.next = Some(hex_of(&reject()));
        let body = MessageBody::parse(req).unwrap();
        let chain = ChainId(Hash256([9; 32]));
        let channel = Hash256([1; 32]);
        let alone = MessageBody::parse(request(&confirm())).unwrap();
        assert_ne!(
            body.auth_hash(&chain, &channel),
            alone.auth_hash(&chain, &channel)
        );

        let mut req = request(&reject());
        req.next = Some(hex_of(&confirm()));
        assert_eq!(MessageBody::parse(req).unwrap_err().kind, "invalid-request");
    }

    #[test]
    fn malformed_parts_are_refused_with_their_kind() {
        let mut req = request(&reject());
        req.message = "zz".into();
        assert_eq!(MessageBody::parse(req).unwrap_err().kind, "invalid-hex");

        let mut req = request(&reject());
        req.message = format!("{}00", hex_of(&reject()));
        assert_eq!(
            MessageBody::parse(req).unwrap_err().kind,
            "malformed-message"
        );

        let mut req = request(&reject());
        req.signature = hex::encode([7u8; 63]);
        assert_eq!(
            MessageBody::parse(req).unwrap_err().kind,
            "invalid-signature"
        );

        let mut req = request(&reject());
        req.vote_optimae = Some("abc".into());
        assert_eq!(MessageBody::parse(req).unwrap_err().kind, "invalid-hash");

        let mut req = request(&reject());
        let mut bad = share(1);
        bad.amount_msat = "-1".into();
        req.split = Some(vec![bad]);
        assert_eq!(MessageBody::parse(req).unwrap_err().kind, "invalid-amount");
    }

    #[test]
    fn a_split_names_one_to_the_maximum_shares() {
        let mut req = request(&reject());
        req.split = Some(Vec::new());
        assert_eq!(MessageBody::parse(req).unwrap_err().kind, "invalid-request");

        let mut req = request(&reject());
        req.split = Some((0..=MAX_SPLIT_SHARES).map(|i| share(i as u8)).collect());
        assert_eq!(MessageBody::parse(req).unwrap_err().kind, "invalid-request");

        let mut req = request(&reject());
        req.split = Some((0..MAX_SPLIT_SHARES).map(|i| share(i as u8)).collect());
        assert_eq!(
            MessageBody::parse(req).unwrap().split.len(),
            MAX_SPLIT_SHARES
        );
    }
}
