//! The request-response wire format: one length-prefixed frame each way.
//!
//! A frame is a 4-byte little-endian length and that many bytes. Requests and responses have
//! separate caps; a peer announcing a larger frame is cut off before anything is allocated.

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use std::io;

#[derive(Clone, Debug)]
pub(crate) struct FrameCodec {
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {max}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    // Anything after the frame is a protocol violation, not ignorable padding.
    let mut extra = [0u8; 1];
    if io.read(&mut extra).await? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bytes after the frame",
        ));
    }
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    data: &[u8],
    max: usize,
) -> io::Result<()> {
    if data.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds the {max}-byte limit", data.len()),
        ));
    }
    let len = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(data).await?;
    io.close().await
}

#[async_trait]
impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_request_bytes).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response_bytes).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.max_request_bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_response_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }

    #[tokio::test]
    async fn frames_round_trip_and_bad_frames_are_refused() {
        let mut out = Cursor::new(Vec::new());
        write_frame(&mut out, b"hello", 16).await.unwrap();
        let bytes = out.into_inner();
        assert_eq!(bytes, frame(b"hello"));
        assert_eq!(
            read_frame(&mut Cursor::new(bytes.clone()), 16)
                .await
                .unwrap(),
            b"hello"
        );
        // Oversize announced length: refused without reading the body.
        let mut big = (1_000_000u32).to_le_bytes().to_vec();
        big.extend_from_slice(&[0; 8]);
        assert!(read_frame(&mut Cursor::new(big), 16).await.is_err());
        // Trailing bytes.
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(read_frame(&mut Cursor::new(trailing), 16).await.is_err());
        // Truncated body.
        assert!(read_frame(&mut Cursor::new(bytes[..6].to_vec()), 16)
            .await
            .is_err());
        // Writer refuses to send more than the cap.
        assert!(write_frame(&mut Cursor::new(Vec::new()), &[0; 17], 16)
            .await
            .is_err());
    }
}
