//! Lets stock gRPC clients use the Unix socket as they are.
//!
//! gRPC's C core (Python, C++, Ruby, PHP) and grpc-java send the socket's
//! path, percent-encoded, as the `:authority` of every request on a Unix
//! socket (`run%2Fphantomnet%2Fagent.sock`). The `http` crate, which h2
//! (under hyper and tonic) uses to check it, accepts `%` only in userinfo,
//! so h2 resets each such stream with PROTOCOL_ERROR before tonic ever sees
//! it; h2 has no option to relax this (hyperium/h2#487 is unmerged).
//!
//! So the Unix listener hands tonic one end of an in-memory pipe, and this
//! relay sits between the client and it. The client's HTTP/2 frames pass
//! through unchanged, except header blocks: each is decoded (with the
//! client's HPACK state), an `:authority` that the `http` crate refuses is
//! replaced by `localhost` (what grpc-go and tonic's own client send on a
//! Unix socket), and the block is re-encoded for the server. The server's
//! frames are copied back untouched. Hand-written because no crate rewrites
//! HTTP/2 headers in flight; HPACK itself is `fluke-hpack`'s.
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The smallest SETTINGS_MAX_FRAME_SIZE a peer may advertise: frames we
/// write are never larger.
const MAX_FRAME: usize = 16_384;
/// Bound on one frame we read and on one header block we hold.
const MAX_READ: usize = 1 << 20;

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// A request's header block being assembled from HEADERS + CONTINUATION.
struct Pending {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
}

/// Copies `client` ⇄ `server` until either side closes, rewriting the
/// client's refused `:authority` values on the way in.
pub async fn relay<C, S>(client: C, server: S) -> io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let inbound = async {
        let r = rewrite(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
        r
    };
    let outbound = async {
        let r = tokio::io::copy(&mut sr, &mut cw).await.map(drop);
        let _ = cw.shutdown().await;
        r
    };
    let mut inbound = std::pin::pin!(inbound);
    let mut outbound = std::pin::pin!(outbound);
    tokio::select! {
        // A broken client stream ends the connection at once; a clean end
        // of the client's side lets the server finish its answers.
        r = &mut inbound => match r {
            Err(e) => Err(e),
            Ok(()) => outbound.await,
        },
        r = &mut outbound => r,
    }
}

