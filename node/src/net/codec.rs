//! The request-response codec: one `shoal-protocol` frame per stream,
//! read to the end of the stream with a hard size cap, decoded by
//! `shoal_protocol::decode_*` (which checks version, kind and per-kind
//! limits before building anything).

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use shoal_protocol::{
    decode_request, decode_response, encode, Request, Response, MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
};

/// Codec for [`shoal_protocol::PROTOCOL_REQ`].
#[derive(Debug, Clone, Default)]
pub struct ShoalCodec;

/// Reads the whole stream, refusing more than `limit` bytes.
async fn read_capped<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over".
    io.take(limit as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame exceeds {limit} bytes"),
        ));
    }
    Ok(buf)
}

fn invalid<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for ShoalCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_capped(io, MAX_REQUEST_BYTES).await?;
        decode_request(&frame).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_capped(io, MAX_RESPONSE_BYTES).await?;
        decode_response(&frame).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let frame = encode(&req).map_err(invalid)?;
        io.write_all(&frame).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let frame = encode(&res).map_err(invalid)?;
        io.write_all(&frame).await?;
        io.close().await
    }
}
