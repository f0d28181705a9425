//! The request-response side of the swarm task: requests from peers handed to the service
//! that serves them (after the rate limit and a check of the service tag), its answers framed
//! and sent back, and answers to this node's own requests returned to whoever asked.

use crate::peers::Misbehaviour;
use crate::service::{InboundRequest, RequestError};
use crate::swarm::SwarmTask;
use crate::topics::Service;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::PeerId;
use std::time::Instant;
use tokio::sync::oneshot;

/// Response frames start with a status byte.
const RESPONSE_OK: u8 = 0;
const RESPONSE_ERROR: u8 = 1;

fn error_frame(msg: &str) -> Vec<u8> {
    let mut v = vec![RESPONSE_ERROR];
    v.extend_from_slice(msg.as_bytes());
    v
}

impl SwarmTask {
    pub(crate) fn send_reply(
        &mut self,
        channel: ResponseChannel<Vec<u8>>,
        service: Service,
        answer: Result<Result<Vec<u8>, String>, oneshot::error::RecvError>,
    ) {
        let frame = match answer {
            Ok(Ok(body)) => {
                let mut v = Vec::with_capacity(body.len() + 1);
                v.push(RESPONSE_OK);
                v.extend_from_slice(&body);
                v
            }
            Ok(Err(msg)) => error_frame(&msg),
            Err(_) => error_frame("the request was not answered"),
        };
        let frame = if frame.len() > self.cfg.max_response_bytes {
            error_frame("the answer exceeds the response size limit")
        } else {
            frame
        };
        let outcome = if frame.first() == Some(&RESPONSE_OK) {
            "ok"
        } else {
            "error"
        };
        self.metrics
            .requests
            .with_label_values(&[service.label(), "inbound", outcome])
            .inc();
        let _ = self
            .swarm
            .behaviour_mut()
            .requests
            .send_response(channel, frame);
    }

    pub(crate) fn on_request_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_inbound_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some((service, reply)) = self.pending_requests.remove(&request_id) else {
                        return;
                    };
                    let (outcome, answer) = match response.split_first() {
                        Some((&RESPONSE_OK, body)) => {
                            self.swarm
                                .behaviour_mut()
                                .admission
                                .state_mut()
                                .useful(peer, Instant::now());
                            ("ok", Ok(body.to_vec()))
                        }
                        Some((&RESPONSE_ERROR, msg)) => (
                            "remote-error",
                            Err(RequestError::Remote(
                                String::from_utf8_lossy(msg).into_owned(),
                            )),
                        ),
                        _ => {
                            self.penalize(peer, Misbehaviour::InvalidResponse);
                            (
                                "invalid",
                                Err(RequestError::Failed("malformed response frame".into())),
                            )
                        }
                    };
                    self.metrics
                        .requests
                        .with_label_values(&[service.label(), "outbound", outcome])
                        .inc();
                    let _ = reply.send(answer);
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((service, reply)) = self.pending_requests.remove(&request_id) {
                    self.metrics
                        .requests
                        .with_label_values(&[service.label(), "outbound", "failed"])
                        .inc();
                    let _ = reply.send(Err(RequestError::Failed(error.to_string())));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // An undecodable or oversize request shows up here.
                if matches!(error, request_response::InboundFailure::Io(_)) {
                    self.penalize(peer, Misbehaviour::BadRequest);
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_inbound_request(
        &mut self,
        peer: PeerId,
        request: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let now = Instant::now();
        let reject = |task: &mut SwarmTask, channel, msg: &str| {
            let _ = task
                .swarm
                .behaviour_mut()
                .requests
                .send_response(channel, error_frame(msg));
        };
        if !self.book.allow_message(peer, now) {
            self.penalize(peer, Misbehaviour::RateExceeded);
            reject(self, channel, "rate limit exceeded");
            return;
        }
        let Some((tag, body)) = request.split_first() else {
            self.penalize(peer, Misbehaviour::BadRequest);
            reject(self, channel, "empty request");
            return;
        };
        let Some(service) = Service::from_tag(*tag) else {
            self.penalize(peer, Misbehaviour::BadRequest);
            reject(self, channel, "unknown service");
            return;
        };
        let Some(server) = self.servers.get(&service) else {
            // A chain this node does not run: not the peer's fault.
            reject(self, channel, "service not offered by this node");
            return;
        };
        let (reply, answer) = oneshot::channel();
        let inbound = InboundRequest {
            peer,
            data: body.to_vec(),
            reply,
        };
        if server.try_send(inbound).is_err() {
            reject(self, channel, "busy");
            return;
        }
        self.pending_replies
            .push(Box::pin(async move { (channel, service, answer.await) }));
    }
}