async fn rewrite<R, W>(r: &mut R, w: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut preface = [0u8; 24];
    r.read_exact(&mut preface).await?;
    if &preface != PREFACE {
        return Err(bad("not an HTTP/2 client (no connection preface)"));
    }
    w.write_all(&preface).await?;
    let mut decoder = fluke_hpack::Decoder::new();
    let mut encoder = fluke_hpack::Encoder::new();
    let mut pending: Option<Pending> = None;
    loop {
        let mut head = [0u8; 9];
        match r.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (ty, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7FFF_FFFF;
        if len > MAX_READ {
            return Err(bad(format!("a {len}-byte frame")));
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).await?;
        match (ty, pending.as_mut()) {
            (HEADERS, None) => {
                let (fragment, priority) = headers_fragment(&payload, flags)?;
                let p = Pending {
                    stream,
                    end_stream: flags & END_STREAM != 0,
                    priority,
                    block: fragment.to_vec(),
                };
                if flags & END_HEADERS != 0 {
                    emit(w, &mut decoder, &mut encoder, p).await?;
                } else {
                    pending = Some(p);
                }
            }
            (CONTINUATION, Some(p)) if p.stream == stream => {
                if p.block.len() + payload.len() > MAX_READ {
                    return Err(bad("a header block over 1 MiB"));
                }
                p.block.extend_from_slice(&payload);
                if flags & END_HEADERS != 0
                    && let Some(p) = pending.take()
                {
                    emit(w, &mut decoder, &mut encoder, p).await?;
                }
            }
            // RFC 9113 §6.10: nothing may interleave a header block.
            (_, Some(_)) => return Err(bad("a frame inside a header block")),
            _ => {
                w.write_all(&head).await?;
                w.write_all(&payload).await?;
            }
        }
    }
}

/// The header block fragment of a HEADERS payload, without padding, and
/// its priority fields if present.
fn headers_fragment(payload: &[u8], flags: u8) -> io::Result<(&[u8], Option<[u8; 5]>)> {
    let mut p = payload;
    let mut pad = 0usize;
    if flags & PADDED != 0 {
        let (&n, rest) = p.split_first().ok_or_else(|| bad("empty padded HEADERS"))?;
        pad = usize::from(n);
        p = rest;
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        let fields: [u8; 5] = p
            .get(..5)
            .and_then(|f| f.try_into().ok())
            .ok_or_else(|| bad("HEADERS too short for its priority"))?;
        priority = Some(fields);
        p = &p[5..];
    }
    let end = p
        .len()
        .checked_sub(pad)
        .ok_or_else(|| bad("padding longer than HEADERS"))?;
    Ok((&p[..end], priority))
}

/// Whether the `http` crate (and so h2) accepts `value` as an authority.
fn acceptable(value: &[u8]) -> bool {
    tonic::codegen::http::uri::Authority::try_from(value).is_ok()
}

async fn emit<W: AsyncWrite + Unpin>(
    w: &mut W,
    decoder: &mut fluke_hpack::Decoder<'_>,
    encoder: &mut fluke_hpack::Encoder<'_>,
    p: Pending,
) -> io::Result<()> {
    let mut fields = decoder
        .decode(&p.block)
        .map_err(|e| bad(format!("HPACK: {e:?}")))?;
    for (name, value) in fields.iter_mut() {
        if name.as_slice() == b":authority" && !acceptable(value) {
            *value = b"localhost".to_vec();
        }
    }
    let block = encoder.encode(fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
    let mut first = Vec::with_capacity(block.len() + 5);
    if let Some(pr) = p.priority {
        first.extend_from_slice(&pr);
    }
    let mut rest = block.as_slice();
    let take = rest.len().min(MAX_FRAME - first.len());
    first.extend_from_slice(&rest[..take]);
    rest = &rest[take..];
    let mut flags = if p.end_stream { END_STREAM } else { 0 };
    if p.priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    write_frame(w, HEADERS, flags, p.stream, &first).await?;
    while !rest.is_empty() {
        let take = rest.len().min(MAX_FRAME);
        let flags = if take == rest.len() { END_HEADERS } else { 0 };
        write_frame(w, CONTINUATION, flags, p.stream, &rest[..take]).await?;
        rest = &rest[take..];
    }
    Ok(())
}

async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    ty: u8,
    flags: u8,
    stream: u32,
    payload: &[u8],
) -> io::Result<()> {
    let len = (payload.len() as u32).to_be_bytes();
    let id = stream.to_be_bytes();
    w.write_all(&[
        len[1], len[2], len[3], ty, flags, id[0], id[1], id[2], id[3],
    ])
    .await?;
    w.write_all(payload).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let id = stream.to_be_bytes();
        let mut v = vec![
            len[1], len[2], len[3], ty, flags, id[0], id[1], id[2], id[3],
        ];
        v.extend_from_slice(payload);
        v
    }

    /// What a server would decode from the relay's output.
    async fn through(input: Vec<u8>) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let (client, mut client_side) = tokio::io::duplex(1 << 20);
        let (server, mut server_side) = tokio::io::duplex(1 << 20);
        let task = tokio::spawn(relay(client, server));
        client_side.write_all(&input).await.unwrap();
        drop(client_side);
        let mut out = Vec::new();
        server_side.read_to_end(&mut out).await.unwrap();
        drop(server_side);
        task.await.unwrap().unwrap();
        assert_eq!(&out[..24], PREFACE);
        let mut dec = fluke_hpack::Decoder::new();
        let mut blocks = Vec::new();
        let mut rest = &out[24..];
        let mut block = Vec::new();
        while rest.len() >= 9 {
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            let (ty, flags) = (rest[3], rest[4]);
            let payload = &rest[9..9 + len];
            if ty == HEADERS || ty == CONTINUATION {
                let (frag, _) = if ty == HEADERS {
                    headers_fragment(payload, flags).unwrap()
                } else {
                    (payload, None)
                };
                block.extend_from_slice(frag);
                if flags & END_HEADERS != 0 {
                    blocks.push(dec.decode(&block).unwrap());
                    block.clear();
                }
            }
            rest = &rest[9 + len..];
        }
        blocks
    }

    fn authority(block: &[(Vec<u8>, Vec<u8>)]) -> &[u8] {
        &block.iter().find(|(n, _)| n == b":authority").unwrap().1
    }

    #[tokio::test]
    async fn a_socket_path_authority_becomes_localhost_and_the_rest_passes() {
        let mut enc = fluke_hpack::Encoder::new();
        let req = |auth: &[u8]| -> Vec<(&[u8], Vec<u8>)> {
            vec![
                (b":method", b"POST".to_vec()),
                (b":scheme", b"http".to_vec()),
                (b":path", b"/grpc.health.v1.Health/Check".to_vec()),
                (b":authority", auth.to_vec()),
                (b"te", b"trailers".to_vec()),
            ]
        };
        let encode = |enc: &mut fluke_hpack::Encoder, h: &[(&[u8], Vec<u8>)]| {
            enc.encode(h.iter().map(|(n, v)| (*n, v.as_slice())))
        };
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        // Stream 1: the grpcio form, split over HEADERS + CONTINUATION, padded.
        let b1 = encode(&mut enc, &req(b"run%2Fphantomnet%2Fagent.sock"));
        let (a, b) = b1.split_at(b1.len() / 2);
        let mut padded = vec![3u8];
        padded.extend_from_slice(a);
        padded.extend_from_slice(&[0, 0, 0]);
        input.extend(frame(HEADERS, PADDED, 1, &padded));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        input.extend(frame(0x0, END_STREAM, 1, b"\0\0\0\0\0")); // DATA
        // Stream 3: the same header again, now from the client's dynamic table.
        let b3 = encode(&mut enc, &req(b"run%2Fphantomnet%2Fagent.sock"));
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &b3));
        // Stream 5: a valid authority is kept.
        let b5 = encode(&mut enc, &req(b"agent.example:50051"));
        input.extend(frame(HEADERS, END_HEADERS, 5, &b5));
        let blocks = through(input).await;
        assert_eq!(blocks.len(), 3);
        assert_eq!(authority(&blocks[0]), b"localhost");
        assert_eq!(authority(&blocks[1]), b"localhost");
        assert_eq!(authority(&blocks[2]), b"agent.example:50051");
        assert_eq!(blocks[0].len(), 5, "every other field kept");
        assert!(
            blocks[1]
                .iter()
                .any(|(n, v)| n == b":path" && v.ends_with(b"/Check"))
        );
    }

    #[tokio::test]
    async fn broken_input_closes_the_connection_with_a_reason() {
        for (input, needle) in [
            (b"GET / HTTP/1.1\r\n\r\n........".to_vec(), "preface"),
            (
                [
                    PREFACE.to_vec(),
                    frame(HEADERS, END_HEADERS, 1, &[0xFF, 0xFF, 0xFF]),
                ]
                .concat(),
                "HPACK",
            ),
            (
                [
                    PREFACE.to_vec(),
                    frame(HEADERS, 0, 1, &[0x82]),
                    frame(0x0, 0, 1, b"x"),
                ]
                .concat(),
                "inside a header block",
            ),
        ] {
            let (client, mut client_side) = tokio::io::duplex(1 << 16);
            let (server, _server_side) = tokio::io::duplex(1 << 16);
            client_side.write_all(&input).await.unwrap();
            drop(client_side);
            let err = relay(client, server).await.unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
