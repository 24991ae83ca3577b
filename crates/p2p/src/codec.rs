//! The wire format of one request/response exchange.
//!
//! A request is `session (32 bytes) ‖ length (u32 big-endian) ‖ payload`; the response is one
//! byte. The length is checked against `max_message_bytes` *before* anything is allocated, so an
//! oversized or lying peer costs us 36 bytes of reading and a dropped stream — never a large
//! allocation, never a panic.

use std::io;
use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::error::RefusalReason;
use crate::stats::Counters;

/// The protocol name negotiated on every stream; bump the version on any wire change.
pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new("/cohort/p2p/1");

/// Length of the fixed request header: session id plus payload length.
const HEADER_LEN: usize = 32 + 4;

/// One message for one session, as it travels. The sender is not in it: the receiver takes it
/// from the authenticated connection.
#[derive(Debug)]
pub(crate) struct WireRequest {
    pub(crate) session: [u8; 32],
    pub(crate) payload: Vec<u8>,
}

/// The receiver's answer: accepted (delivered or held for its session) or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireResponse {
    Accepted,
    Refused(RefusalReason),
}

impl WireResponse {
    fn to_byte(self) -> u8 {
        match self {
            WireResponse::Accepted => 0,
            WireResponse::Refused(RefusalReason::InboxFull) => 1,
            WireResponse::Refused(RefusalReason::BufferFull) => 2,
            WireResponse::Refused(RefusalReason::ShuttingDown) => 3,
            // Local-only reasons never travel; if they did, the peer would read "dropped".
            WireResponse::Refused(RefusalReason::StreamDropped)
            | WireResponse::Refused(RefusalReason::UnsupportedProtocol) => 4,
        }
    }

    fn from_byte(byte: u8) -> io::Result<Self> {
        Ok(match byte {
            0 => WireResponse::Accepted,
            1 => WireResponse::Refused(RefusalReason::InboxFull),
            2 => WireResponse::Refused(RefusalReason::BufferFull),
            3 => WireResponse::Refused(RefusalReason::ShuttingDown),
            4 => WireResponse::Refused(RefusalReason::StreamDropped),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "unknown response code",
                ));
            }
        })
    }
}

/// Length-prefixed codec enforcing the configured message limit on both read and write.
#[derive(Clone)]
pub(crate) struct CohortCodec {
    max_message_bytes: usize,
    counters: Arc<Counters>,
}

impl CohortCodec {
    pub(crate) fn new(max_message_bytes: usize, counters: Arc<Counters>) -> Self {
        Self {
            max_message_bytes,
            counters,
        }
    }
}

impl request_response::Codec for CohortCodec {
    type Protocol = StreamProtocol;
    type Request = WireRequest;
    type Response = WireResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut header = [0u8; HEADER_LEN];
        io.read_exact(&mut header).await?;
        let mut session = [0u8; 32];
        session.copy_from_slice(&header[..32]);
        let mut length = [0u8; 4];
        length.copy_from_slice(&header[32..]);
        let announced = u32::from_be_bytes(length);
        let length = usize::try_from(announced)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "length overflow"))?;
        if length > self.max_message_bytes {
            Counters::bump(&self.counters.oversized_messages);
            Counters::bump(&self.counters.dropped_messages);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message exceeds max_message_bytes",
            ));
        }
        // Grow with the bytes that actually arrive: a peer announcing a large length and then
        // stalling costs nothing until it really sends.
        let mut payload = Vec::new();
        io.take(u64::from(announced))
            .read_to_end(&mut payload)
            .await?;
        if payload.len() != length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "message shorter than announced",
            ));
        }
        Ok(WireRequest { session, payload })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        WireResponse::from_byte(byte[0])
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: WireRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if request.payload.len() > self.max_message_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "message exceeds max_message_bytes",
            ));
        }
        let length = u32::try_from(request.payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
        let mut header = [0u8; HEADER_LEN];
        header[..32].copy_from_slice(&request.session);
        header[32..].copy_from_slice(&length.to_be_bytes());
        io.write_all(&header).await?;
        io.write_all(&request.payload).await?;
        io.flush().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: WireResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[response.to_byte()]).await?;
        io.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use request_response::Codec;

    fn codec(max: usize) -> (CohortCodec, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (CohortCodec::new(max, counters.clone()), counters)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn request_round_trips() {
        block_on(async {
            let (mut c, _) = codec(16);
            let mut buf = Cursor::new(Vec::new());
            let req = WireRequest {
                session: [7u8; 32],
                payload: b"hello".to_vec(),
            };
            c.write_request(&PROTOCOL, &mut buf, req).await.unwrap();
            let mut read = Cursor::new(buf.into_inner());
            let got = c.read_request(&PROTOCOL, &mut read).await.unwrap();
            assert_eq!(got.session, [7u8; 32]);
            assert_eq!(got.payload, b"hello");
        });
    }

    #[test]
    fn oversized_length_is_refused_before_allocation() {
        block_on(async {
            let (mut c, counters) = codec(16);
            // Header claims 4 GiB - 1 but carries nothing: must fail on the header alone.
            let mut frame = vec![0u8; 32];
            frame.extend_from_slice(&u32::MAX.to_be_bytes());
            let err = c
                .read_request(&PROTOCOL, &mut Cursor::new(frame))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert_eq!(
                counters
                    .oversized_messages
                    .load(std::sync::atomic::Ordering::Relaxed),
                1
            );
        });
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        block_on(async {
            let (mut c, _) = codec(16);
            assert!(
                c.read_request(&PROTOCOL, &mut Cursor::new(vec![1u8; 10]))
                    .await
                    .is_err()
            );
            let mut frame = vec![0u8; 32];
            frame.extend_from_slice(&8u32.to_be_bytes());
            frame.extend_from_slice(&[1, 2, 3]);
            assert!(
                c.read_request(&PROTOCOL, &mut Cursor::new(frame))
                    .await
                    .is_err()
            );
            assert!(
                c.read_response(&PROTOCOL, &mut Cursor::new(vec![99u8]))
                    .await
                    .is_err()
            );
        });
    }

    #[test]
    fn write_refuses_oversized() {
        block_on(async {
            let (mut c, _) = codec(4);
            let req = WireRequest {
                session: [0u8; 32],
                payload: vec![0u8; 5],
            };
            let mut buf = Cursor::new(Vec::new());
            assert!(c.write_request(&PROTOCOL, &mut buf, req).await.is_err());
        });
    }
}
